"""Small in-memory sources (``sklearn_digits``, ``npz``, ``csv``): read whole, checked, named by spec key.

Large data streams from files (:mod:`tfspec.runtime.sources`); these three fit in memory by nature and are
read once per pipeline. Every problem raises :class:`DataError` naming the ``data.source`` key.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.compiler.locations import is_object_store, local_path
from tfspec.runtime.errors import DataError

__all__ = ["read_source", "existing_file", "SOURCE"]

SOURCE = ("data", "source")


def existing_file(spec_dir: Path, relative: str, key: str = "path") -> Path:
    if is_object_store(relative):
        raise DataError(SOURCE + (key,), f"{relative}: npz and csv sources are read from local files only",
                        "write the data as TFRecord shards or an image folder to read it from a bucket")
    path = local_path(spec_dir, relative)
    if not path.exists():
        raise DataError(SOURCE + (key,), f"{relative} does not exist (looked in {spec_dir})")
    return path


def _sklearn_digits(source: dict[str, Any], spec_dir: Path,
                    feature_order: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float32), digits.target.astype(np.int64), None


def _npz(source: dict[str, Any], spec_dir: Path,
         feature_order: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    path = existing_file(spec_dir, source["path"])
    # numpy's own message for a file that is not an npz ("pickled data ... allow_pickle=") points at an
    # unsafe fix: say what the file should be instead. Pickles are never loaded.
    not_npz = f"{source['path']} is not a valid .npz archive of numeric arrays (numpy.savez writes one)"
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(SOURCE + ("path",), not_npz) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(SOURCE + ("path",), not_npz)
    features = source["features"]
    # features per model input ({input: array}): each flattened, concatenated in model input order
    wanted = ([(("labels",), source["labels"])] + ([(("features", k), features[k]) for k in feature_order or features]
              if isinstance(features, dict) else [(("features",), features)]))
    with archive:
        arrays = {}
        for key, name in wanted:
            if name not in archive.files:
                raise DataError(SOURCE + key, f"no array {name!r} in {source['path']} "
                                f"(it has: {', '.join(sorted(archive.files))})")
            try:
                arrays[key] = archive[name]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
                raise DataError(SOURCE + key, f"array {name!r} in {source['path']} is not a numeric array: "
                                "save it with a numeric dtype (object arrays are never loaded)") from error
    y = arrays.pop(("labels",))
    for key, x in arrays.items():
        if len(x) != len(y):
            raise DataError(SOURCE + key, f"{len(x)} feature rows but {len(y)} labels in {source['path']}")
    if isinstance(features, dict):
        return np.concatenate([x.reshape(len(x), -1).astype(np.float32) for x in arrays.values()], axis=1), y, None
    return arrays[("features",)], y, None


_TEXT_LABEL_HINT = "labels are class indices 0..N-1: write them as numbers, and the class names in data.labels"


def _number(text: str, row: int, column: str, relative: str, key: tuple[str, ...]) -> float:
    try:
        return float(text)
    except ValueError:
        hint = _TEXT_LABEL_HINT if key == ("label_column",) else None
        raise DataError(SOURCE + key, f"{relative} line {row}: column {column!r} holds {text[:80]!r}, not a number",
                        hint) from None


def _csv(source: dict[str, Any], spec_dir: Path,
         feature_order: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    path = existing_file(spec_dir, source["path"])
    relative = source["path"]
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=source.get("delimiter", ","))
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(SOURCE + ("path",), f"{relative} is empty") from None
        rows = [row for row in reader if row]
    label = source["label_column"]
    if label not in header:
        raise DataError(SOURCE + ("label_column",), f"no column {label!r} in {relative} (columns: {', '.join(header)})")
    columns = source.get("feature_columns")
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
    x = np.empty((len(rows), len(features)), dtype=np.float32)
    y = np.empty(len(rows), dtype=np.float64)
    for i, row in enumerate(rows):
        if len(row) != len(header):
            raise DataError(SOURCE + ("path",), f"{relative} line {i + 2}: {len(row)} fields, the header has {len(header)}")
        y[i] = _number(row[label_at], i + 2, label, relative, ("label_column",))
        for j, at in enumerate(feature_at):
            x[i, j] = _number(row[at], i + 2, header[at], relative, ("feature_columns",))
    return x, y, None


_READERS = {"sklearn_digits": _sklearn_digits, "npz": _npz, "csv": _csv}


def read_source(source: dict[str, Any], spec_dir: Path,
                feature_order: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """``(features, labels, None)`` of a small in-memory source (``sklearn_digits``, ``npz``, ``csv``)."""
    return _READERS[source["kind"]](source, spec_dir, feature_order)
