"""A keras.applications backbone (MobileNetV2, alpha 0.35, 96×96) with weights from a local file, a head
of spec layers and the two-phase schedule, converted to int8 TFLite. No downloads: the weights file is a
random initialisation saved by the test."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime_testing import invoke, read_json

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

SPEC = """\
api_version: tfspec/v1
name: pets
version: 1
data:
  source: {{kind: npz, path: images.npz, features: x, labels: y}}
  split: {{validation: 0.1, test: 0.25, seed: 4}}
model:
  kind: application
  application: MobileNetV2
  args: {{alpha: 0.35}}
  weights: {weights}
  input_shape: [96, 96, 3]
  head:
    - {{type: global_average_pool2d}}
    - {{type: dense, name: classes, units: 2, activation: softmax}}
  fine_tune: {{unfreeze: 12, epochs: 1, learning_rate: 1.0e-4}}
training:
  optimizer: {{kind: adam, learning_rate: 0.01}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 1
  batch_size: 16
  naive_baseline: warn  # one epoch of a backbone with made-up weights: the mechanics are tested, not the model
{compression}targets:
  - {{kind: tflite, name: phone, quantization: {{kind: int8, representative_samples: 8}}}}
"""


def _backbone() -> Any:
    import tf_keras

    return tf_keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), include_top=False, weights=None)


def _write(root: Path, weights: str = "backbone.h5", compression: str = "") -> Path:
    rng = np.random.default_rng(0)
    y = np.array([0, 1] * 24, dtype=np.int64)
    x = rng.uniform(-1.0, 0.0, size=(48, 96, 96, 3)).astype(np.float32) + y[:, None, None, None]  # dark / bright
    np.savez(root / "images.npz", x=x, y=y)
    spec = root / "deploy.yaml"
    spec.write_text(SPEC.format(weights=weights, compression=compression), encoding="utf-8")
    return spec


def test_missing_weights_file_is_reported_before_anything_runs(tmp_path: Path) -> None:
    spec = _write(tmp_path, weights="nowhere.h5")
    result = invoke("validate", str(spec))
    assert result.exit_code == 2
    assert "deploy.yaml:11:3: model.weights: nowhere.h5 does not exist" in " ".join(result.output.split())


def test_compression_of_a_backbone_validates(tmp_path: Path) -> None:
    (tmp_path / "backbone.h5").write_bytes(b"")
    spec = _write(tmp_path, compression="compression:\n  - {kind: prune, target_sparsity: 0.5}\n")
    result = invoke("validate", str(spec))
    assert result.exit_code == 0, result.output  # refused before the backbone was flattened for tfmot


@pytest.mark.slow
def test_backbone_with_local_weights_trains_both_phases_and_converts_to_int8(tmp_path: Path) -> None:
    backbone = _backbone()
    backbone.save_weights(str(tmp_path / "backbone.h5"))
    spec = _write(tmp_path)
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir",
                    str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output
    report = read_json(tmp_path / "dist" / "report.json")
    train = next(s for s in report["steps"] if s["id"] == "train")
    phases = train["metrics"]["phases"]
    assert [p["phase"] for p in phases] == ["head", "fine_tune"] and phases[1]["unfrozen_layers"] > 0
    assert train["metrics"]["epochs"] == 2
    phone = report["targets"]["phone"]
    assert phone["tensors"]["input"]["dtype"] in ("float32", "int8") if "tensors" in phone else True
    assert abs(phone["metrics"]["accuracy"] - report["stages"][0]["value"]) <= 0.1
    # the loaded weights are the file's, and frozen BatchNorm kept their moving statistics in both phases
    from tfspec.runtime.keras_io import load_model

    trained = load_model(tmp_path / "cache" / train["fingerprint"], compile=False).get_layer("backbone")
    for saved, layer in ((backbone.get_layer("bn_Conv1"), trained.get_layer("bn_Conv1")),
                         (backbone.get_layer("Conv_1_bn"), trained.get_layer("Conv_1_bn"))):
        np.testing.assert_array_equal(saved.moving_mean.numpy(), layer.moving_mean.numpy())
    np.testing.assert_array_equal(backbone.get_layer("Conv1").kernel.numpy(), trained.get_layer("Conv1").kernel.numpy())


COMPRESSED = """\
compression:
  - {kind: prune, target_sparsity: 0.5, fine_tune_epochs: 1}
  - {kind: quantization_aware, preserve: [sparsity], fine_tune_epochs: 1}
"""


@pytest.mark.slow
def test_prune_and_qat_reach_the_backbone_layers(tmp_path: Path) -> None:
    import tf_keras

    backbone = tf_keras.applications.MobileNetV2(alpha=0.35, input_shape=(32, 32, 3), include_top=False, weights=None)
    backbone.save_weights(str(tmp_path / "backbone.h5"))
    spec = _write(tmp_path, compression=COMPRESSED)
    spec.write_text(spec.read_text("utf-8").replace("[96, 96, 3]", "[32, 32, 3]"), encoding="utf-8")
    rng = np.random.default_rng(1)
    y = np.array([0, 1] * 16, dtype=np.int64)
    np.savez(tmp_path / "images.npz", x=rng.uniform(-1.0, 0.0, size=(32, 32, 32, 3)).astype(np.float32)
             + y[:, None, None, None], y=y)
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir",
                    str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output
    report = read_json(tmp_path / "dist" / "report.json")
    steps = {s["id"]: s for s in report["steps"]}
    prune = steps["compress.0.prune"]["metrics"]
    assert prune["flattened"] == ["backbone"]
    pruned = set(prune["pruned_layers"])
    assert {"Conv1", "block_1_expand", "block_1_project", "Conv_1", "classes"} <= pruned
    assert not any(name.endswith("_bn") or name.startswith("bn_") or "BN" in name for name in pruned)
    from tfspec.runtime.keras_io import load_model

    flat = load_model(tmp_path / "cache" / steps["compress.0.prune"]["fingerprint"], compile=False)
    kernel = flat.get_layer("block_1_expand").kernel.numpy()
    assert abs(float(np.mean(kernel == 0)) - 0.5) < 0.05  # a backbone layer reached the target sparsity
    trained = load_model(tmp_path / "cache" / steps["train"]["fingerprint"], compile=False).get_layer("backbone")
    # the backbone's BatchNorm stayed in inference mode through the fine-tuning (moving statistics unchanged)
    np.testing.assert_array_equal(trained.get_layer("bn_Conv1").moving_mean.numpy(),
                                  flat.get_layer("bn_Conv1").moving_mean.numpy())
    qat = steps["compress.1.quantization_aware"]["metrics"]
    assert {"Conv1", "block_1_depthwise", "classes"} <= set(qat["quantized_layers"])
    assert report["targets"]["phone"]["metrics"]["size_bytes"] > 0
