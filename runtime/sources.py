"""Example streams straight from the data source, as ``tf.data`` pipelines (nothing held in memory).

A stream yields ``(name, index, features, label)`` per example, in a fixed order: ``name`` is the
example's file relative to the data root, ``index`` its record number in that file (the split key,
:mod:`runtime.splits`). TFRecord shards are read with ``interleave`` (one reader per shard, parallel),
image folders decode in a parallel ``map``. Small sources (``sklearn_digits``, ``npz``, ``csv``) are
read into memory: they are small by nature (one file that NumPy or the csv module reads whole).

``files`` entries are ``{"name", "path", "label"?}``; ``path`` is a local path, a ``gs://`` URL (TensorFlow
reads it itself) or an ``s3://`` URL: TensorFlow 2.21 has no S3 file system, so S3 objects stream through
fsspec/s3fs in Python: a generator per TFRecord shard that reads the record framing (length, data; the
CRCs are not checked there, a damaged record fails when parsed), and a ``py_function`` that reads an
image's bytes before the parallel decode. Nothing is staged on disk; memory holds the records in flight.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .tf import import_tf

__all__ = ["example_stream", "locate_bad_record", "IN_MEMORY_KINDS"]

IN_MEMORY_KINDS = frozenset({"sklearn_digits", "npz", "csv"})
_COMPRESSION = {"none": None, "gzip": "GZIP", "zlib": "ZLIB"}


def _tfrecord_parser(source: dict[str, Any], order: list[str], labels_only: bool = False) -> Any:
    tf, _ = import_tf()
    dtypes = {"float32": tf.float32, "int64": tf.int64}
    features = source["features"]
    spec = {} if labels_only else {n: tf.io.FixedLenFeature(f["shape"], dtypes[f["dtype"]]) for n, f in features.items()}
    spec[source["label"]] = tf.io.FixedLenFeature([], tf.int64)

    def parse(record: Any) -> tuple[Any, Any]:
        parsed = tf.io.parse_single_example(record, spec)
        label = parsed[source["label"]]
        if labels_only:
            return tf.zeros([0], tf.float32), label
        if len(order) == 1:
            x = tf.reshape(tf.cast(parsed[order[0]], tf.float32), features[order[0]]["shape"] or [1])
        else:
            x = tf.concat([tf.reshape(tf.cast(parsed[n], tf.float32), [-1]) for n in order], axis=0)
        return x, label

    return parse


def _s3_records(url: bytes, storage_json: bytes) -> Any:
    """``(index, record)`` of one TFRecord object in S3, read in order through s3fs."""
    import json

    from tfspec.compiler.locations import filesystem

    location = url.decode()
    fs = filesystem(location, json.loads(storage_json.decode()) or None)
    with fs.open(location[len("s3://"):], "rb", block_size=8 * 2 ** 20) as handle:
        index = 0
        while True:
            header = handle.read(12)
            if not header:
                return
            length = int.from_bytes(header[:8], "little") if len(header) == 12 else -1
            record = handle.read(length) if length >= 0 else b""
            if length < 0 or len(record) != length or len(handle.read(4)) != 4:
                raise ValueError(f"truncated record {index} in {location}")
            yield index, record
            index += 1


def _read_bytes(path: Any, storage: dict[str, Any] | None) -> Any:
    """A file's bytes as a string tensor: TensorFlow's own reader, or s3fs for ``s3://``."""
    tf, _ = import_tf()

    def read_s3(url: Any) -> Any:
        from tfspec.compiler.locations import filesystem

        location = url.numpy().decode()
        return filesystem(location, storage).cat_file(location[len("s3://"):])

    if storage is not None and storage.get("_s3"):
        return tf.reshape(tf.py_function(read_s3, [path], tf.string), [])
    return tf.io.read_file(path)


