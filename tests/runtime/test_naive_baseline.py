"""A model no better than ignoring its input fails the run (exit 1, ``passed: false``), whatever its relative gates
say, unless the spec accepts it (``training.naive_baseline: warn``); the latency figures carry the load they
were measured under."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime_testing import invoke

pytestmark = pytest.mark.slow

SPEC = """\
api_version: tfspec/v1
name: t
version: 1
data:
  source: {{kind: npz, path: d.npz}}
  split: {{validation: 0.2, test: 0.3, seed: 3}}
model:
  kind: sequential
  input_shape: [3]
  layers:
    - {{type: dense, units: {units}, activation: {activation}}}
training: {{epochs: 3, loss: {loss}{extra}}}
targets:
  - {{kind: tflite, name: phone, quantization: {{kind: none}}, gates: {{{gates}}}}}
"""


def _run(tmp_path: Path, y: np.ndarray, *, units: int = 2, activation: str = "softmax",
         loss: str = "sparse_categorical_crossentropy", extra: str = "", gates: str = "max_accuracy_drop: 0.05"):
    # features that say nothing: every example is the same
    np.savez(tmp_path / "d.npz", x=np.zeros((len(y), 3), np.float32), y=y)
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.format(units=units, activation=activation, loss=loss, extra=extra, gates=gates), encoding="utf-8")
    result = invoke("run", str(spec), "--quiet", "--dist-dir", str(tmp_path / "dist"))
    report = json.loads((tmp_path / "dist" / "report.json").read_text("utf-8"))
    return result, report


def test_a_classifier_at_the_majority_class_fails_the_run_though_its_relative_gate_passes(tmp_path: Path) -> None:
    result, report = _run(tmp_path, np.array([0, 0, 1] * 40))
    assert result.exit_code == 1, result.output
    assert report["passed"] is False
    naive = report["naive_baseline"]
    assert naive["predictor"] == "always class 0, the training split's majority" and naive["failed"] == ["trained"]
    assert report["model_checks"] == [{"model": "trained model", "name": "beats_naive_baseline",
                                       "limit": round(naive["value"], 6),
                                       "value": round(report["stages"][0]["value"], 6), "passed": False}]
    gates = {g["name"]: g for g in report["targets"]["phone"]["gates"]}
    assert gates["max_accuracy_drop"]["passed"]  # the relative gate alone would have passed this model
    assert not gates["beats_naive_baseline"]["passed"]
    assert "beats_naive_baseline" in result.stderr and "trained model" in result.stderr
    html = (tmp_path / "dist" / "report.html").read_text("utf-8")
    assert "FAILED: the trained model is no better than the naive baseline" in html and "gates failed" in html
    # the latency figures say what they were measured under
    metrics = report["targets"]["phone"]["metrics"]
    assert metrics["latency_cores"] >= 1 and "fastest of 3 calls" in metrics["latency_method"]
    assert report["machine"]["latency_load"]["cores"] >= 1 and "load average" in html


def test_the_spec_may_accept_it_with_a_warning(tmp_path: Path) -> None:
    result, report = _run(tmp_path, np.array([0, 0, 1] * 40), extra=", naive_baseline: warn")
    assert result.exit_code == 0, result.output
    assert report["passed"] is True and report["model_checks"] == []
    assert "beats_naive_baseline" not in {g["name"] for g in report["targets"]["phone"]["gates"]}
    assert any("no better than the naive baseline" in w and "accepted by training.naive_baseline: warn" in w
               for w in report["warnings"])


def test_a_regression_no_better_than_the_training_mean_fails(tmp_path: Path) -> None:
    y = np.random.default_rng(0).normal(100.0, 5.0, size=120).astype(np.float32)
    result, report = _run(tmp_path, y, units=1, activation="linear", loss="mean_squared_error",
                          gates="max_error_increase: 1.0")
    assert result.exit_code == 1, result.output
    naive = report["naive_baseline"]
    assert naive["predictor"].startswith("always the training labels' mean 100") or \
        naive["predictor"].startswith("always the training labels' mean 99")
    assert naive["value"] < 10 < report["stages"][0]["value"]  # about 4 for the mean, about 100 for the model
    assert report["passed"] is False and report["model_checks"][0]["name"] == "beats_naive_baseline"
