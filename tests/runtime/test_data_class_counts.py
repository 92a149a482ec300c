"""The data step checks labels against the classes the model outputs, before anything trains."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runtime_testing import invoke

SPEC = """\
api_version: tfspec/v1
name: demo
version: 1
data:
  source: {source}
model:
  kind: sequential
  input_shape: [4]
  layers:
    - {{type: dense, name: hidden, units: 8, activation: relu}}
    - {{type: dense, name: logits, units: 10, activation: softmax}}
training:
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 1
targets:
  - {{kind: tf_serving, name: serving}}
"""


def _run(tmp_path: Path, source: str, training: str = "") -> tuple[int, str, Path]:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.format(source=source).replace("  epochs: 1\n", "  epochs: 1\n" + training), encoding="utf-8")
    dist = tmp_path / "dist"
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir", str(dist))
    units = next(n for n, line in enumerate(spec.read_text().splitlines(), 1) if "name: logits" in line)
    column = spec.read_text().splitlines()[units - 1].index("units") + 1
    return result.exit_code, result.output, Path(f"{spec}:{units}:{column}")


def _csv(path: Path, labels: list[int]) -> None:
    rng = np.random.default_rng(0)
    rows = ["a,b,c,d,label"] + [",".join(f"{v:.3f}" for v in rng.normal(size=4)) + f",{y}" for y in labels]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")


def test_three_class_csv_into_a_ten_unit_softmax_fails_before_training(tmp_path: Path) -> None:
    _csv(tmp_path / "train.csv", [0, 1, 2] * 20)
    code, output, where = _run(tmp_path, "{kind: csv, path: train.csv, label_column: label}")
    assert code == 2, output
    assert (f"{where}: model.layers[1].units: the model outputs 10 classes but train.csv's label column holds 3 "
            "(0, 1, 2; no example of 3, 4, 5, 6, 7, 8, 9)") in output  # found by the compiler: build --check too
    assert "run     train" not in output and not (tmp_path / "dist").exists()


def test_labels_outside_the_output_layer(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.normal(size=(60, 4)).astype(np.float32),
             y=np.array(list(range(12)) * 5, dtype=np.int64))
    code, output, where = _run(tmp_path, "{kind: npz, path: train.npz, features: x, labels: y}")
    assert code == 2, output
    assert (f"{where}: model.layers[1].units: the model outputs 10 classes (labels 0..9) but train.npz's array 'y' "
            "holds labels 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11") in output
    assert "run     train" not in output


@pytest.mark.slow
def test_a_model_at_chance_level_is_warned_about(tmp_path: Path) -> None:
    # constant features: whatever the model learns, it predicts one class for every example
    np.savez(tmp_path / "train.npz", x=np.zeros((120, 4), dtype=np.float32),
             y=np.array(list(range(10)) * 12, dtype=np.int64))
    # (no better than the naive baseline either: accepted here, so the run passes with its warnings)
    code, output, _ = _run(tmp_path, "{kind: npz, path: train.npz, features: x, labels: y}",
                           "  naive_baseline: warn\n")
    assert code == 0, output
    report = json.loads((tmp_path / "dist" / "report.json").read_text("utf-8"))
    assert report["chance"]["at_chance"] == ["trained"]
    assert [w.split(":")[0] for w in report["warnings"] if "load average" not in w] == [
        "the trained model's accuracy " + f"{report['stages'][0]['value']:.4f} is no better than the naive baseline (always "
        "class 0, the training split's majority", "the trained model is at chance level on the test split",
        "target serving is at chance level on the test split"]
    assert "WARNING: the trained model is at chance level" in " ".join(output.split())
