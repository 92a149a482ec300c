"""``tfspec init NAME --from data.csv --label COLUMN``: a first spec written from the user's own table.

The CSV is read once, streaming (rows are counted, never kept): the header, which columns hold numbers in
every row, and the label column's values. From them:

* the task: string labels, or few distinct integer labels (at most ``MAX_CLASSES``), are classes; other
  numbers are a regression target (``--task`` overrides);
* classes: ``num_classes`` for integer labels ``0..K-1``, else ``labels:`` — the distinct values in sorted
  order (the order ``labels.txt`` and the model's outputs follow);
* features: every numeric column but the label (``input_shape: [n]``); columns with text or empty cells
  are left out, by name, in ``feature_columns`` and a comment saying why;
* a model sized to the table: an MLP whose width follows the feature count, a second hidden layer and
  dropout only with enough rows; normalisation from the training split; early stopping; for regression a
  last ``rescaling`` layer with the label's mean and standard deviation (computed over the file), so the
  dense layers learn a standardized target whatever the label's units (a price in the 100,000s
  otherwise never leaves the initial error at a learning rate of 1e-3);
* targets: an int8 ``tflite`` model gated on the quality drop (a regression gate relative to the label's
  spread) and a ``tf_serving`` deployment.

The written spec is compiled before it is written (as the starter spec is): it validates and builds on the
data it was made from. No TensorFlow; no numpy (the compiler's dependencies only).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Literal

from tfspec.base.errors import TfspecError

from .render import render_template

__all__ = ["CsvProfile", "profile_csv", "spec_from_csv", "MAX_CLASSES"]

MAX_CLASSES = 20
"""At most this many distinct integer labels are read as classes; more are a regression target."""
_MAX_DISTINCT = 1000  # distinct label values kept while reading (a regression target has many)
_MIN_ROWS = 20

Task = Literal["classification", "regression"]


@dataclasses.dataclass(frozen=True)
class CsvProfile:
    """What one pass over the CSV found."""

    rows: int
    columns: tuple[str, ...]
    label: str
    features: tuple[str, ...]
    """Numeric columns with a value in every row, the label excepted, in file order."""
    left_out: tuple[tuple[str, str], ...]
    """``(column, why)`` of the columns that are not features."""
    label_values: tuple[str, ...]
    """Distinct label values (at most ``_MAX_DISTINCT`` kept), sorted."""
    label_numeric: bool
    label_integer: bool
    label_mean: float | None
    label_std: float | None
    """Mean and standard deviation (population) of a numeric label: a regression model's output scale."""


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def profile_csv(path: Path, label: str, delimiter: str = ",") -> CsvProfile:
    """Read ``path`` once (raises :class:`TfspecError` for a file tfspec cannot train on)."""
    try:
        handle = path.open(newline="", encoding="utf-8")
    except OSError as error:
        raise TfspecError(f"{path}: cannot read it ({error.strerror or error})") from None
    with handle:
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = [name.strip() for name in next(reader)]
        except StopIteration:
            raise TfspecError(f"{path}: the file is empty (a header row is needed)") from None
        except (csv.Error, UnicodeDecodeError) as error:
            raise TfspecError(f"{path}: not a CSV file ({error})") from None
        if label not in header:
            raise TfspecError(f"{path}: no column {label!r} (columns: {', '.join(header)})")
        if len(set(header)) != len(header):
            raise TfspecError(f"{path}: the header names a column twice")
        index = header.index(label)
        numeric = [True] * len(header)
        empty = [0] * len(header)
        first_text: list[str | None] = [None] * len(header)
        values: set[str] = set()
        label_numeric = label_integer = True
        total = total_sq = 0.0
        rows = 0
        try:
            for line, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) != len(header):
                    raise TfspecError(f"{path}:{line}: {len(row)} fields, the header has {len(header)}")
                rows += 1
                for column, cell in enumerate(row):
                    cell = cell.strip()
                    if not cell:
                        empty[column] += 1
                        continue
                    value = _number(cell)
                    if value is None and numeric[column]:
                        numeric[column], first_text[column] = False, cell
                    if column == index:
                        if len(values) < _MAX_DISTINCT:
                            values.add(cell)
                        if value is None:
                            label_numeric = label_integer = False
                        else:
                            label_integer = label_integer and value.is_integer()
                            total, total_sq = total + value, total_sq + value * value
        except (csv.Error, UnicodeDecodeError) as error:
            raise TfspecError(f"{path}: not a CSV file ({error})") from None
    if rows < _MIN_ROWS:
        raise TfspecError(f"{path}: {rows} rows; a model needs at least {_MIN_ROWS} to train, validate and test on")
    if empty[index]:
        raise TfspecError(f"{path}: the label column {label!r} has {empty[index]} empty cells")
    features, left_out = [], []
    for column, name in enumerate(header):
        if column == index:
            continue
        if not numeric[column]:
            left_out.append((name, f"text ({first_text[column]!r})"))
        elif empty[column]:
            left_out.append((name, f"{empty[column]} empty cells"))
        else:
            features.append(name)
    if not features:
        raise TfspecError(f"{path}: no numeric feature column besides {label!r} (left out: "
                          + ", ".join(f"{name}: {why}" for name, why in left_out) + ")")
    mean = std = None
    if label_numeric:
        mean = total / rows
        std = math.sqrt(max(total_sq / rows - mean * mean, 0.0))
    ordered = sorted(values, key=lambda v: (_number(v) is None, _number(v) or 0.0, v))
    return CsvProfile(rows, tuple(header), label, tuple(features), tuple(left_out), tuple(ordered), label_numeric,
                      label_integer, mean, std)


