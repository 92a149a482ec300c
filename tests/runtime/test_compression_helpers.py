"""The shared compression helpers: tfmot never touches the input model; sizes measured like upstream."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import numpy as np

from tfspec.runtime.compression import steps_per_epoch, wrap_layers, zipped_size
from tfspec.runtime.tf import import_tf


def _model():
    _, keras = import_tf()
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu", name="a"),
                             keras.layers.Dense(3, activation="softmax", name="b")])


def test_clustering_a_wrapped_clone_leaves_the_input_model_alone() -> None:
    import tensorflow_model_optimization as tfmot

    model = _model()
    before = [w.copy() for w in model.get_weights()]
    layers = list(model.layers)
    clustered = wrap_layers(model, lambda layer: tfmot.clustering.keras.cluster_weights(layer, number_of_clusters=2),
                            lambda layer: layer.name == "a")
    clustered.compile("sgd", "sparse_categorical_crossentropy")
    clustered.fit(np.random.rand(16, 6).astype("float32"), np.arange(16) % 3, epochs=1, verbose=0)
    stripped = tfmot.clustering.keras.strip_clustering(clustered)
    # The input model: same layer objects, unwrapped, same weights.
    assert list(model.layers) == layers
    assert [type(layer).__name__ for layer in model.layers] == ["Dense", "Dense"]
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    # The clone: only the selected layer clustered.
    assert len(np.unique(stripped.get_layer("a").kernel.numpy())) <= 2
    assert len(np.unique(stripped.get_layer("b").kernel.numpy())) == 24
    assert stripped.get_layer("a") is not model.get_layer("a")


def test_zipped_size_is_the_deflated_archive(tmp_path: Path) -> None:
    path = tmp_path / "weights.h5"
    path.write_bytes(b"\0" * 100_000)
    size = zipped_size(path)
    assert size < 1_000  # zeros deflate to almost nothing
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, arcname="weights.h5")
    assert size == len(buffer.getvalue())


def test_steps_per_epoch() -> None:
    assert steps_per_epoch(1257, 32) == 40 and steps_per_epoch(10, 32) == 1
