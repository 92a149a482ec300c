"""`tfspec init NAME --from data.csv --label COLUMN`: a first spec from the user's own table that validates and
builds on it (and, in the slow suite, trains a model that learned something)."""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
from pathlib import Path

import pytest
import yaml

from tfspec_testing import tfspec_command


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tfspec_command(), *args], capture_output=True, text=True, cwd=cwd, timeout=600)


def _table(path: Path, rows: int, label: str) -> None:
    """Three numeric features, an id and a sparse text column (left out), and a label of the asked kind."""
    rng = random.Random(0)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "radius", "texture", "smooth ness", "note", "target"])
        for i in range(rows):
            r, t, s = rng.gauss(14, 3), rng.gauss(19, 4), rng.gauss(0.1, 0.02)
            value = {"string": "M" if r + 0.3 * t > 20 else "B",
                     "integer": str(int(r > 12) + int(r > 16)),
                     "number": f"{1000 * r + 50 * t + rng.gauss(0, 100):.1f}"}[label]
            writer.writerow([f"p{i}", f"{r:.3f}", f"{t:.3f}", f"{s:.4f}", "" if i % 7 else "x", value])


def _init(tmp_path: Path, label: str, rows: int = 300, *extra: str) -> dict:
    _table(tmp_path / "data.csv", rows, label)
    proc = _run("init", "tabular", "--from", "data.csv", "--label", "target", *extra, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert f"({rows} rows, 3 features" in proc.stdout and "left out id, note" in proc.stdout
    for command in (("validate", "deploy.yaml"), ("build", "deploy.yaml")):
        done = _run(*command, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    return yaml.safe_load((tmp_path / "deploy.yaml").read_text())


def test_string_labels_become_the_labels_in_sorted_order(tmp_path: Path) -> None:
    spec = _init(tmp_path, "string")
    source = spec["data"]["source"]
    assert source["feature_columns"] == ["radius", "texture", "smooth ness"]  # id and note (text) left out
    assert spec["data"]["labels"] == ["B", "M"] and "num_classes" not in spec["data"]
    assert spec["model"]["input_shape"] == [3] and spec["model"]["layers"][-1]["units"] == 2
    assert spec["training"]["loss"] == "sparse_categorical_crossentropy"
    assert [t["kind"] for t in spec["targets"]] == ["tflite", "tf_serving"]
    assert (tmp_path / "build" / "tabular" / "mobile" / "tabular_model" / "src" / "main" / "assets"
            / "labels.txt").read_text() == "B\nM\n"


def test_integer_labels_from_zero_become_num_classes(tmp_path: Path) -> None:
    spec = _init(tmp_path, "integer")
    assert spec["data"]["num_classes"] == 3 and "labels" not in spec["data"]


def test_a_numeric_target_becomes_a_regression_in_the_labels_units(tmp_path: Path) -> None:
    spec = _init(tmp_path, "number")
    assert spec["training"]["loss"] == "mean_squared_error" and spec["training"]["metrics"] == ["mae"]
    last = spec["model"]["layers"][-1]
    assert last["type"] == "rescaling" and 10000 < last["offset"] < 20000 and last["scale"] > 1000
    assert spec["targets"][0]["gates"]["max_error_increase"] > 0
    plan = json.loads((tmp_path / "build" / "tabular" / "plan.json").read_text())
    assert next(s for s in plan["steps"] if s["id"] == "evaluate")["params"]["metric"] == "mae"
    # the model is sized to the table: more rows, a second hidden layer and dropout
    (tmp_path / "big").mkdir()
    bigger = _init(tmp_path / "big", "number", 6000)
    assert [layer["type"] for layer in bigger["model"]["layers"]] == ["dense", "dense", "dropout", "dense", "rescaling"]


def test_init_from_data_refuses_what_it_cannot_use(tmp_path: Path) -> None:
    _table(tmp_path / "data.csv", 50, "string")
    missing = _run("init", "t", "--from", "data.csv", "--label", "diagnosis", cwd=tmp_path)
    assert missing.returncode == 2 and "no column 'diagnosis' (columns: id, radius" in missing.stderr
    (tmp_path / "specs").mkdir()
    outside = _run("init", "t", "--from", "data.csv", "--label", "target", "--out", "specs/deploy.yaml", cwd=tmp_path)
    assert outside.returncode == 2 and "is not below the folder of specs/deploy.yaml" in outside.stderr
    assert _run("init", "t", "--label", "target", cwd=tmp_path).returncode == 2
    text = _run("init", "t", "--from", "data.csv", "--label", "target", "--task", "regression", cwd=tmp_path)
    assert text.returncode == 2 and "holds text" in text.stderr
    assert not (tmp_path / "deploy.yaml").exists() and not (tmp_path / "specs" / "deploy.yaml").exists()


@pytest.mark.slow
@pytest.mark.parametrize("label", ["integer", "number"])
def test_the_first_spec_trains_a_model_that_learned(tmp_path: Path, label: str) -> None:
    _init(tmp_path, label, 400)
    env = {**os.environ}
    done = subprocess.run([*tfspec_command(), "run", "deploy.yaml", "--quiet"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=900, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "dist" / "tabular" / "report.json").read_text())
    trained = report["stages"][0]["value"]
    if label == "number":  # the label's std is about 3000: predicting the mean is off by ~2400
        assert trained < 600
    else:
        assert trained > 0.85
