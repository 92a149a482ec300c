"""``data`` step: read the source, split it (seeded, stratified), preprocess, write ``dataset.npz``.

Sources: ``sklearn_digits``, ``npz``, ``csv``, ``tfrecord``, ``image_folder``. Every problem with the
data raises :class:`DataError` naming the spec key that asked for it (``data.source.label_column``).
"""

from __future__ import annotations

import csv
import glob
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.plan import DataParams, SplitParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import DATA_INFO_FILE, DATASET_FILE, label_mode
from tfspec.runtime.errors import DataError

__all__ = ["run", "read_source", "split_arrays", "IMAGE_SUFFIXES"]

SOURCE = ("data", "source")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif")


def _existing(spec_dir: Path, relative: str, key: str = "path") -> Path:
    path = spec_dir / relative
    if not path.exists():
        raise DataError(SOURCE + (key,), f"{relative} does not exist (looked in {spec_dir})")
    return path


def _sklearn_digits(source: dict[str, Any], spec_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    return digits.data.astype(np.float32), digits.target.astype(np.int64), None


def _npz(source: dict[str, Any], spec_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    path = _existing(spec_dir, source["path"])
    # numpy's own message for a file that is not an npz ("pickled data ... allow_pickle=") points at an
    # unsafe fix: say what the file should be instead. Pickles are never loaded.
    not_npz = f"{source['path']} is not a valid .npz archive of numeric arrays (numpy.savez writes one)"
    try:
        archive = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
        raise DataError(SOURCE + ("path",), not_npz) from error
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise DataError(SOURCE + ("path",), not_npz)
    with archive:
        arrays = {}
        for key in ("features", "labels"):
            name = source[key]
            if name not in archive.files:
                raise DataError(SOURCE + (key,), f"no array {name!r} in {source['path']} "
                                f"(it has: {', '.join(sorted(archive.files))})")
            try:
                arrays[key] = archive[name]
            except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
                raise DataError(SOURCE + (key,), f"array {name!r} in {source['path']} is not a numeric array: "
                                "save it with a numeric dtype (object arrays are never loaded)") from error
    x, y = arrays["features"], arrays["labels"]
    if len(x) != len(y):
        raise DataError(SOURCE + ("labels",), f"{len(x)} feature rows but {len(y)} labels in {source['path']}")
    return x, y, None


_TEXT_LABEL_HINT = "labels are class indices 0..N-1: write them as numbers, and the class names in data.labels"


def _number(text: str, row: int, column: str, relative: str, key: tuple[str, ...]) -> float:
    try:
        return float(text)
    except ValueError:
        hint = _TEXT_LABEL_HINT if key == ("label_column",) else None
        raise DataError(SOURCE + key, f"{relative} line {row}: column {column!r} holds {text[:80]!r}, not a number",
                        hint) from None


def _csv(source: dict[str, Any], spec_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    path = _existing(spec_dir, source["path"])
    relative = source["path"]
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=source["delimiter"])
        try:
            header = [h.strip() for h in next(reader)]
        except StopIteration:
            raise DataError(SOURCE + ("path",), f"{relative} is empty") from None
        rows = [row for row in reader if row]
    label = source["label_column"]
    if label not in header:
        raise DataError(SOURCE + ("label_column",), f"no column {label!r} in {relative} (columns: {', '.join(header)})")
    features = source["feature_columns"]
    if features:
        for index, name in enumerate(features):
            if name not in header:
                raise DataError(SOURCE + ("feature_columns", index),
                                f"no column {name!r} in {relative} (columns: {', '.join(header)})")
    else:
        features = [h for h in header if h != label]
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


def _tfrecord(source: dict[str, Any], spec_dir: Path,
              order: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    from tfspec.runtime.tf import import_tf

    tf, _ = import_tf()
    files = sorted(glob.glob(str(spec_dir / source["path"])))
    if not files:
        raise DataError(SOURCE + ("path",), f"no file matches {source['path']} (looked in {spec_dir})")
    dtypes = {"float32": tf.float32, "int64": tf.int64}
    spec = {name: tf.io.FixedLenFeature(f["shape"], dtypes[f["dtype"]]) for name, f in source["features"].items()}
    spec[source["label"]] = tf.io.FixedLenFeature([], tf.int64)
    compression = {"none": None, "gzip": "GZIP", "zlib": "ZLIB"}[source["compression"]]
    xs: list[np.ndarray] = []
    ys: list[int] = []
    names = list(order or source["features"])
    try:
        for record in tf.data.TFRecordDataset(files, compression_type=compression):
            parsed = tf.io.parse_single_example(record, spec)
            if len(names) == 1:
                xs.append(np.asarray(parsed[names[0]].numpy(), dtype=np.float32).reshape(
                    source["features"][names[0]]["shape"] or [1]))
            else:
                xs.append(np.concatenate([np.asarray(parsed[n].numpy(), dtype=np.float32).reshape(-1) for n in names]))
            ys.append(int(parsed[source["label"]].numpy()))
    except tf.errors.InvalidArgumentError as error:
        message = error.message.splitlines()[0]
        raise DataError(SOURCE + ("features",), f"records in {source['path']} do not match the features given: {message}") from None
    except tf.errors.DataLossError as error:
        raise DataError(SOURCE + ("compression",), f"cannot read {source['path']}: {error.message.splitlines()[0]}") from None
    if not xs:
        raise DataError(SOURCE + ("path",), f"{source['path']} holds no records")
    return np.stack(xs), np.asarray(ys, dtype=np.int64), None


def _image_folder(source: dict[str, Any], spec_dir: Path) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    from PIL import Image, UnidentifiedImageError

    root = _existing(spec_dir, source["path"])
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise DataError(SOURCE + ("path",), f"{source['path']} has no class sub-folders")
    height, width = source["image_size"]
    mode = "L" if source["color_mode"] == "grayscale" else "RGB"
    xs: list[np.ndarray] = []
    ys: list[int] = []
    for label, name in enumerate(classes):
        files = sorted(p for p in (root / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise DataError(SOURCE + ("path",), f"class folder {source['path']}/{name} holds no images")
        for file in files:
            try:
                with Image.open(file) as image:
                    pixels = np.asarray(image.convert(mode).resize((width, height), Image.Resampling.BILINEAR),
                                        dtype=np.float32)
            except (UnidentifiedImageError, OSError) as error:
                raise DataError(SOURCE + ("path",), f"cannot read image {file.relative_to(spec_dir)}: {error}") from None
            xs.append(pixels.reshape(height, width, 1 if mode == "L" else 3))
            ys.append(label)
    return np.stack(xs), np.asarray(ys, dtype=np.int64), classes


_READERS = {"sklearn_digits": _sklearn_digits, "npz": _npz, "csv": _csv, "tfrecord": _tfrecord,
            "image_folder": _image_folder}


def read_source(source: dict[str, Any], spec_dir: Path,
                feature_order: list[str] | None = None) -> tuple[np.ndarray, np.ndarray, list[str] | None]:
    """``(features, labels, class names found in the source or None)``."""
    if source["kind"] == "tfrecord":
        return _tfrecord(source, spec_dir, feature_order)
    return _READERS[source["kind"]](source, spec_dir)


def split_arrays(x: np.ndarray, y: np.ndarray, split: SplitParams,
                 classification: bool) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Seeded train/validation/test split, stratified by class when asked (and possible)."""
    from sklearn.model_selection import train_test_split

    seed = split.seed
    stratify = split.stratify and classification
    test, validation = split.test, split.validation
    try:
        x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test, random_state=seed,
                                                          stratify=y if stratify else None)
        if validation > 0:
            x_train, x_val, y_train, y_val = train_test_split(
                x_rest, y_rest, test_size=validation / (1.0 - test), random_state=seed,
                stratify=y_rest if stratify else None)
        else:
            x_train, y_train = x_rest, y_rest
            x_val, y_val = x_rest[:0], y_rest[:0]
    except ValueError as error:
        raise DataError(("data", "split"), f"cannot split {len(x)} examples: {error}",
                        "set data.split.stratify: false, or provide more examples per class") from None
    return {"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)}


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


def run(ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    assert isinstance(p, DataParams)
    source = p.source
    x, y, found_classes = read_source(source, ctx.root, p.feature_order)
    if len(x) == 0:
        raise DataError(SOURCE, f"the {source['kind']} source holds no examples")
    mode = label_mode(p.loss)
    classification = mode != "float" or p.loss == "binary_crossentropy"
    num_classes = p.num_classes
    if found_classes is not None and num_classes is None:
        num_classes = len(found_classes)
    key = tuple(p.num_classes_key)
    # one sigmoid unit separates two classes
    classes = 2 if p.loss == "binary_crossentropy" else num_classes
    y = _check_labels(y, classes, source["kind"], key, found_classes) if classification else y.astype(np.float32)
    if classification and num_classes is None and p.loss != "binary_crossentropy":
        # a builder or saved_model model without data.num_classes: the data says how many there are
        # (the train step checks the model's output width against it)
        num_classes = int(y.max()) + 1
    labels = list(p.labels)
    if found_classes is not None and labels in ([], [str(i) for i in range(len(found_classes))]):
        labels = found_classes  # image_folder: the class folder names are the labels unless the spec names them
    elif not labels and num_classes is not None and classification:
        labels = [str(i) for i in range(num_classes)]  # never an empty labels.txt for a classifier
    parts = split_arrays(x.astype(np.float32), y, p.split, classification)
    pre = p.preprocessing
    rescale = pre.rescale
    if rescale is not None:
        parts = {k: (xs * np.float32(rescale), ys) for k, (xs, ys) in parts.items()}
    mean = std = None
    if pre.normalize:
        x_train = parts["train"][0]
        mean = x_train.mean(axis=0).astype(np.float32)
        std = x_train.std(axis=0).astype(np.float32)
        std = np.where(std < 1e-7, np.float32(1.0), std)
        parts = {k: ((xs - mean) / std, ys) for k, (xs, ys) in parts.items()}
    example_shape = tuple(x.shape[1:])
    reshape = pre.reshape
    if reshape:
        if int(np.prod(reshape)) != int(np.prod(example_shape)):
            raise DataError(("data", "preprocessing", "reshape"),
                            f"cannot reshape examples of shape {list(example_shape)} to {reshape}")
        parts = {k: (xs.reshape((len(xs), *reshape)), ys) for k, (xs, ys) in parts.items()}
        example_shape = tuple(reshape)
    expected = tuple(p.input_shape)
    if example_shape != expected:
        key = ("data", "preprocessing", "reshape") if reshape else ("model", "input_shape")
        raise DataError(key, f"the {source['kind']} source gives examples of shape {list(example_shape)} "
                        f"but the model takes {list(expected)}",
                        "fix model.input_shape or set data.preprocessing.reshape")
    dtype = np.dtype(p.input_dtype)
    arrays = {}
    for split_name, (xs, ys) in parts.items():
        arrays[f"x_{split_name}"] = xs.astype(dtype)
        arrays[f"y_{split_name}"] = ys
    with open(ctx.out / DATASET_FILE, "wb") as handle:
        np.savez_compressed(handle, **arrays)
    counts = {k: int(len(v[0])) for k, v in parts.items()}
    ctx.write_json(DATA_INFO_FILE, {
        "source": source["kind"],
        "labels": labels,
        "num_classes": num_classes,
        "input_shape": list(expected),
        "input_dtype": str(dtype),
        "rescale": rescale,
        "mean": mean.reshape(-1).tolist() if mean is not None else None,
        "std": std.reshape(-1).tolist() if std is not None else None,
        "augmentation": p.augmentation,
        "loss": p.loss,
        "label_mode": mode,
        "counts": counts,
    })
    ctx.log(f"  {sum(counts.values())} examples: {counts['train']} train, {counts['val']} validation, "
            f"{counts['test']} test")
    return {"examples": sum(counts.values()), "train": counts["train"], "validation": counts["val"],
            "test": counts["test"], "num_classes": num_classes, "input_shape": list(expected)}
