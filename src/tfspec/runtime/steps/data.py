"""``data`` step: index the source, split it by hashed keys (seeded, stratified), write a manifest.

Sources: ``sklearn_digits``, ``npz``, ``csv``, ``tfrecord``, ``image_folder``. No copy of the data is
written: ``manifest.json`` (files, split rule, class counts per split) and ``data_info.json``
(normalisation statistics from one streaming pass over the training split) describe how every later step
builds its ``tf.data`` pipeline from the source (:mod:`tfspec.runtime.datasets`). Two passes: the labels
(image folders: from the folder names, nothing decoded), then every example once (decoded, checked,
counted). Every problem with the data raises :class:`DataError` naming the spec key that asked for it
(``data.source.label_column``), and for a bad record its file and record index.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.base.locations import is_object_store, list_objects, local_glob, object_root
from tfspec.plan import CsvSourceParams, DataParams, ImageFolderSourceParams, MissingValuesParams, NpzSourceParams, TfrecordSourceParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.data_source import DataSource
from tfspec.runtime.datasets import DATA_INFO_FILE, MANIFEST_FILE, label_mode
from tfspec.runtime.errors import DataError
from tfspec.runtime.small_sources import SOURCE, existing_file, read_source

__all__ = ["run", "read_source", "source_files", "IMAGE_SUFFIXES"]

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _listed(values: list[Any], limit: int = 12) -> str:
    return ", ".join(str(v) for v in values[:limit]) + (f", … ({len(values) - limit} more)" if len(values) > limit else "")


def _check_labels(y: np.ndarray, num_classes: int | None, source_kind: str, key: tuple[str | int, ...],
                  class_names: list[str] | None) -> np.ndarray:
    """Integer labels in ``0..num_classes-1``, every class present: checked before anything trains.

    ``key`` is the spec key that fixes the number of classes (the output layer's ``units``); a 3-class
    CSV must not train into a 10-unit softmax.
    """
    if not np.all(np.isfinite(y)) or not np.all(np.equal(np.mod(y, 1), 0)):
        raise DataError(SOURCE, f"the {source_kind} source has non-integer class labels")
    labels = y.astype(np.int64)
    if num_classes is None:
        return labels
    found = sorted(int(v) for v in np.unique(labels))
    shown = [class_names[i] for i in found] if class_names else found
    if found[0] < 0 or found[-1] >= num_classes:
        raise DataError(key, f"the model outputs {num_classes} classes (labels 0..{num_classes - 1}) but the "
                        f"{source_kind} source has labels {found[0]}..{found[-1]} ({len(found)} classes: "
                        f"{_listed(shown)})", "make the output layer as wide as the data's classes, or fix the labels")
    if len(found) != num_classes:
        missing = sorted(set(range(num_classes)) - set(found))
        raise DataError(key, f"the model outputs {num_classes} classes but the {source_kind} source has "
                        f"{len(found)} ({_listed(shown)}; no example of {_listed(missing)})",
                        f"set the output layer's units (and data.num_classes / data.labels) to {len(found)}, "
                        "or add examples of the missing classes")
    return labels


def _name(spec_dir: Path, path: str) -> str:
    """A file's stable name: relative to the spec's folder inside it, else its absolute path."""
    try:
        return Path(path).relative_to(spec_dir).as_posix()
    except ValueError:
        return Path(path).as_posix()


def _listed_objects(read: DataSource, path: str, folder: bool) -> list[dict[str, Any]]:
    try:
        return list_objects(path, read.storage, folder=folder)
    except Exception as error:  # fsspec back ends raise many kinds: name the location
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise DataError(SOURCE + ("path",), f"cannot list {path}: {first[:200]}",
                        "check data.storage (endpoint, credential variables) and the bucket") from None


def _glob_files(read: DataSource, path: str, spec_dir: Path) -> list[dict[str, Any]]:
    if is_object_store(path):
        found = [o["url"] for o in _listed_objects(read, path, folder=False)]
        if not found:
            raise DataError(SOURCE + ("path",), f"no object matches {path}")
        return [{"name": url, "path": url} for url in found]
    files = local_glob(spec_dir, path)
    if not files:
        raise DataError(SOURCE + ("path",), f"no file matches {path} (looked in {spec_dir})")
    return [{"name": _name(spec_dir, f), "path": f} for f in files]


def _object_image_files(read: DataSource, path: str) -> tuple[list[dict[str, Any]], list[str]]:
    root = object_root(path.rstrip("/") + "/")
    images = [o["url"] for o in _listed_objects(read, path, folder=True) if Path(o["url"]).suffix.lower() in IMAGE_SUFFIXES]
    by_class: dict[str, list[str]] = {}
    for url in images:
        parts = url[len(root):].split("/")
        if len(parts) == 2 and not parts[0].startswith("."):
            by_class.setdefault(parts[0], []).append(url)
    classes = sorted(by_class)
    if not classes:
        raise DataError(SOURCE + ("path",), f"{path} has no class sub-folders with images")
    files = [{"name": url, "path": url, "label": label} for label, name in enumerate(classes)
             for url in sorted(by_class[name])]
    return files, classes


def _image_files(read: DataSource, path: str, spec_dir: Path) -> tuple[list[dict[str, Any]], list[str]]:
    if is_object_store(path):
        return _object_image_files(read, path)
    root = existing_file(spec_dir, path)
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(SOURCE + ("path",), f"{path} has no class sub-folders")
    files: list[dict[str, Any]] = []
    for label, name in enumerate(classes):
        found = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not found:
            raise DataError(SOURCE + ("path",), f"class folder {path}/{name} holds no images")
        files += [{"name": _name(spec_dir, str(f)), "path": str(f), "label": label} for f in found]
    return files, classes


def source_files(read: DataSource, spec_dir: Path) -> tuple[list[dict[str, Any]], list[str] | None]:
    """The files a source reads (``{name, path, label?}``) and the class names it defines, if any."""
    source = read.source
    if isinstance(source, TfrecordSourceParams):
        return _glob_files(read, source.path, spec_dir), None
    if isinstance(source, ImageFolderSourceParams):
        return _image_files(read, source.path, spec_dir)
    if isinstance(source, (NpzSourceParams, CsvSourceParams)):
        path = existing_file(spec_dir, source.path)
        return [{"name": source.path, "path": str(path)}], None
    return [], None


def _bad_record(read: DataSource, files: list[dict[str, Any]], spec_dir: Path, order: list[str] | None,
                error: Exception, labels_only: bool) -> DataError:
    from tfspec.runtime.sources import locate_bad_record

    found = locate_bad_record(read, files, spec_dir, order, labels_only)
    if found is None:
        return DataError(SOURCE + ("path",), f"cannot read {read.location}: {error}")
    name, index, message = found
    if isinstance(read.source, ImageFolderSourceParams):
        return DataError(SOURCE + ("path",), f"cannot decode image {name}: {message}")
    key = "features" if "Feature" in message or "shape" in message or "Key" in message else "path"
    return DataError(SOURCE + (key,), f"{name} record {index}: {message}",
                     "the record is corrupt or does not match data.source.features")


def _index_labels(read: DataSource, files: list[dict[str, Any]], spec_dir: Path, order: list[str] | None,
                  seed: int, float_labels: bool) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Pass 1: ``(buckets, labels, file names, file of each example, record index)`` of every example."""
    from tfspec.runtime.sources import example_batches
    from tfspec.runtime.splits import BUCKETS, example_key
    from tfspec.runtime.tf import import_tf

    tf, _ = import_tf()
    ds = example_batches(read, files, spec_dir, order=order, labels_only=True, float_labels=float_labels,
                         batch=4096)
    # plain tensor code: autograph's source rewrite (about a second per new function) is not needed
    ds = ds.map(tf.autograph.experimental.do_not_convert(lambda name, index, x, y: (tf.strings.to_hash_bucket_fast(
        example_key(seed, name, index), BUCKETS), y, name, index)), num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True)
    parts: list[tuple[np.ndarray, ...]] = []
    try:
        for batch in ds.as_numpy_iterator():
            parts.append(batch)
    except tf.errors.OpError as error:
        raise _bad_record(read, files, spec_dir, order, error, labels_only=True) from None
    if not parts:
        raise DataError(SOURCE + ("path",), f"{read.location} holds no records")
    names = np.concatenate([p[2] for p in parts])
    unique, which = np.unique(names, return_inverse=True)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            [n.decode() if isinstance(n, bytes) else str(n) for n in unique], which,
            np.concatenate([p[3] for p in parts]))


