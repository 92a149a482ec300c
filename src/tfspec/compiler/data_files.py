"""What a local ``csv`` or ``npz`` data file says, read at build time and checked at the spec's lines.

The ``inputs`` stage already reads these files whole to digest them; this module reads them once more
when their content changes (the facts are memoised by sha256 in ``.tfspec/input-digests.json``, so an
unchanged file costs a ``stat``) and keeps what is small: a CSV's header, its row count, the distinct
values of the label column (at most :data:`MAX_CLASSES`), the first line of each kind of bad cell per
column and the first ragged row; an ``.npz``'s array names, shapes and dtypes (from the ``.npy`` headers,
no data read) and a summary of its label array. ``check_data_file`` then finds, before anything runs:

* a ``label_column`` or ``feature_columns`` entry the header lacks, an array name the archive lacks;
* a feature count that does not match ``model.input_shape`` (or ``data.preprocessing.reshape``);
* a feature cell that is text, empty, NaN or infinite (NaN and the ``markers`` are allowed with
  ``data.missing_values``; infinity never is), a missing or non-numeric label;
* class labels outside ``0..N-1``, a class count other than the model's outputs.

Text class labels (``M``/``B``) become the spec's classes here: ``data.labels`` gives their order (every
value must be listed), else the sorted values do; the result is recorded in the plan (``label_values``)
and every runtime step maps the column with it. No TensorFlow, no NumPy (a compiler-only install has none).
"""

from __future__ import annotations

import array
import ast
import csv
import dataclasses
import difflib
import math
import zipfile
from pathlib import Path
from typing import Any

from tfspec.spec.data import MISSING_MARKERS, CsvSource, NpzSource
from tfspec.base.errors import Diagnostic, SpecError
from tfspec.spec.loader import KeyPath
from tfspec.spec.model import FunctionalModel

from .losses import REGRESSION_LOSSES
from .resolve import ResolvedSpec, num_classes_key

__all__ = ["MAX_CLASSES", "csv_facts", "npz_facts", "facts_kind", "check_data_file"]

MAX_CLASSES = 1000
"""Distinct label values kept; a column with more is not a set of classes."""
_BAD_CELLS_PER_COLUMN = 8
_MAX_PROBLEMS = 12
_SOURCE: KeyPath = ("data", "source")


