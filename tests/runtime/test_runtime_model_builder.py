"""Spec model sections → tf_keras models: every layer type, functional graphs, builders, SavedModels."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from tfspec.runtime.errors import ModelError
from tfspec.runtime.keras_io import load_model, save_model
from tfspec.runtime.model_builder import LAYER_BUILDERS, build_model
from tfspec.runtime.tf import import_tf
from tfspec.spec.model import LAYER_TYPES
from runtime_testing import plan_model

tf, keras = import_tf()

# One small model per layer type: (input shape, layers before, the layer, layers after).
CASES = {
    "dense": ([6], {"type": "dense", "units": 4, "activation": "gelu", "kernel_regularizer": {"l1": 0.01, "l2": 0.0}}),
    "conv1d": ([8, 2], {"type": "conv1d", "filters": 3, "kernel_size": 3, "padding": "same"}),
    "conv2d": ([8, 8, 1], {"type": "conv2d", "filters": 3, "kernel_size": [3, 2], "strides": 2, "dilation_rate": 1}),
    "depthwise_conv2d": ([8, 8, 2], {"type": "depthwise_conv2d", "kernel_size": 3, "depth_multiplier": 2}),
    "separable_conv2d": ([8, 8, 2], {"type": "separable_conv2d", "filters": 4, "kernel_size": 3, "activation": "relu6"}),
    "max_pool1d": ([8, 2], {"type": "max_pool1d", "pool_size": 2}),
    "max_pool2d": ([8, 8, 1], {"type": "max_pool2d", "pool_size": [2, 2], "strides": 2}),
    "average_pool2d": ([8, 8, 1], {"type": "average_pool2d", "pool_size": 2, "padding": "same"}),
    "global_average_pool1d": ([8, 2], {"type": "global_average_pool1d"}),
    "global_average_pool2d": ([8, 8, 1], {"type": "global_average_pool2d"}),
    "global_max_pool2d": ([8, 8, 1], {"type": "global_max_pool2d"}),
    "flatten": ([4, 4], {"type": "flatten"}),
    "dropout": ([6], {"type": "dropout", "rate": 0.5}),
    "batch_norm": ([6], {"type": "batch_norm", "momentum": 0.9}),
    "layer_norm": ([6], {"type": "layer_norm"}),
    "embedding": ([5], {"type": "embedding", "input_dim": 20, "output_dim": 3}),
    "lstm": ([5, 2], {"type": "lstm", "units": 3, "return_sequences": True}),
    "gru": ([5, 2], {"type": "gru", "units": 3, "dropout": 0.1}),
    "reshape": ([6], {"type": "reshape", "target_shape": [3, -1]}),
    "activation": ([6], {"type": "activation", "activation": "leaky_relu"}),
}


def test_every_spec_layer_type_has_a_builder() -> None:
    assert set(LAYER_BUILDERS) == set(LAYER_TYPES)
    assert set(CASES) | {"add", "concatenate"} == set(LAYER_TYPES)


@pytest.mark.parametrize("layer_type", sorted(CASES))
def test_layer_type_builds_and_runs(layer_type: str) -> None:
    shape, layer = CASES[layer_type]
    dtype = "int32" if layer_type == "embedding" else "float32"
    spec = {"kind": "sequential", "input_shape": shape, "input_dtype": dtype, "input_name": "x",
            "layers": [layer, {"type": "flatten", "name": "out_flat"}, {"type": "dense", "units": 2, "name": "head"}]}
    model = build_model(plan_model(spec), spec_dir=Path("."), seed=1)
    assert model.layers[0].name == f"{layer_type}_0"  # unnamed layers: <type>_<index>
    x = np.ones((2, *shape), dtype=dtype)
    assert model(x).shape == (2, 2)
    assert model.input_names == ["x"]


def test_functional_graph_with_branches() -> None:
    spec = {"kind": "functional", "inputs": [{"name": "image", "shape": [8, 8, 1]}], "outputs": ["probs"],
            "layers": [
                {"type": "conv2d", "name": "a", "filters": 2, "kernel_size": 3, "padding": "same", "inputs": ["image"]},
                {"type": "conv2d", "name": "b", "filters": 2, "kernel_size": 1, "inputs": ["image"]},
                {"type": "add", "name": "sum", "inputs": ["a", "b"]},
                {"type": "concatenate", "name": "cat", "inputs": ["sum", "image"]},
                {"type": "global_average_pool2d", "name": "pool", "inputs": ["cat"]},
                {"type": "dense", "name": "probs", "units": 3, "activation": "softmax", "inputs": ["pool"]},
            ]}
    model = build_model(plan_model(spec), spec_dir=Path("."), seed=0)
    assert model.input_names == ["image"]
    assert model.get_layer("cat").output.shape == (None, 8, 8, 3)
    assert model(np.zeros((1, 8, 8, 1), np.float32)).shape == (1, 3)


def test_functional_graph_with_an_unknown_input_names_the_layer_key() -> None:
    spec = {"kind": "functional", "inputs": [{"name": "x", "shape": [4]}], "outputs": ["y"],
            "layers": [{"type": "dense", "name": "y", "units": 2, "inputs": ["nope"]}]}
    with pytest.raises(ModelError) as caught:
        build_model(plan_model(spec), spec_dir=Path("."))
    assert caught.value.path == ("model", "layers", 0, "inputs") and "nope" in caught.value.message


def test_seed_makes_initial_weights_reproducible() -> None:
    spec = {"kind": "sequential", "input_shape": [4], "layers": [{"type": "dense", "units": 3}]}
    first = build_model(plan_model(spec), spec_dir=Path("."), seed=5).get_weights()
    second = build_model(plan_model(spec), spec_dir=Path("."), seed=5).get_weights()
    third = build_model(plan_model(spec), spec_dir=Path("."), seed=6).get_weights()
    np.testing.assert_array_equal(first[0], second[0])
    assert not np.array_equal(first[0], third[0])


def test_builder_function_is_imported_from_the_spec_folder(tmp_path: Path) -> None:
    (tmp_path / "my_models.py").write_text(
        "import tf_keras\n"
        "def mlp(width):\n"
        "    return tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(width, activation='softmax')])\n")
    spec = {"kind": "builder", "builder": "my_models:mlp", "args": {"width": 7}, "input_shape": [4]}
    try:
        model = build_model(plan_model(spec), spec_dir=tmp_path)
    finally:
        sys.modules.pop("my_models", None)
    assert model.output_shape == (None, 7)
    with pytest.raises(ModelError) as caught:
        build_model(plan_model({**spec, "builder": "my_models:missing"}), spec_dir=tmp_path)
    assert caught.value.path == ("model", "builder")
    sys.modules.pop("my_models", None)
    with pytest.raises(ModelError) as caught:
        build_model(plan_model({**spec, "input_shape": [5]}), spec_dir=tmp_path)
    assert caught.value.path == ("model", "input_shape")
    sys.modules.pop("my_models", None)


def test_saved_model_is_loaded_with_its_weights(tmp_path: Path) -> None:
    original = build_model(plan_model({"kind": "sequential", "input_shape": [4], "layers": [{"type": "dense", "units": 3}]}),
                           spec_dir=tmp_path, seed=3)
    original.save(tmp_path / "exported", save_format="tf")
    loaded = build_model(plan_model({"kind": "saved_model", "path": "exported", "input_shape": [4]}), spec_dir=tmp_path)
    x = np.ones((1, 4), np.float32)
    np.testing.assert_allclose(loaded(x).numpy(), original(x).numpy(), rtol=1e-6)
    with pytest.raises(ModelError) as caught:
        build_model(plan_model({"kind": "saved_model", "path": "missing", "input_shape": [4]}), spec_dir=tmp_path)
    assert caught.value.path == ("model", "path")


def test_placement_builds_layers_under_their_device() -> None:
    spec = {"kind": "sequential", "input_shape": [4], "placement": [{"device": "CPU:0", "layers": ["a"]}],
            "layers": [{"type": "dense", "name": "a", "units": 3}, {"type": "dense", "name": "b", "units": 2}]}
    model = build_model(plan_model(spec), spec_dir=Path("."), seed=0)
    assert model(np.ones((1, 4), np.float32)).shape == (1, 2)
    assert "CPU:0" in model.get_layer("a").kernel.device


def test_keras_file_round_trip(tmp_path: Path) -> None:
    model = build_model(plan_model({"kind": "sequential", "input_shape": [4], "input_name": "pixels",
                                    "layers": [{"type": "dense", "units": 3, "name": "head"}]}), spec_dir=tmp_path, seed=0)
    model.compile(optimizer="adam", loss="mse")
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    assert loaded.input_names == ["pixels"] and loaded.get_layer("head").units == 3
    np.testing.assert_array_equal(loaded.get_weights()[0], model.get_weights()[0])
