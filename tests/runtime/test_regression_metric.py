"""A regression model is measured, shown and gated by its error (mae), never called accuracy (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runtime_testing import invoke

SPEC = """\
api_version: tfspec/v1
name: prices
version: 1
data:
  source: {kind: npz, path: train.npz, features: x, labels: y}
  split: {validation: 0.1, test: 0.2, seed: 3}
model:
  kind: sequential
  input_shape: [4]
  layers:
    - {type: dense, name: hidden, units: 16, activation: relu}
    - {type: dense, name: out, units: 1}
training:
  optimizer: {kind: adam, learning_rate: 0.01}
  loss: mean_squared_error
  metrics: [mae]
  epochs: 5
targets:
  - {kind: tflite, name: phone, quantization: {kind: dynamic}, gates: {max_error_increase: 0.5, max_error: 0.0001}}
"""


@pytest.mark.slow
def test_mae_model_is_named_and_gated_by_its_error(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4)).astype(np.float32)
    np.savez(tmp_path / "train.npz", x=x, y=(x @ np.array([1.0, -2.0, 0.5, 3.0]) + 1.0).astype(np.float32))
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    dist = tmp_path / "dist"
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir", str(dist))
    assert result.exit_code == 1, result.output  # max_error: 0.0001 cannot be met
    output = " ".join(result.output.split())
    assert "test accuracy" not in output and "test mae" in output
    assert "mae on the test split (increase from the trained model)" in output
    report = json.loads((dist / "report.json").read_text("utf-8"))
    assert report["metric"] == "mae" and report["chance"] is None and report["warnings"] == []
    phone = report["targets"]["phone"]
    assert "accuracy" not in phone["metrics"] and phone["metrics"]["mae"] == phone["metrics"]["value"]
    gates = {g["name"]: g for g in phone["gates"]}
    trained = report["stages"][0]["value"]
    assert gates["max_error_increase"]["passed"]
    assert gates["max_error_increase"]["value"] == pytest.approx(phone["metrics"]["mae"] - trained, abs=1e-6)
    assert not gates["max_error"]["passed"] and gates["max_error"]["value"] == pytest.approx(phone["metrics"]["mae"],
                                                                                           abs=1e-6)
    info = json.loads((dist / "phone" / "model_info.json").read_text("utf-8"))
    assert set(info["metrics"]) == {"mae", "size_bytes"}
    # a regression model has no classes: no labels.txt with a "0" class, and model_info says what it outputs
    assert not (dist / "phone" / "labels.txt").exists()
    assert info["output_kind"] == "regression" and info["labels"] == [] and info["labels_file"] is None