def facts_kind(source: CsvSource | NpzSource) -> str:
    """The memo key of what :func:`csv_facts` / :func:`npz_facts` read for this source (the label column and
    the delimiter change what is kept)."""
    if isinstance(source, CsvSource):
        return f"csv1|{source.delimiter}|{source.label_column}"
    return f"npz1|{source.labels}"


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def csv_facts(path: Path, delimiter: str, label_column: str) -> dict[str, Any]:
    """One pass over a CSV: header, rows, label values, and per column the first bad cells (see module doc)."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            header_row = next(reader, None)
            if header_row is None:
                return {"header": None}
            header = [h.strip() for h in header_row]
            label_at = header.index(label_column) if label_column in header else None
            rows = 0
            ragged: list[int] | None = None
            labels: dict[str, int] = {}
            more_labels = False
            cells: dict[str, dict[str, Any]] = {}
            for row in reader:
                if not row:
                    continue
                line = reader.line_num
                rows += 1
                if len(row) != len(header):
                    ragged = ragged or [line, len(row)]
                    continue
                for at, cell in enumerate(row):
                    text = cell.strip()
                    if at == label_at:
                        if text not in labels:
                            if len(labels) < MAX_CLASSES:
                                labels[text] = line
                            else:
                                more_labels = True
                        continue
                    value = _number(text)
                    if value is not None and math.isfinite(value):
                        continue
                    found = cells.setdefault(header[at], {"text": {}, "nan": None, "inf": None})
                    if value is None:
                        if text not in found["text"] and len(found["text"]) < _BAD_CELLS_PER_COLUMN:
                            found["text"][text] = line
                    elif math.isnan(value):
                        found["nan"] = found["nan"] or [line, text]
                    else:
                        found["inf"] = found["inf"] or [line, text]
    except UnicodeDecodeError as error:
        return {"header": None, "error": f"is not UTF-8 text ({error.reason} at byte {error.start})"}
    except csv.Error as error:
        return {"header": None, "error": f"is not a CSV file the csv module reads: {error}"}
    return {"header": header, "rows": rows, "ragged": ragged, "labels": labels, "more_labels": more_labels,
            "cells": cells}


_NPY_MAGIC = b"\x93NUMPY"
# .npy dtype codes (``descr`` without its byte-order mark) → the ``array`` module's type codes
_ARRAY_CODES = {"b1": "B", "i1": "b", "u1": "B", "i2": "h", "u2": "H", "i4": "i", "u4": "I", "i8": "q", "u8": "Q",
                "f4": "f", "f8": "d"}
_MAX_LABEL_BYTES = 64 * 2 ** 20


def _npy_header(handle: Any) -> dict[str, Any] | None:
    """An ``.npy`` member's ``{shape, dtype, kind}`` from its header (the format numpy documents in
    ``numpy.lib.format``: magic, version, header length, a Python dict literal): no NumPy needed."""
    if handle.read(6) != _NPY_MAGIC:
        return None
    major = handle.read(2)[:1]
    size = int.from_bytes(handle.read(2 if major == b"\x01" else 4), "little")
    try:
        header = ast.literal_eval(handle.read(size).decode("latin1"))
        descr, shape = header["descr"], tuple(header["shape"])
    except (ValueError, SyntaxError, KeyError, TypeError, UnicodeDecodeError):
        return None
    if not isinstance(descr, str):
        return {"shape": [int(d) for d in shape], "dtype": "structured", "kind": "V"}
    code = descr.lstrip("<>|=")
    return {"shape": [int(d) for d in shape], "dtype": descr, "kind": code[:1], "order": descr[:1],
            "fortran": bool(header.get("fortran_order"))}


def _label_values(handle: Any, header: dict[str, Any]) -> list[float] | None:
    """The label array's values (a plain list, read with the ``array`` module), or None when too big or of a
    dtype it does not read."""
    code = _ARRAY_CODES.get(str(header["dtype"]).lstrip("<>|="))
    if code is None:
        return None
    values = array.array(code)
    count = math.prod(header["shape"])
    if count * values.itemsize > _MAX_LABEL_BYTES:
        return None
    values.frombytes(handle.read(count * values.itemsize))
    if header["order"] == ">" and values.itemsize > 1:
        values.byteswap()
    return list(values)


def npz_facts(path: Path, labels_name: str) -> dict[str, Any]:
    """An ``.npz``'s arrays (name → shape, dtype) from their headers, and what its label array holds."""
    try:
        with zipfile.ZipFile(path) as archive:
            arrays: dict[str, Any] = {}
            labels = None
            for member in archive.namelist():
                if not member.endswith(".npy"):
                    continue
                with archive.open(member) as handle:
                    header = _npy_header(handle)
                    if header is None:
                        continue
                    arrays[member[:-len(".npy")]] = header
                    if member[:-len(".npy")] == labels_name and header["kind"] in "iufb":
                        labels = _label_values(handle, header)
    except (zipfile.BadZipFile, OSError, EOFError):
        return {"arrays": None}
    facts: dict[str, Any] = {"arrays": arrays, "labels": None}
    if labels is not None:
        first_bad = next((i for i, v in enumerate(labels) if not math.isfinite(v) or v % 1 != 0), None)
        distinct = sorted({int(v) for v in labels if math.isfinite(v) and v % 1 == 0})
        facts["labels"] = {"first_bad": first_bad, "bad_value": str(labels[first_bad]) if first_bad is not None else None,
                           "values": distinct[:MAX_CLASSES], "more": len(distinct) > MAX_CLASSES}
    return facts


@dataclasses.dataclass
class _Checker:
    resolved: ResolvedSpec
    name: str
    problems: list[Diagnostic] = dataclasses.field(default_factory=list)

    def add(self, key: KeyPath, message: str, hint: str | None = None) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(self.resolved.diagnostic(key, message, hint))

    @property
    def classification(self) -> bool:
        return self.resolved.spec.training.loss_spec.kind not in REGRESSION_LOSSES

    def outputs(self) -> int | None:
        """The classes the model tells apart (two for one sigmoid unit), when the spec fixes them."""
        if self.resolved.spec.training.loss_spec.kind == "binary_crossentropy":
            return 2
        return self.resolved.num_classes


