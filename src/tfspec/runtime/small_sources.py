"""Small in-memory sources (``sklearn_digits``, ``npz``, ``csv``): read whole, checked, named by spec key.

Large data streams from files (:mod:`tfspec.runtime.sources`); these three fit in memory by nature and are
read once per pipeline. Every problem raises :class:`DataError` naming the ``data.source`` key, the file and
the row: an empty, text, NaN or infinite feature value (NaN and the CSV's missing markers are kept as NaN,
to be imputed, when ``data.missing_values`` is set; infinity never is), a label that is missing or not a
number. A CSV label column of class names is mapped with the plan's ``label_values`` (the
:class:`~tfspec.runtime.sources.DataSource` carries them), so every step reads the same class indices.
"""

from __future__ import annotations

import csv
import math
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.base.locations import is_object_store, local_path
from tfspec.plan import CsvSourceParams, NpzSourceParams, SklearnDigitsSourceParams
from tfspec.runtime.errors import DataError
from tfspec.runtime.data_source import DataSource

__all__ = ["read_source", "existing_file", "check_finite", "SOURCE"]

SOURCE = ("data", "source")


def existing_file(spec_dir: Path, relative: str, key: str = "path") -> Path:
    if is_object_store(relative):
        raise DataError(SOURCE + (key,), f"{relative}: npz and csv sources are read from local files only",
                        "write the data as TFRecord shards or an image folder to read it from a bucket")
    path = local_path(spec_dir, relative)
    if not path.exists():
        raise DataError(SOURCE + (key,), f"{relative} does not exist (looked in {spec_dir})")
    return path


def _sklearn_digits(read: DataSource, source: SklearnDigitsSourceParams, spec_dir: Path,
                    feature_order: list[str] | None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float32), digits.target.astype(np.int64), None


def _npz(read: DataSource, source: NpzSourceParams, spec_dir: Path,
         feature_order: list[str] | None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    path = existing_file(spec_dir, source.path)
    # numpy's own message for a file that is not an npz ("pickled data ... allow_pickle=") points at an
    # unsafe fix: say what the file should be instead. Pickles are never loaded.
    not_npz = f"{source.path} is not a valid .npz archive of numeric arrays (numpy.savez writes one)"
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(SOURCE + ("path",), not_npz) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(SOURCE + ("path",), not_npz)
    features = source.features
    # features per model input ({input: array}): each flattened, concatenated in model input order
    wanted = ([(("labels",), source.labels)] + ([(("features", k), features[k]) for k in feature_order or features]
              if isinstance(features, dict) else [(("features",), features)]))
    with archive:
        arrays = {}
        for key, name in wanted:
            if name not in archive.files:
                raise DataError(SOURCE + key, f"no array {name!r} in {source.path} "
                                f"(it has: {', '.join(sorted(archive.files))})")
            try:
                arrays[key] = archive[name]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
                raise DataError(SOURCE + key, f"array {name!r} in {source.path} is not a numeric array: "
                                "save it with a numeric dtype (object arrays are never loaded)") from error
    y = arrays.pop(("labels",))
    if y.dtype.kind == "f" and not np.all(np.isfinite(y)):
        bad = int(np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).any(axis=1))[0])
        raise DataError(SOURCE + ("labels",), f"{source.path} array {source.labels!r} row {bad}: the label is "
                        f"{y.reshape(len(y), -1)[bad][0]}, not a finite number",
                        "labels are never imputed: fix or drop the example")
    for key, x in [(("labels",), y), *arrays.items()]:
        if x.dtype.kind not in "iufb":  # text or bytes arrays load without pickle, but are not numbers
            name = source.labels if key == ("labels",) else features if len(key) == 1 else features[key[1]]
            raise DataError(SOURCE + key, f"array {name!r} in {source.path} is not numeric (dtype {x.dtype.str})",
                            "save it with a numeric dtype (object arrays are never loaded)")
    for key, x in arrays.items():
        if len(x) != len(y):
            raise DataError(SOURCE + key, f"{len(x)} feature rows but {len(y)} labels in {source.path}")
        name = features[key[1]] if len(key) > 1 else features
        check_finite(x, lambda i, name=name: f"{source.path} array {name!r} row {i}",
                     read.missing_values is not None, _element(tuple(x.shape[1:])))
    if isinstance(features, dict):
        return np.concatenate([x.reshape(len(x), -1).astype(np.float32) for x in arrays.values()], axis=1), y, None
    return arrays[("features",)], y, None


_MISSING_HINT = "impute it from the training split with data.missing_values ({strategy: mean}), or fill it in"


def _missing_markers(read: DataSource) -> set[str] | None:
    """The CSV cells that mean "missing" (``data.missing_values.markers``); None: missing values are errors."""
    return set(read.missing_values.markers) if read.missing_values is not None else None