def _tfrecord_stream(source: dict[str, Any], files: list[dict[str, Any]], order: list[str], parallel: bool,
                     labels_only: bool) -> Any:
    tf, _ = import_tf()
    compression = _COMPRESSION[source.get("compression", "none")]
    parse = _tfrecord_parser(source, order, labels_only)
    names = tf.data.Dataset.from_tensor_slices(([f["path"] for f in files], [f["name"] for f in files]))

    s3 = any(str(f["path"]).startswith("s3://") for f in files)
    if s3 and compression is not None:
        raise ValueError("compressed TFRecord files are read from local files and gs:// only")
    storage_json = json.dumps(source.get("storage") or {})
    signature = (tf.TensorSpec([], tf.int64), tf.TensorSpec([], tf.string))

    def records(path: Any, name: Any) -> Any:
        if s3:
            ds = tf.data.Dataset.from_generator(_s3_records, args=(path, storage_json), output_signature=signature)
        else:
            ds = tf.data.TFRecordDataset(path, compression_type=compression).enumerate()
        return ds.map(lambda index, record: (name, index, record))

    if parallel:
        ds = names.interleave(records, cycle_length=min(8, max(1, len(files))), num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=True)
    else:
        ds = names.flat_map(records)

    def parsed(name: Any, index: Any, record: Any) -> Any:
        x, y = parse(record)
        return name, index, x, y

    return ds.map(parsed, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True) if parallel else ds.map(parsed)


def _image_stream(source: dict[str, Any], files: list[dict[str, Any]], parallel: bool, labels_only: bool,
                  keep: Any = None) -> Any:
    tf, _ = import_tf()
    height, width = source["image_size"]
    channels = 1 if source.get("color_mode", "rgb") == "grayscale" else 3
    s3 = any(str(f["path"]).startswith("s3://") for f in files)
    storage = {**(source.get("storage") or {}), "_s3": True} if s3 else None
    ds = tf.data.Dataset.from_tensor_slices(([f["path"] for f in files], [f["name"] for f in files],
                                             np.asarray([f["label"] for f in files], dtype=np.int64)))
    ds = ds.map(lambda path, name, label: (path, name, tf.constant(0, tf.int64), label))
    if keep is not None:  # the split is known from the name and label: decode only the kept images
        ds = ds.filter(lambda path, name, index, label: keep(name, index, label))

    def decode(path: Any, name: Any, index: Any, label: Any) -> Any:
        if labels_only:
            return name, index, tf.zeros([0], tf.float32), label
        image = tf.io.decode_image(_read_bytes(path, storage), channels=channels, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), [height, width], method="bilinear")
        return name, index, tf.ensure_shape(image, [height, width, channels]), label

    return ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True) if parallel else ds.map(decode)


def _memory_stream(source: dict[str, Any], spec_dir: Path, order: list[str] | None, float_labels: bool) -> Any:
    tf, _ = import_tf()
    from .small_sources import read_source

    x, y, _ = read_source(source, spec_dir, order)
    name = source.get("path", source["kind"])
    index = np.arange(len(x), dtype=np.int64)
    names = np.full(len(x), name, dtype=object)
    y = y.astype(np.float32) if float_labels else y.astype(np.int64)
    return tf.data.Dataset.from_tensor_slices((names.astype(str), index, x.astype(np.float32), y))


def example_stream(source: dict[str, Any], files: list[dict[str, Any]], spec_dir: Path, *,
                   order: list[str] | None = None, parallel: bool = True, labels_only: bool = False,
                   keep: Any = None, float_labels: bool = False) -> Any:
    """Unbatched ``(name, index, features, label)`` of every example of ``files`` (or the in-memory source).

    ``keep(name, index, label)`` (a tensor predicate) lets image folders skip decoding what a split drops.
    """
    kind = source["kind"]
    if kind in IN_MEMORY_KINDS:
        return _memory_stream(source, spec_dir, order, float_labels)
    if kind == "tfrecord":
        return _tfrecord_stream(source, files, order or list(source["features"]), parallel, labels_only)
    if kind == "image_folder":
        return _image_stream(source, files, parallel, labels_only, keep)
    raise ValueError(f"unknown source kind {kind!r}")


def locate_bad_record(source: dict[str, Any], files: list[dict[str, Any]], spec_dir: Path,
                      order: list[str] | None, labels_only: bool = False) -> tuple[str, int, str] | None:
    """After a pipeline failed: read each file alone, in order, and return ``(name, record index, message)``
    of the first record that fails (slow, but only on the error path)."""
    tf, _ = import_tf()
    for entry in files:
        ds = example_stream(source, [entry], spec_dir, order=order, parallel=False, labels_only=labels_only)
        index = 0
        try:
            for _, index_t, _, _ in ds:
                index = int(index_t.numpy()) + 1
        except tf.errors.OpError as error:
            return entry["name"], index, error.message.splitlines()[0]
    return None