def _listed(values: list[Any], limit: int = 12) -> str:
    return ", ".join(str(v) for v in values[:limit]) + (f", … ({len(values) - limit} more)" if len(values) > limit else "")


def _input_key(resolved: ResolvedSpec) -> KeyPath:
    return ("model", "inputs", 0, "shape") if isinstance(resolved.spec.model, FunctionalModel) else ("model", "input_shape")


def _check_example_shape(check: _Checker, shape: list[int], what: str) -> None:
    """The example shape the file gives (``what`` says where it comes from) against reshape and the model."""
    r = check.resolved
    if r.multi_input:
        return  # each input's slice: multi_input_features and the data step check it
    size = math.prod(shape)
    reshape = r.spec.data.preprocessing.reshape
    if reshape:
        if math.prod(reshape) != size:
            check.add(("data", "preprocessing", "reshape"), f"cannot reshape {what} ({size} values per example) to "
                      f"{list(reshape)} ({math.prod(reshape)} values)")
        return
    if list(r.input_shape) != list(shape):
        check.add(_input_key(r), f"input shape {list(r.input_shape)} does not match {what}",
                  f"set the input shape to {list(shape)}, or reshape with data.preprocessing.reshape")


def _check_class_indices(check: _Checker, values: list[int], where: str) -> None:
    """Integer class labels against the model's outputs: ``0..N-1``, each present."""
    outputs = check.outputs()
    if outputs is None or not values:
        return
    key = num_classes_key(check.resolved.spec)
    binary = check.resolved.spec.training.loss_spec.kind == "binary_crossentropy"
    if values[0] < 0 or values[-1] >= outputs:
        hint = ("binary_crossentropy takes labels 0 and 1" if binary else
                f"make the output layer {values[-1] + 1} units wide (and data.num_classes / data.labels match), "
                "or fix the labels")
        check.add(key, f"the model outputs {outputs} classes (labels 0..{outputs - 1}) but {where} holds labels "
                  f"{_listed(values)}", hint)
    elif len(values) != outputs:
        missing = sorted(set(range(outputs)) - set(values))
        check.add(key, f"the model outputs {outputs} classes but {where} holds {len(values)} ({_listed(values)}; "
                  f"no example of {_listed(missing)})",
                  f"set the output layer's units (and data.num_classes / data.labels) to {len(values)}, or add "
                  "examples of the missing classes")


def _label_names(check: _Checker, labels: dict[str, int], where: str) -> tuple[str, ...] | None:
    """Text class labels in class-index order (``data.labels``' order, else sorted), checked against the model."""
    r = check.resolved
    given = list(r.spec.data.labels or [])
    if given:
        unknown = [(line, value) for value, line in labels.items() if value not in given]
        if unknown:
            line, value = min(unknown)
            check.add(("data", "labels"), f"{check.name} line {line} holds label {value!r}, which data.labels does "
                      "not list",
                      "data.labels lists every class name of the label column, in class-index order")
            return None
        names = tuple(given)
    else:
        names = tuple(sorted(labels))
    outputs = check.outputs()
    present = [n for n in names if n in labels]
    if outputs is not None and len(names) != outputs:
        check.add(num_classes_key(r.spec), f"the model outputs {outputs} classes but {where} has {len(names)} class "
                  f"names ({_listed(list(names))})",
                  "binary_crossentropy separates two classes" if outputs == 2 and
                  r.spec.training.loss_spec.kind == "binary_crossentropy"
                  else f"set the output layer's units (and data.num_classes) to {len(names)}")
        return None
    if len(present) != len(names):
        missing = [n for n in names if n not in labels]
        check.add(("data", "labels"), f"{where} has no example of {_listed(missing)}",
                  "every class needs examples: add them, or leave the class out of data.labels")
        return None
    return names