def _label_outside(labels: np.ndarray, classes: int, names: list[str], which: np.ndarray,
                   index: np.ndarray) -> str:
    """`` (first: <file> record <i> has label <v>)`` for the first label outside ``0..classes-1``."""
    bad = np.flatnonzero((labels < 0) | (labels >= classes))
    if not len(bad):
        return ""
    at = int(bad[0])
    return f" (first: {names[which[at]]} record {int(index[at])} has label {int(labels[at])})"


def _feature_names(read: DataSource, order: list[str] | None) -> Any:
    """``element index → name`` of a tfrecord example's flat features (``pixels[3]``), for error messages."""
    source = read.source
    if not isinstance(source, TfrecordSourceParams):
        return None
    names: list[str] = []
    for name in order or list(source.features):
        shape = source.features[name].shape
        size = int(np.prod(shape or [1]))
        names += [f"feature {name!r}"] if not shape else [f"feature {name!r} element {i}" for i in range(size)]
    return lambda j: names[j] if j < len(names) else f"element {j}"


class _Moments:
    """Per-feature sums of one split's present values (NaN = missing), for the imputation and normalisation
    statistics of the training split: one streaming pass, float64."""

    def __init__(self) -> None:
        self.total: Any = None
        self.total_sq: Any = None
        self.present: Any = None
        self.kept: list[np.ndarray] = []  # raw rows, only for a median (in-memory sources)

    def add(self, x: np.ndarray, keep_rows: bool) -> None:
        raw = x.astype(np.float64)
        present = ~np.isnan(raw)
        values = np.where(present, raw, 0.0)
        if self.total is None:
            shape = raw.shape[1:]
            self.total, self.total_sq, self.present = (np.zeros(shape, np.float64), np.zeros(shape, np.float64),
                                                       np.zeros(shape, np.int64))
        self.total += values.sum(axis=0)
        self.total_sq += np.square(values).sum(axis=0)
        self.present += present.sum(axis=0)
        if keep_rows:
            self.kept.append(raw)


