"""What a csv or npz file says, checked at build time at the spec's line (``tfspec build --check`` in CI).

The compiler already reads these files to fingerprint them; a wrong ``label_column``, a feature count the
model does not take, class labels the output layer cannot hold, text or missing feature cells, and text
class labels (``M``/``B``, accepted: the sorted values are the classes) are found here, exit 2, before any
TensorFlow. The runtime keeps its own checks for data that changes after a build.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

import tfspec
from tfspec_testing import tfspec_command

SPEC = """\
api_version: tfspec/v1
name: cancer
version: 1
data:
  source: {source}
{data}model:
  kind: sequential
  input_shape: {shape}
  layers:
    - {{type: dense, units: 8, activation: relu}}
    - {{type: dense, units: {units}, activation: {activation}}}
training: {{epochs: 1, loss: {loss}}}
targets:
  - {{kind: tflite, name: phone, quantization: {{kind: none}}}}
"""
CSV = "{kind: csv, path: cancer.csv, label_column: diagnosis}"


def write(folder: Path, csv_text: str | None = None, *, source: str = CSV, data: str = "", shape: str = "[3]",
          units: int = 2, activation: str = "softmax", loss: str = "sparse_categorical_crossentropy") -> Path:
    if csv_text is not None:
        (folder / "cancer.csv").write_text(csv_text, encoding="utf-8")
    spec = folder / "deploy.yaml"
    spec.write_text(SPEC.format(source=source, data=data, shape=shape, units=units, activation=activation, loss=loss),
                    encoding="utf-8")
    return spec


def table(rows: int = 12, labels: str = "MB", bad: dict[tuple[int, int], str] | None = None) -> str:
    """``radius,texture,smooth,diagnosis`` rows; ``bad`` puts a cell text at (data row, column)."""
    lines = ["radius,texture,smooth,diagnosis"]
    for i in range(rows):
        cells = [f"{10 + i}.5", f"{20 - i}.25", "0.1", labels[i % len(labels)]]
        for (row, column), text in (bad or {}).items():
            if row == i:
                cells[column] = text
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


def problems(spec: Path) -> list[str]:
    result = tfspec.compile(spec)
    return [d.format() for d in result.diagnostics]


def line_of(spec: Path, needle: str) -> int:
    return next(n for n, line in enumerate(spec.read_text("utf-8").splitlines(), 1) if needle in line)


def test_build_check_catches_a_wrong_label_column_at_its_line(tmp_path: Path) -> None:
    spec = write(tmp_path, table(), source=CSV.replace("diagnosis", "diagnosys"))
    out = tmp_path / "build"
    proc = subprocess.run([*tfspec_command(), "build", spec.name, "--check", "--out", str(out)], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    line = line_of(spec, "label_column")
    assert proc.stderr.splitlines()[0] == (
        f"deploy.yaml:{line}:41: data.source.label_column: no column 'diagnosys' in cancer.csv (columns: radius, "
        "texture, smooth, diagnosis) (hint: did you mean 'diagnosis'?)")
    assert "Traceback" not in proc.stderr and not out.exists()


def test_input_shape_against_the_csv_feature_columns(tmp_path: Path) -> None:
    spec = write(tmp_path, table(), shape="[4]")
    assert problems(spec) == [
        f"{spec}:{line_of(spec, 'input_shape')}:3: model.input_shape: input shape [4] does not match cancer.csv's 3 "
        "feature columns (every column but 'diagnosis') (hint: set the input shape to [3], or reshape with "
        "data.preprocessing.reshape)"]
    named = write(tmp_path, source="{kind: csv, path: cancer.csv, label_column: diagnosis, feature_columns: [radius, "
                                    "texture, smoth]}")
    [message] = problems(named)
    assert ": data.source.feature_columns[2]: no column 'smoth' in cancer.csv" in message
    assert message.endswith("(hint: did you mean 'smooth'?)")


def test_class_count_against_the_output_layer_without_labels(tmp_path: Path) -> None:
    spec = write(tmp_path, table(labels="012"), units=2)
    [message] = problems(spec)
    assert message == (f"{spec}:{line_of(spec, 'units: 2')}:21: model.layers[1].units: the model outputs 2 classes "
                       "(labels 0..1) but cancer.csv's label column holds labels 0, 1, 2 (hint: make the output layer "
                       "3 units wide (and data.num_classes / data.labels match), or fix the labels)")
    missing = write(tmp_path, table(labels="01"), units=3)
    [message] = problems(missing)
    assert "the model outputs 3 classes but cancer.csv's label column holds 2 (0, 1; no example of 2)" in message
    fractional = write(tmp_path, table(labels="01").replace(",1\n", ",0.5\n"), units=2)
    [message] = problems(fractional)
    assert ": data.source.label_column: cancer.csv line 3: the class label '0.5' is not a whole number" in message


def test_text_class_labels_are_the_sorted_values_recorded_in_the_plan(tmp_path: Path) -> None:
    spec = write(tmp_path, table(labels="MMB"))
    result = tfspec.compile(spec)
    assert result.ok, [d.format() for d in result.diagnostics]
    data = result.plan.step("data").params
    assert data.label_values == ["B", "M"] and data.labels == ["B", "M"] and data.num_classes == 2
    assert result.files["phone/labels.txt"] == "B\nM\n"
    # data.labels fixes another order; every value must be in it
    ordered = write(tmp_path, data="  labels: [M, B]\n")
    assert tfspec.compile(ordered).plan.step("data").params.label_values == ["M", "B"]
    unknown = write(tmp_path, table(labels="MBX"), data="  labels: [M, B]\n")
    [message] = problems(unknown)
    assert ": data.labels: cancer.csv line 4 holds label 'X', which data.labels does not list" in message
    # three names for a two-class output layer; one sigmoid unit takes exactly two
    assert "the model outputs 2 classes but cancer.csv's label column has 3 class names (B, M, X)" in problems(
        write(tmp_path, table(labels="MBX")))[0]
    binary = write(tmp_path, table(labels="MB"), units=1, activation="sigmoid", loss="binary_crossentropy")
    assert tfspec.compile(binary).plan.step("data").params.label_values == ["B", "M"]
    regression = write(tmp_path, table(labels="MB"), units=1, activation="linear", loss="mean_squared_error")
    [message] = problems(regression)
    assert "the label 'M' is not a finite number (hint: a regression loss needs numeric labels)" in message


def test_missing_text_and_non_finite_feature_cells_name_line_and_column(tmp_path: Path) -> None:
    spec = write(tmp_path, table(rows=40, bad={(20, 1): "nan", (22, 0): "", (25, 2): "high", (30, 0): "inf"}))
    path = f"{spec}:{line_of(spec, 'source:')}:23: data.source.path"
    assert problems(spec) == [
        f"{path}: cancer.csv line 22: column 'texture' holds 'nan': a missing value (hint: impute it from the "
        "training split with data.missing_values ({strategy: mean}), or fill it in)",
        f"{path}: cancer.csv line 24: column 'radius' is empty: a missing value (hint: impute it from the training "
        "split with data.missing_values ({strategy: mean}), or fill it in)",
        f"{path}: cancer.csv line 27: column 'smooth' holds 'high', not a number (hint: feature columns are numeric: "
        "leave a text column out with data.source.feature_columns (or encode it as numbers first))",
        f"{path}: cancer.csv line 32: column 'radius' holds 'inf': feature values must be finite (hint: fix or drop "
        "the row)"]
    # imputing accepts the missing ones (nan, empty, and what markers lists); infinity never
    imputed = write(tmp_path, data="  missing_values: {strategy: mean, markers: ['', nan, high]}\n")
    [message] = problems(imputed)
    assert "cancer.csv line 32: column 'radius' holds 'inf'" in message
    (tmp_path / "cancer.csv").write_text(table(rows=40, bad={(20, 1): "nan", (22, 0): "", (25, 2): "high"}))
    assert problems(imputed) == []


def test_a_missing_label_is_never_imputed(tmp_path: Path) -> None:
    spec = write(tmp_path, table(bad={(3, 3): ""}), data="  missing_values: {strategy: median}\n")
    [message] = problems(spec)
    assert ": data.source.label_column: cancer.csv line 5: the label is missing ('') (hint: labels are never " \
        "imputed: fill it in or drop the row)" in message


def test_missing_values_need_a_source_that_misses_values_and_float_inputs(tmp_path: Path) -> None:
    digits = write(tmp_path, source="{kind: sklearn_digits}", shape="[64]", units=10,
                   data="  missing_values: {strategy: mean}\n")
    [message] = problems(digits)
    assert ": data.missing_values: a sklearn_digits source has no missing values" in message
    records = write(tmp_path, source="{kind: tfrecord, path: 'p-*.tfrecord', label: y, features: {x: {dtype: float32, "
                                     "shape: [3]}}}", data="  missing_values: {strategy: median}\n")
    (tmp_path / "p-0.tfrecord").write_bytes(b"")
    [message] = problems(records)
    assert ": data.missing_values.strategy: median needs the training split in memory" in message
    assert "missing_values: strategy constant needs a value" in problems(
        write(tmp_path, table(), data="  missing_values: {strategy: constant}\n"))[0]
    text = SPEC.format(source="{kind: csv, path: cancer.csv, label_column: diagnosis, feature_columns: [radius, "
                              "texture, smooth]}", data="  missing_values: {strategy: mean}\n"
                              "  preprocessing: {in_model: true}\n", shape="[3]", units=2, activation="softmax",
                       loss="sparse_categorical_crossentropy")
    int8 = tmp_path / "int8.yaml"
    int8.write_text(text.replace("quantization: {kind: none}", "quantization: {kind: int8, input_type: float32}"))
    [message] = problems(int8)
    assert ": targets[0].quantization.kind: a full-integer model cannot impute missing values itself" in message


def _npz(folder: Path, **arrays: np.ndarray) -> None:
    np.savez(folder / "d.npz", **arrays)


NPZ = "{kind: npz, path: d.npz}"


def test_npz_arrays_shapes_and_labels_are_read_from_their_headers(tmp_path: Path) -> None:
    x = np.arange(24, dtype=np.float32).reshape(8, 3)
    _npz(tmp_path, x=x, y=np.array([0, 1] * 4))
    assert problems(write(tmp_path, source=NPZ)) == []
    assert "model.input_shape: input shape [4] does not match d.npz's array 'x' (examples of shape [3])" in problems(
        write(tmp_path, source=NPZ, shape="[4]"))[0]
    assert ": data.source.features: no array 'pixels' in d.npz (it has: x, y)" in problems(
        write(tmp_path, source="{kind: npz, path: d.npz, features: pixels}"))[0]
    _npz(tmp_path, x=x, y=np.array([0, 1, 2, 3] * 2))
    assert "the model outputs 2 classes (labels 0..1) but d.npz's array 'y' holds labels 0, 1, 2, 3" in problems(
        write(tmp_path, source=NPZ))[0]
    _npz(tmp_path, x=x, y=np.array([0.0, 1.0, 0.5, 1.0] * 2))
    assert "d.npz array 'y' element 2: the class label 0.5 is not a whole number" in problems(
        write(tmp_path, source=NPZ))[0]
    _npz(tmp_path, x=x[:5], y=np.array([0, 1] * 4))
    assert ": data.source.features: 5 rows in array 'x' but 8 labels in d.npz" in problems(
        write(tmp_path, source=NPZ))[0]


SITECUSTOMIZE = """\
import sys