def _check_csv(check: _Checker, source: CsvSource, facts: dict[str, Any]) -> tuple[str, ...] | None:
    name = check.name
    if facts.get("header") is None:
        check.add(_SOURCE + ("path",), f"{name} {facts.get('error') or 'is empty'}")
        return None
    header: list[str] = facts["header"]
    label = source.label_column
    if label not in header:
        close = difflib.get_close_matches(label, header, n=1)
        check.add(_SOURCE + ("label_column",), f"no column {label!r} in {name} (columns: {_listed(header)})",
                  f"did you mean {close[0]!r}?" if close else None)
    columns = source.feature_columns
    if isinstance(columns, dict):
        named = [(("feature_columns", k, i), c) for k, cs in columns.items() for i, c in enumerate(cs)]
    elif columns:
        named = [(("feature_columns", i), c) for i, c in enumerate(columns)]
    else:
        named = [((), c) for c in header if c != label]
    for key, column in named:
        if key and column not in header:
            close = difflib.get_close_matches(column, header, n=1)
            check.add(_SOURCE + key, f"no column {column!r} in {name} (columns: {_listed(header)})",
                      f"did you mean {close[0]!r}?" if close else None)
    if check.problems:
        return None  # the rest reads columns that are not there
    if facts["ragged"]:
        line, fields = facts["ragged"]
        check.add(_SOURCE + ("path",), f"{name} line {line}: {fields} fields, the header has {len(header)}")
    if not facts["rows"]:
        check.add(_SOURCE + ("path",), f"{name} has a header but no rows")
        return None
    if not columns:
        _check_example_shape(check, [len(named)], f"{name}'s {len(named)} feature columns (every column but "
                             f"{label!r})")
    _check_cells(check, [c for _, c in named], facts["cells"])
    return _check_csv_labels(check, facts)


def _check_cells(check: _Checker, features: list[str], cells: dict[str, dict[str, Any]]) -> None:
    """Non-numeric, missing and infinite feature cells, the first of each column, in line order."""
    missing = check.resolved.spec.data.missing_values
    markers = set(missing.markers) if missing is not None else set()
    found: list[tuple[int, str, str, str | None]] = []
    for column in features:
        bad = cells.get(column)
        if bad is None:
            continue
        if bad["inf"]:
            line, text = bad["inf"]
            found.append((line, column, f"holds {text!r}: feature values must be finite", "fix or drop the row"))
        texts = [(line, text) for text, line in bad["text"].items() if text not in markers]
        if texts:
            line, text = min(texts)
            if text == "" or text in MISSING_MARKERS:
                what = "is empty" if text == "" else f"holds {text!r}"
                found.append((line, column, f"{what}: a missing value",
                              "impute it from the training split with data.missing_values ({strategy: mean}), or "
                              "fill it in"))
            else:
                found.append((line, column, f"holds {text!r}, not a number",
                              "feature columns are numeric: leave a text column out with data.source.feature_columns "
                              "(or encode it as numbers first)" + ("; or list it in data.missing_values.markers "
                                                                  "if it means missing" if missing else "")))
        if bad["nan"] and missing is None:
            line, text = bad["nan"]
            found.append((line, column, f"holds {text!r}: a missing value",
                          "impute it from the training split with data.missing_values ({strategy: mean}), or fill "
                          "it in"))
    for line, column, message, hint in sorted(found)[:_MAX_PROBLEMS]:
        check.add(_SOURCE + ("path",), f"{check.name} line {line}: column {column!r} {message}", hint)