def _stream_pass(read: DataSource, files: list[dict[str, Any]], spec_dir: Path, order: list[str] | None,
                 rule: Any, float_labels: bool, classes: int | None,
                 median: bool) -> tuple[dict[str, list[int]], dict[str, int], tuple[int, ...], _Moments, dict[str, int],
                                        float | None]:
    """Pass 2: every example decoded once and checked (NaN only as a missing value to impute, never
    infinity): class counts per split, example shape, the training split's per-feature moments, missing
    values per split, the training labels' mean (regression)."""
    from tfspec.runtime.small_sources import check_finite
    from tfspec.runtime.sources import example_batches
    from tfspec.runtime.splits import BUCKETS, SPLITS, example_key
    from tfspec.runtime.tf import import_tf

    tf, _ = import_tf()
    seed = rule.seed
    ds = example_batches(read, files, spec_dir, order=order, float_labels=float_labels, batch=1024)
    ds = ds.map(tf.autograph.experimental.do_not_convert(lambda name, index, x, y: (rule.tf_split(
        tf.strings.to_hash_bucket_fast(example_key(seed, name, index), BUCKETS), y), x, y, name, index)),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    counts = {name: 0 for name in SPLITS}
    per_class = {name: [0] * (classes or 0) for name in SPLITS}
    missing = {name: 0 for name in SPLITS}
    moments = _Moments()
    imputing = read.missing_values is not None
    element = _feature_names(read, order)
    label_sum = 0.0
    shape: tuple[int, ...] = ()
    try:
        for split, x, y, names, index in ds.as_numpy_iterator():
            shape = tuple(x.shape[1:])
            check_finite(x, lambda i: f"{names[i].decode()} record {int(index[i])}", imputing, element)
            nan_rows = np.isnan(x.reshape(len(x), -1)).sum(axis=1) if imputing and x.dtype.kind == "f" else None
            for k, name in enumerate(SPLITS):
                mask = split == k
                counts[name] += int(mask.sum())
                if nan_rows is not None:
                    missing[name] += int(nan_rows[mask].sum())
                if classes:
                    binned = np.bincount(y[mask].astype(np.int64), minlength=classes)[:classes]
                    per_class[name] = [a + int(b) for a, b in zip(per_class[name], binned)]
            moments.add(x[split == 0], median)
            label_sum += float(np.sum(y[split == 0], dtype=np.float64)) if float_labels else 0.0
    except tf.errors.OpError as error:
        raise _bad_record(read, files, spec_dir, order, error, labels_only=False) from None
    label_mean = label_sum / counts["train"] if float_labels and counts["train"] else None
    return per_class, counts, shape, moments, missing, label_mean


def _fill_values(strategy: MissingValuesParams, moments: _Moments, shape: tuple[int, ...], column: Any) -> np.ndarray:
    """The training split's fill value of every feature (raw units): its mean or median, or the constant."""
    if strategy.strategy == "constant":
        assert strategy.value is not None  # the spec requires it
        return np.full(shape, float(strategy.value), np.float64)
    empty = np.flatnonzero(moments.present.reshape(-1) == 0)
    if len(empty):
        raise DataError(("data", "missing_values"), f"{column(int(empty[0]))} has no value in the training split "
                        f"to compute its {strategy.strategy} from", "use strategy: constant, or fix the data")
    if strategy.strategy == "median":
        return np.nanmedian(np.concatenate(moments.kept), axis=0)
    return moments.total / moments.present


def _column_names(read: DataSource, spec_dir: Path, order: list[str] | None, shape: tuple[int, ...]) -> Any:
    """``flat feature index → name`` (a CSV's column, a tfrecord feature element, an npz array element)."""
    source = read.source
    if isinstance(source, CsvSourceParams):
        columns = source.feature_columns
        if isinstance(columns, dict):
            names = [c for k in (order or list(columns)) for c in columns[k]]
        elif columns:
            names = list(columns)
        else:  # every column but the label, in file order (the header is the file's first line)
            with open(existing_file(spec_dir, source.path), newline="", encoding="utf-8") as handle:
                header = [h.strip() for h in next(csv.reader(handle, delimiter=source.delimiter), [])]
            names = [h for h in header if h != source.label_column]
        if names:
            return lambda j: f"column {names[j]!r}"
    element = _feature_names(read, order)
    if element is not None:
        return element
    return lambda j: f"feature element {j}" if len(shape) == 1 else \
        f"feature element {[int(i) for i in np.unravel_index(j, shape)]}"


def _naive_baseline(train_counts: list[int] | None, label_mean: float | None) -> dict[str, Any] | None:
    """What a model that ignores its input predicts, from the training split: its majority class, or its
    labels' mean (regression). The evaluate step measures it on the test split."""
    if train_counts:
        return {"kind": "majority_class", "class": int(np.argmax(train_counts))}
    if label_mean is not None:
        return {"kind": "training_mean", "value": label_mean}
    return None


def run(ctx: StepContext) -> dict[str, Any]:
    from tfspec.runtime.splits import choose_rule

    p = ctx.params
    assert isinstance(p, DataParams)
    # every pipeline reads the source through this (the manifest keeps it): object-store settings, the
    # missing values to keep as NaN, a text label column's classes in index order
    read = DataSource(source=p.source, storage=p.storage, missing_values=p.missing_values, label_values=p.label_values)
    order = p.feature_order
    files, found_classes = source_files(read, ctx.root)
    mode = label_mode(p.loss)
    binary = p.loss == "binary_crossentropy"
    classification = mode != "float" or binary
    bucket, y, names, which, index = _index_labels(read, files, ctx.root, order, p.split.seed, not classification)
    num_classes = p.num_classes
    if found_classes is not None and num_classes is None:
        num_classes = len(found_classes)
    key = tuple(p.num_classes_key)
    # one sigmoid unit separates two classes
    classes = 2 if binary else num_classes
    if classification:
        try:
            y = _check_labels(y, classes, p.source.kind, key, found_classes)
        except DataError as error:
            where = _label_outside(y, classes, names, which, index) if classes else ""
            raise DataError(error.path, error.message + where, error.hint) from None
    else:
        y = y.astype(np.float32)
    if classification and num_classes is None and not binary:
        # a builder or saved_model model without data.num_classes: the data says how many there are
        # (the train step checks the model's output width against it)
        num_classes = int(y.max()) + 1
    labels = list(p.labels)
    if found_classes is not None and labels in ([], [str(i) for i in range(len(found_classes))]):
        labels = found_classes  # image_folder: the class folder names are the labels unless the spec names them
    elif not labels and num_classes is not None and classification:
        labels = [str(i) for i in range(num_classes)]  # never an empty labels.txt for a classifier
    split_classes = (2 if binary else num_classes) if classification else None
    rule = choose_rule(bucket, y if classification else None, p.split, split_classes)
    rescale = p.preprocessing.rescale
    strategy = p.missing_values
    per_class, counts, raw_shape, moments, missing, label_mean = _stream_pass(
        read, files, ctx.root, order, rule, not classification, split_classes,
        median=strategy is not None and strategy.strategy == "median")
    if counts["test"] == 0 or counts["train"] == 0:
        raise DataError(("data", "split"), f"cannot split {sum(counts.values())} examples: the "
                        f"{'test' if counts['test'] == 0 else 'training'} split would be empty",
                        "provide more examples, or change data.split")
    impute = None
    total, total_sq = moments.total, moments.total_sq
    if strategy is not None:
        column = _column_names(read, ctx.root, order, raw_shape)
        fill = _fill_values(strategy, moments, raw_shape, column)
        absent = counts["train"] - moments.present  # the training split's missing values, per feature
        # the statistics of the imputed training split: what the model is trained on
        total, total_sq = total + absent * fill, total_sq + absent * np.square(fill)
        impute = {"strategy": strategy.strategy, "values": fill.astype(np.float32).reshape(-1).tolist(),
                  "missing": missing,
                  "columns": {column(int(j)): int(absent.reshape(-1)[j]) for j in np.flatnonzero(absent.reshape(-1))}}
        ctx.log(f"  missing values: {missing['train']} train, {missing['val']} validation, {missing['test']} test; "
                f"filled with the training split's {strategy.strategy}" if strategy.strategy != "constant"
                else f"  missing values: {missing['train']} train, {missing['val']} validation, {missing['test']} "
                f"test; filled with {strategy.value}")
    if rescale is not None:
        total, total_sq = total * rescale, total_sq * rescale * rescale
    mean = std = None
    if p.preprocessing.normalize:
        mean = (total / counts["train"]).astype(np.float32)
        variance = np.maximum(total_sq / counts["train"] - np.square(total / counts["train"]), 0.0)
        std = np.sqrt(variance).astype(np.float32)
        std = np.where(std < 1e-7, np.float32(1.0), std)
    example_shape = raw_shape
    reshape = p.preprocessing.reshape
    if reshape:
        if int(np.prod(reshape)) != int(np.prod(example_shape)):
            raise DataError(("data", "preprocessing", "reshape"),
                            f"cannot reshape examples of shape {list(example_shape)} to {reshape}")
        example_shape = tuple(reshape)
    expected = tuple(p.input_shape)
    inputs = p.inputs
    if inputs and example_shape != expected:
        sizes = ", ".join(f"{i.name} {int(np.prod(i.shape))}" for i in inputs)
        raise DataError(("model", "inputs"), f"the {p.source.kind} source's features give {int(np.prod(example_shape))} "
                        f"values per example, the model's inputs take {expected[0]} ({sizes})",
                        "make each input's shape match the size of its feature array or columns")
    if example_shape != expected:
        key = ("data", "preprocessing", "reshape") if reshape else ("model", "input_shape")
        raise DataError(key, f"the {p.source.kind} source gives examples of shape {list(example_shape)} "
                        f"but the model takes {list(expected)}",
                        "fix model.input_shape or set data.preprocessing.reshape")
    dtype = np.dtype(p.input_dtype)
    ctx.write_json(MANIFEST_FILE, {
        "source": read.model_dump(mode="json"),
        "feature_order": order,
        "spec_dir": str(ctx.root),
        "files": files,
        "digests": p.input_digests or {},  # the content fingerprints the compiler took (compiler/inputs.py)
        "example_shape": list(raw_shape),
        "split_rule": rule.to_json(),
        "counts": counts,
        "class_counts": per_class if split_classes else None,
    })
    ctx.write_json(DATA_INFO_FILE, {
        "source": p.source.kind,
        "labels": labels,
        "num_classes": num_classes,
        "input_shape": list(expected),
        "input_dtype": str(dtype),
        "rescale": rescale,
        "mean": mean.reshape(-1).tolist() if mean is not None else None,
        "std": std.reshape(-1).tolist() if std is not None else None,
        "impute": impute,  # missing values (NaN) filled per raw feature before rescale (data.missing_values)
        "naive_baseline": _naive_baseline(per_class["train"] if split_classes else None, label_mean),
        "loss": p.loss,
        "label_mode": mode,
        "counts": counts,
        "memory_budget": p.memory_budget,
        # several model inputs: the flat example split into named features when read
        "inputs": [i.model_dump(mode="json") for i in inputs] if inputs else None,
    })
    ctx.log(f"  {sum(counts.values())} examples: {counts['train']} train, {counts['val']} validation, "
            f"{counts['test']} test")
    return {"examples": sum(counts.values()), "train": counts["train"], "validation": counts["val"],
            "test": counts["test"], "num_classes": num_classes, "input_shape": list(expected)}