def _task(profile: CsvProfile, asked: Task | None) -> Task:
    if asked is not None:
        if asked == "regression" and not profile.label_numeric:
            raise TfspecError(f"--task regression: the label column {profile.label!r} holds text "
                              f"({profile.label_values[0]!r}, ...)")
        return asked
    if not profile.label_numeric:
        return "classification"
    few = len(profile.label_values) <= MAX_CLASSES
    return "classification" if profile.label_integer and few else "regression"


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (JSON's string syntax is valid YAML): column names and labels as written."""
    return json.dumps(text, ensure_ascii=False)


def _width(features: int) -> int:
    """A hidden layer about twice as wide as the input, a power of two between 16 and 256."""
    return min(256, max(16, 2 ** math.ceil(math.log2(max(2 * features, 2)))))


def spec_from_csv(name: str, data: Path, label: str, spec_path: Path, *, task: Task | None = None,
                  delimiter: str = ",") -> tuple[str, CsvProfile, Task]:
    """The text of a spec for model ``name`` trained on ``data`` (to be written at ``spec_path``)."""
    profile = profile_csv(data, label, delimiter)
    chosen = _task(profile, task)
    classes: list[str] = list(profile.label_values) if chosen == "classification" else []
    if chosen == "classification" and len(classes) >= _MAX_DISTINCT:
        raise TfspecError(f"{data}: the label column {label!r} has more than {_MAX_DISTINCT} distinct values: "
                          "not classes (use --task regression for a numeric target)")
    if chosen == "classification" and len(classes) < 2:
        raise TfspecError(f"{data}: the label column {label!r} holds one value ({classes[0]!r}): nothing to learn")
    zero_based = profile.label_integer and [float(v) for v in classes] == [float(i) for i in range(len(classes))]
    rows = profile.rows
    width = _width(len(profile.features))
    train_rows = int(rows * 0.7)
    spread = profile.label_std or 0.0
    relative = os.path.relpath(data.resolve(), spec_path.resolve().parent)
    if relative.startswith(".."):
        # a spec reads data below its own folder unless it opts in (data.external_locations)
        beside = Path(os.path.dirname(str(data)) or ".") / spec_path.name
        raise TfspecError(f"{data} is not below the folder of {spec_path} (a spec reads data below its own "
                          f"folder): write the spec beside the data (--out {beside}), or move the data below "
                          "the spec's folder")
    return render_template(
        "init/from_data.yaml.j2",
        name=name, pack=name.replace("-", "_") + "_model", package="com.example." + name.replace("-", "_"),
        data_path=_quoted(Path(relative).as_posix()), label=_quoted(label),
        delimiter=_quoted(delimiter) if delimiter != "," else None,
        rows=rows, features=[_quoted(f) for f in profile.features], left_out=list(profile.left_out),
        all_features=not profile.left_out, task=chosen,
        num_classes=len(classes) if zero_based else None,
        labels=None if zero_based or chosen == "regression" else [_quoted(c) for c in classes],
        classes=len(classes), width=width, second_layer=rows >= 5000, dropout=rows >= 1000,
        epochs=50 if rows < 2000 else 30, batch_size=32 if rows < 2000 else 128,
        representative_samples=max(1, min(200, train_rows)),
        # the int8 model may add this much error: 5 % of the label's standard deviation
        max_error_increase=float(f"{max(0.05 * spread, 1e-4):.3g}"),
        # the dense layers learn a standardized target; the last layer maps it to the label's units
        label_scale=float(f"{spread or 1.0:.6g}"), label_offset=float(f"{profile.label_mean or 0.0:.6g}"),
    ), profile, chosen