def _label(text: str, line: int, column: str, relative: str, classes: dict[str, int] | None) -> float:
    """A label cell: its class index (``classes`` maps a text label column's values), or its number."""
    text = text.strip()
    if classes is not None:
        if text not in classes:
            raise DataError(SOURCE + ("label_column",), f"{relative} line {line}: label {text[:80]!r} is not one of "
                            f"the classes the plan was built with ({', '.join(list(classes)[:12])})",
                            "the file changed since tfspec build: build again")
        return float(classes[text])
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        what = "is empty" if not text else f"holds {text[:80]!r}"
        raise DataError(SOURCE + ("label_column",), f"{relative} line {line}: the label column {column!r} {what}, "
                        "not a finite number", "labels are never imputed: fill it in or drop the row")
    return value


def _feature(text: str, line: int, column: str, relative: str, markers: set[str] | None) -> float:
    """A feature cell as a number; NaN for a missing value when ``markers`` (missing values are imputed)."""
    text = text.strip()
    if markers is not None and text in markers:
        return math.nan
    try:
        value = float(text)
    except ValueError:
        what = "is empty" if not text else f"holds {text[:80]!r}, not a number"
        hint = _MISSING_HINT if not text else ("feature columns are numeric: leave a text column out with "
                                               "data.source.feature_columns (or encode it as numbers first)")
        raise DataError(SOURCE + ("path",), f"{relative} line {line}: column {column!r} {what}", hint) from None
    if math.isinf(value):
        raise DataError(SOURCE + ("path",), f"{relative} line {line}: column {column!r} holds {text!r}: feature "
                        "values must be finite", "fix or drop the row")
    if math.isnan(value) and markers is None:
        raise DataError(SOURCE + ("path",), f"{relative} line {line}: column {column!r} holds {text!r}: a missing "
                        "value", _MISSING_HINT)
    return value


def check_finite(x: np.ndarray, where: str, missing_allowed: bool, column: Any = None) -> None:
    """Refuse NaN (unless ``missing_allowed``: NaN is a missing value to impute) and infinity in a batch of
    examples; ``where(i)`` names example ``i`` (file and row or record), ``column(j)`` its flat element ``j``."""
    x = np.asarray(x)
    if x.dtype.kind != "f":
        return
    flat = x.reshape(len(x), -1)
    bad = np.isinf(flat) if missing_allowed else ~np.isfinite(flat)
    if not bad.any():
        return
    row, element = (int(v) for v in np.argwhere(bad)[0])
    value = flat[row, element]
    name = column(element) if column is not None else f"element {element}"
    if np.isnan(value):
        raise DataError(SOURCE + ("path",), f"{where(row)}: {name} is NaN: a missing value", _MISSING_HINT)
    raise DataError(SOURCE + ("path",), f"{where(row)}: {name} is {value}: feature values must be finite",
                    "fix or drop the example")


def _element(shape: tuple[int, ...]) -> Any:
    return lambda j: "element " + str(list(int(i) for i in np.unravel_index(j, shape))) if len(shape) > 1 \
        else f"column {j}"


def _csv(read: DataSource, source: CsvSourceParams, spec_dir: Path,
         feature_order: list[str] | None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    path = existing_file(spec_dir, source.path)
    relative = source.path
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=source.delimiter)
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(SOURCE + ("path",), f"{relative} is empty") from None
        rows: list[list[str]] = []
        lines: list[int] = []
        for row in reader:
            if row:
                rows.append(row)
                lines.append(reader.line_num)
    label = source.label_column
    if label not in header:
        raise DataError(SOURCE + ("label_column",), f"no column {label!r} in {relative} (columns: {', '.join(header)})")
    columns = source.feature_columns
    # columns per model input ({input: [columns]}): concatenated in model input order
    where: list[tuple[str | int, ...]]
    if isinstance(columns, dict):
        order = feature_order or list(columns)
        where = [("feature_columns", k, i) for k in order for i in range(len(columns[k]))]
        features = [name for k in order for name in columns[k]]
    elif columns:
        where, features = [("feature_columns", i) for i in range(len(columns))], list(columns)
    else:
        features = [h for h in header if h != label]
        where = []
    for at, name in zip(where, features):
        if name not in header:
            raise DataError(SOURCE + at, f"no column {name!r} in {relative} (columns: {', '.join(header)})")
    label_at = header.index(label)
    feature_at = [header.index(name) for name in features]
    names = read.label_values
    classes = {name: i for i, name in enumerate(names)} if names else None
    markers = _missing_markers(read)
    x = np.empty((len(rows), len(features)), dtype=np.float32)
    y = np.empty(len(rows), dtype=np.float64)
    for i, (row, line) in enumerate(zip(rows, lines)):
        if len(row) != len(header):
            raise DataError(SOURCE + ("path",), f"{relative} line {line}: {len(row)} fields, the header has {len(header)}")
        y[i] = _label(row[label_at], line, label, relative, classes)
        for j, at in enumerate(feature_at):
            x[i, j] = _feature(row[at], line, header[at], relative, markers)
    return x, y, None


_READERS: dict[type, Any] = {SklearnDigitsSourceParams: _sklearn_digits, NpzSourceParams: _npz, CsvSourceParams: _csv}


def read_source(read: DataSource, spec_dir: Path,
                feature_order: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """``(features, labels, None)`` of a small in-memory source (``sklearn_digits``, ``npz``, ``csv``)."""
    return _READERS[type(read.source)](read, read.source, spec_dir, feature_order)
