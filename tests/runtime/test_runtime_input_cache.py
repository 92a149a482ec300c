"""A real run, then a data file rewritten in place: `plan` and `run` no longer take data and training from the cache."""

from __future__ import annotations

import json
import os
from pathlib import Path

from runtime_testing import invoke

SPEC = """\
api_version: tfspec/v1
name: csvrun
version: 1
data:
  source: {kind: csv, path: train.csv, label_column: label}
  split: {validation: 0.2, test: 0.2, seed: 3}
  num_classes: 3
model:
  kind: sequential
  input_shape: [2]
  layers:
    - {type: dense, units: 3, activation: softmax}
training: {epochs: 1, batch_size: 8, naive_baseline: warn}  # the cache is tested, not the model
targets: [{kind: tflite, name: m, quantization: {kind: none}}]
"""


def _csv(shift: int) -> bytes:
    """60 rows, 3 classes; ``shift`` (one digit) moves class 2's features without changing the file size."""
    rows = ["a,b,label"]
    for i in range(60):
        label = i % 3
        rows.append(f"{label * 3 + (shift if label == 2 else 0)}.{i % 10},{label}.5,{label}")
    return ("\n".join(rows) + "\n").encode()


def _states(spec: Path) -> dict[str, bool]:
    result = invoke("plan", str(spec), "--json")
    assert result.exit_code == 0, result.output
    return {s["id"]: s["cached"] for s in json.loads(result.stdout)["steps"] if s["kind"] != "render"}


def test_csv_rewritten_in_place_reruns_data_and_training(tmp_path: Path) -> None:
    data = tmp_path / "train.csv"
    data.write_bytes(_csv(0))
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC)
    first = invoke("run", str(spec), "--dist-dir", str(tmp_path / "dist"), "--quiet")
    assert first.exit_code == 0, first.output
    assert all(_states(spec).values())

    info = data.stat()
    data.write_bytes(_csv(1))  # same size; put the old mtime back as a copy tool would
    os.utime(data, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert data.stat().st_size == info.st_size and data.stat().st_mtime_ns == info.st_mtime_ns

    assert not any(_states(spec).values())  # every step reads the data, directly or downstream
    second = invoke("run", str(spec), "--dist-dir", str(tmp_path / "dist"), "--quiet")
    assert second.exit_code == 0, second.output
    assert "run     data" in second.output and "run     train" in second.output
    assert "cached  data" not in second.output
