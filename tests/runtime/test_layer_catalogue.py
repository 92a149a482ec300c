"""The tf_keras layer catalogue: derived from tf_keras (fresh), checked by `build` without TensorFlow (exact
key paths), and built by the runtime (wrappers, attention, merging layers)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

from runtime_testing import invoke, plan_model

from tfspec.runtime.catalogue import COMMAND, catalogue_text
from tfspec.runtime.model_builder import build_model
from tfspec.base.catalogue import CATALOGUE_FILE

SPEC = """\
api_version: tfspec/v1
name: layers
version: 1
data:
  source: {{kind: sklearn_digits}}
model:
  kind: sequential
  input_shape: [64]
  layers:
    - {{type: reshape, target_shape: [8, 8, 1]}}
    {layer}
    - {{type: flatten}}
    - {{type: dense, units: 10, activation: softmax}}
targets:
  - {{kind: tf_serving, name: serving}}
"""


def test_the_committed_catalogue_is_what_tf_keras_gives() -> None:
    assert CATALOGUE_FILE.read_text("utf-8") == catalogue_text(), f"stale: regenerate with {COMMAND}"


def _validate(tmp_path: Path, layer: str) -> tuple[int, str]:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.format(layer=layer), encoding="utf-8")
    result = invoke("validate", str(spec))
    return result.exit_code, " ".join(result.output.split())


def test_catalogue_layers_validate_without_tensorflow(tmp_path: Path) -> None:
    code, output = _validate(tmp_path, "- {type: conv2d_transpose, filters: 4, kernel_size: 3, strides: 2}")
    assert code == 0, output
    spec = tmp_path / "deploy.yaml"
    probe = ("import sys, tfspec; r = tfspec.compile(sys.argv[1]); "
             "assert r.ok, r.diagnostics; assert 'tensorflow' not in sys.modules and 'tf_keras' not in sys.modules")
    subprocess.run([sys.executable, "-c", probe, str(spec)], check=True)


def test_unknown_argument_is_named_at_its_key(tmp_path: Path) -> None:
    code, output = _validate(tmp_path, "- {type: conv2d_transpose, filtrs: 4, kernel_size: 3}")
    assert code == 2
    assert "deploy.yaml:11:32: model.layers[1].filtrs: conv2d_transpose (Conv2DTranspose) has no argument 'filtrs' " \
           "(did you mean 'filters'?)" in output
    assert "deploy.yaml:11:7: model.layers[1]: conv2d_transpose (Conv2DTranspose) needs 'filters' " in output


def test_argument_of_the_wrong_kind(tmp_path: Path) -> None:
    code, output = _validate(tmp_path, "- {type: up_sampling2d, size: [2, 2], interpolation: 3}")
    assert code == 2
    assert "model.layers[1].interpolation: invalid value 3 for UpSampling2D(interpolation=...): expected a string" \
           in output


def test_the_runtime_builds_catalogue_layers(tmp_path: Path) -> None:
    model = build_model(plan_model({
        "kind": "functional",
        "inputs": [{"name": "image", "shape": [8, 8, 1]}, {"name": "sequence", "shape": [6, 4]}],
        "layers": [
            {"type": "conv2d_transpose", "name": "up", "inputs": ["image"], "filters": 2, "kernel_size": 3,
             "strides": 2, "padding": "same"},
            {"type": "zero_padding2d", "name": "pad", "inputs": ["up"], "padding": 1},
            {"type": "cropping2d", "name": "crop", "inputs": ["pad"], "cropping": 1},
            {"type": "leaky_relu", "name": "leaky", "inputs": ["crop"], "alpha": 0.2},
            {"type": "spatial_dropout2d", "name": "drop", "inputs": ["leaky"], "rate": 0.1},
            {"type": "global_average_pool2d", "name": "pool", "inputs": ["drop"]},
            {"type": "bidirectional", "name": "bi", "inputs": ["sequence"], "layer": {"type": "lstm", "units": 3,
                                                                                        "return_sequences": True}},
            {"type": "multi_head_attention", "name": "attend", "inputs": ["bi", "bi"], "num_heads": 2, "key_dim": 3},
            {"type": "time_distributed", "name": "per_step", "inputs": ["attend"], "layer": {"type": "dense",
                                                                                             "units": 2}},
            {"type": "global_max_pool1d", "name": "steps", "inputs": ["per_step"]},
            {"type": "multiply", "name": "joined", "inputs": ["pool", "steps"]},
            {"type": "dense", "name": "out", "inputs": ["joined"], "units": 3, "activation": "softmax"},
        ],
        "outputs": ["out"],
    }), spec_dir=tmp_path, seed=1)
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    assert kinds["up"] == "Conv2DTranspose" and kinds["bi"] == "Bidirectional" and kinds["attend"] == "MultiHeadAttention"
    assert model.get_layer("leaky").alpha == np.float32(0.2)
    out = model([np.zeros((2, 8, 8, 1), np.float32), np.zeros((2, 6, 4), np.float32)])
    assert out.shape == (2, 3)


def test_normalization_is_adapted_on_the_training_split_and_kept_when_given(tmp_path: Path) -> None:
    from tfspec.runtime.model_builder import adapt_preprocessing

    x = np.random.default_rng(0).normal(3.0, 2.0, size=(200, 4)).astype(np.float32)
    model = build_model(plan_model({"kind": "sequential", "input_shape": [4], "layers": [
        {"type": "rescaling", "name": "scale", "scale": 0.5},
        {"type": "normalization", "name": "norm"},
        {"type": "normalization", "name": "fixed", "mean": 0.0, "variance": 1.0},
        {"type": "dense", "units": 2, "activation": "softmax"}]}), spec_dir=tmp_path, seed=1)
    assert adapt_preprocessing(model, x) == ["norm"]
    normalized = model.get_layer("norm")(model.get_layer("scale")(x)).numpy()
    np.testing.assert_allclose(normalized.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(normalized.std(axis=0), 1.0, atol=1e-2)