def _check_csv_labels(check: _Checker, facts: dict[str, Any]) -> tuple[str, ...] | None:
    labels: dict[str, int] = facts["labels"]
    where = f"{check.name}'s label column"
    key = _SOURCE + ("label_column",)
    missing = check.resolved.spec.data.missing_values
    blank = {"", *(missing.markers if missing is not None else MISSING_MARKERS)}
    absent = sorted((line, text) for text, line in labels.items() if text in blank)
    if absent:
        line, text = absent[0]
        check.add(key, f"{check.name} line {line}: the label is missing ({text!r})",
                  "labels are never imputed: fill it in or drop the row")
        return None
    numbers = {text: _number(text) for text in labels}
    if not check.classification:
        bad = sorted((line, text) for text, line in labels.items()
                     if numbers[text] is None or not math.isfinite(numbers[text] or 0.0))
        if bad:
            line, text = bad[0]
            check.add(key, f"{check.name} line {line}: the label {text!r} is not a finite number",
                      "a regression loss needs numeric labels")
        return None
    if facts["more_labels"]:
        check.add(key, f"{where} holds more than {MAX_CLASSES} distinct values: not a set of classes",
                  "for a numeric target use a regression loss (mean_squared_error, mean_absolute_error, huber)")
        return None
    if all(v is not None for v in numbers.values()):
        fractional = sorted((line, text) for text, line in labels.items()
                            if not math.isfinite(numbers[text] or 0.0) or (numbers[text] or 0.0) % 1 != 0)
        if fractional:
            line, text = fractional[0]
            check.add(key, f"{check.name} line {line}: the class label {text!r} is not a whole number",
                      "class labels are indices 0..N-1 or class names; for a numeric target use a regression loss")
            return None
        _check_class_indices(check, sorted({int(v or 0) for v in numbers.values()}), where)
        return None
    return _label_names(check, labels, where)


def _check_npz(check: _Checker, source: NpzSource, facts: dict[str, Any]) -> None:
    name = check.name
    arrays = facts.get("arrays")
    if arrays is None:
        check.add(_SOURCE + ("path",), f"{name} is not a valid .npz archive of numeric arrays (numpy.savez writes one)")
        return
    wanted = [(("labels",), source.labels)] + ([(("features", k), v) for k, v in source.features.items()]
                                                if isinstance(source.features, dict) else [(("features",), source.features)])
    for key, array in wanted:
        if array not in arrays:
            check.add(_SOURCE + key, f"no array {array!r} in {name} (it has: {_listed(sorted(arrays))})")
        elif arrays[array]["kind"] not in "iufb":
            check.add(_SOURCE + key, f"array {array!r} in {name} is not numeric (dtype {arrays[array]['dtype']})",
                      "save it with a numeric dtype (object arrays are never loaded)")
    if check.problems:
        return
    rows = arrays[source.labels]["shape"][:1]
    for key, array in wanted[1:]:
        shape = arrays[array]["shape"]
        if shape[:1] != rows:
            check.add(_SOURCE + key, f"{shape[0] if shape else 0} rows in array {array!r} but {rows[0] if rows else 0} "
                      f"labels in {name}")
    if not isinstance(source.features, dict) and not check.problems:
        _check_example_shape(check, arrays[source.features]["shape"][1:] or [1],
                             f"{name}'s array {source.features!r} (examples of shape "
                             f"{arrays[source.features]['shape'][1:]})")
    labels = facts.get("labels")
    if labels is None or not check.classification:
        return
    if labels["first_bad"] is not None:
        check.add(_SOURCE + ("labels",), f"{name} array {source.labels!r} element {labels['first_bad']}: the class "
                  f"label {labels['bad_value']} is not a whole number",
                  "class labels are indices 0..N-1; for a numeric target use a regression loss")
    elif labels["more"]:
        check.add(_SOURCE + ("labels",), f"array {source.labels!r} holds more than {MAX_CLASSES} classes",
                  "for a numeric target use a regression loss")
    else:
        _check_class_indices(check, labels["values"], f"{name}'s array {source.labels!r}")


def check_data_file(resolved: ResolvedSpec, facts: dict[str, Any] | None) -> ResolvedSpec:
    """The spec checked against what its csv or npz file holds; with text class labels, the spec with those
    classes (``labels``, ``label_values``, ``num_classes``). Raises one :class:`SpecError` for every problem."""
    source = resolved.spec.data.source
    if facts is None or not isinstance(source, (CsvSource, NpzSource)):
        return resolved
    check = _Checker(resolved, source.path)
    names = None
    if isinstance(source, CsvSource):
        names = _check_csv(check, source, facts)
    else:
        _check_npz(check, source, facts)
    if check.problems:
        raise SpecError(check.problems)
    if names is None:
        return resolved
    binary = resolved.spec.training.loss_spec.kind == "binary_crossentropy"
    return dataclasses.replace(resolved, labels=names, label_values=names,
                               num_classes=resolved.num_classes if binary else len(names))