class _NoNumpy:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("numpy", "tensorflow"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _NoNumpy())
"""


def test_the_checks_need_no_numpy_and_the_facts_are_memoised_by_content(tmp_path: Path) -> None:
    """A compiler-only install has no NumPy: the npz headers and labels are read with the standard library."""
    _npz(tmp_path, x=np.arange(24, dtype=np.float32).reshape(8, 3), y=np.array([0, 1, 2, 0, 1, 2, 0, 1]))
    spec = write(tmp_path, source=NPZ)
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE)
    proc = subprocess.run([*tfspec_command(), "validate", spec.name], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(blocker)})
    assert proc.returncode == 2, proc.stderr
    assert "the model outputs 2 classes (labels 0..1) but d.npz's array 'y' holds labels 0, 1, 2" in proc.stderr
    assert "No module named" not in proc.stderr
    memo = json.loads((tmp_path / ".tfspec" / "input-digests.json").read_text("utf-8"))
    assert [key.split(":", 1)[1] for key in memo["facts"]] == ["npz1|y"]


def test_the_facts_of_an_unchanged_file_come_from_the_memo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tfspec.compiler import inputs

    reads: list[Path] = []
    real = inputs.csv_facts
    monkeypatch.setattr(inputs, "csv_facts", lambda path, *args: reads.append(path) or real(path, *args))
    spec = write(tmp_path, table())
    assert problems(spec) == [] and problems(spec) == []
    assert len(reads) == 1  # the second build found the header and labels in .tfspec/input-digests.json
    (tmp_path / "cancer.csv").write_text(table(labels="MBX"), encoding="utf-8")
    assert "3 class names (B, M, X)" in problems(spec)[0] and len(reads) == 2
