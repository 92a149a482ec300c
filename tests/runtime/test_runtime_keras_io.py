"""model files between steps: tfmot-wrapped models (prune, cluster, QAT) reload exactly, the per-layer stats
read the kernel each wrapper really computes with, and a model of plain layers never imports tfmot."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from tfspec.runtime.fit import layer_stats
from tfspec.runtime.keras_io import MODEL_FILE, MODEL_H5_FILE, load_model, model_file, save_model
from tfspec.runtime.tf import import_tf

tf, keras = import_tf()
import tensorflow_model_optimization as tfmot  # noqa: E402  (after import_tf selected Keras 2)

X = np.random.default_rng(0).uniform(size=(16, 8)).astype(np.float32)
Y = np.arange(16) % 3


def base() -> object:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((8,), name="inputs"), keras.layers.Dense(6, activation="relu", name="hidden"),
                             keras.layers.Dense(3, activation="softmax", name="logits")])


def fitted(model: object, callbacks: list | None = None) -> object:
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(X, Y, epochs=2, batch_size=8, verbose=0, callbacks=callbacks or [])
    return model


def round_trip(model: object, folder: Path) -> object:
    save_model(model, folder)
    loaded = load_model(folder)
    np.testing.assert_allclose(loaded(X).numpy(), model(X).numpy(), rtol=1e-6, atol=1e-6)
    return loaded


def test_quantization_aware_model_round_trips_as_hdf5(tmp_path: Path) -> None:
    model = fitted(tfmot.quantization.keras.quantize_model(base()))
    loaded = round_trip(model, tmp_path)
    assert model_file(tmp_path).name == MODEL_H5_FILE and not (tmp_path / MODEL_FILE).exists()
    assert [type(layer).__name__ for layer in loaded.layers][0] == "QuantizeLayer"
    assert [s["layer"] for s in layer_stats(loaded)] == ["hidden", "logits"]


def test_pruned_model_round_trips_and_reports_its_sparsity(tmp_path: Path) -> None:
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1)
    model = fitted(tfmot.sparsity.keras.prune_low_magnitude(base(), pruning_schedule=schedule),
                   [tfmot.sparsity.keras.UpdatePruningStep()])
    loaded = round_trip(model, tmp_path)
    assert model_file(tmp_path).name == MODEL_FILE
    stats = {s["layer"]: s for s in layer_stats(loaded)}
    assert stats["hidden"]["kernel_size"] == 48 and stats["hidden"]["sparsity"] == 0.5
    assert stats["hidden"]["nonzero"] == 24


def test_clustered_model_round_trips_and_reports_its_centroid_count(tmp_path: Path) -> None:
    model = fitted(tfmot.clustering.keras.cluster_weights(
        base(), number_of_clusters=4,
        cluster_centroids_init=tfmot.clustering.keras.CentroidInitialization.KMEANS_PLUS_PLUS))
    loaded = round_trip(model, tmp_path)
    stats = {s["layer"]: s for s in layer_stats(loaded)}
    assert stats["hidden"]["unique"] <= 4 and stats["logits"]["unique"] <= 4
    stripped = tfmot.clustering.keras.strip_clustering(loaded)
    assert len(np.unique(stripped.get_layer("hidden").kernel.numpy())) == stats["hidden"]["unique"]


FRESH_PROCESS = """
import sys
from pathlib import Path
from tfspec.runtime.keras_io import load_model, save_model
from tfspec.runtime.tf import import_tf
_, keras = import_tf()
folder = Path(sys.argv[1])
if sys.argv[2] == "save":
    keras.utils.set_random_seed(0)
    save_model(keras.Sequential([keras.Input((8,)), keras.layers.Dense(3, activation="softmax")]), folder)
model = load_model(folder)
print(type(model.layers[0]).__name__, "tensorflow_model_optimization" in sys.modules)
"""


def _fresh(folder: Path, mode: str) -> str:
    """``FRESH_PROCESS`` in a new interpreter (nothing imported yet): the first layer's class and whether
    tfmot was imported."""
    done = subprocess.run([sys.executable, "-c", FRESH_PROCESS, str(folder), mode], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip()


def test_a_plain_model_saves_and_loads_without_importing_tfmot(tmp_path: Path) -> None:
    # importing tfmot costs seconds; a run without compression never needs it
    assert _fresh(tmp_path, "save") == "Dense False"


def test_a_tfmot_wrapped_keras_file_loads_in_a_process_that_has_not_imported_tfmot(tmp_path: Path) -> None:
    schedule = tfmot.sparsity.keras.ConstantSparsity(0.5, begin_step=0, frequency=1)
    save_model(tfmot.sparsity.keras.prune_low_magnitude(base(), pruning_schedule=schedule), tmp_path)
    assert model_file(tmp_path).name == MODEL_FILE  # the .keras format: found by the config's module names
    assert _fresh(tmp_path, "load") == "PruneLowMagnitude True"
