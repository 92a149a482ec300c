"""Example streams straight from the data source, as batched ``tf.data`` pipelines (nothing held in memory).

A stream yields batches of ``(name, index, features, label)``, in a fixed order: ``name`` is each example's
file relative to the data root, ``index`` its record number in that file (the split key,
:mod:`runtime.splits`). Everything per example is vectorised over a batch, because tf.data's per-element
overhead, not the arithmetic, limits an input pipeline: TFRecord shards are read a batch of records at a
time per shard (``interleave`` over shards, one reader each), parsed with ``tf.io.parse_example`` and
filtered by the split predicate in one parallel ``map`` per batch; the labels are parsed (and the
predicate evaluated) before the features, so records a split drops are never decoded. Image folders know
every example's key and label before reading, so the split keeps its files up front and only those are
decoded (a parallel ``map``). Small sources (``sklearn_digits``, ``npz``, ``csv``) are read into memory:
they are small by nature (one file that NumPy or the csv module reads whole).

A stream reads a :class:`DataSource`: the plan's typed source with how to reach it (storage), the
missing-value markers and a text label column's classes; the data step writes it into its manifest and every
later step reads it back from there. ``files`` entries are ``{"name", "path", "label"?}``; ``path`` is a local
path or an ``s3://`` or ``gs://`` URL. TensorFlow 2.21 has no S3 file system and its GCS one cannot be pointed at another endpoint
(docs/data.md), so objects stream through fsspec (s3fs, gcsfs) in Python: a generator per TFRecord shard
that reads the record framing (length, data; the CRCs are not checked there, a damaged record fails when
parsed) and yields a batch of records at a time, and a ``py_function`` that reads an image's bytes before
the parallel decode. Nothing is staged on disk; memory holds the records in flight.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.plan import (CsvSourceParams, ImageFolderSourceParams, NpzSourceParams, SklearnDigitsSourceParams,
                         StorageParams, TfrecordSourceParams)

from .data_source import DataSource
from .tf import import_tf

__all__ = ["example_batches", "example_stream", "locate_bad_record", "IN_MEMORY_SOURCES", "BATCH"]


IN_MEMORY_SOURCES = (SklearnDigitsSourceParams, NpzSourceParams, CsvSourceParams)
"""Sources read whole into memory (small by nature: one file that NumPy or the csv module reads)."""
BATCH = 256
"""Examples per batch inside a stream (a consumer's own batch size is independent of it)."""
_COMPRESSION = {"none": None, "gzip": "GZIP", "zlib": "ZLIB"}


def _feature_spec(source: TfrecordSourceParams, labels_only: bool) -> dict[str, Any]:
    tf, _ = import_tf()
    dtypes = {"float32": tf.float32, "int64": tf.int64}
    spec = {} if labels_only else {n: tf.io.FixedLenFeature(f.shape, dtypes[f.dtype])
                                   for n, f in source.features.items()}
    spec[source.label] = tf.io.FixedLenFeature([], tf.int64)
    return spec


def _tfrecord_parser(source: TfrecordSourceParams, order: list[str], labels_only: bool = False) -> Any:
    """``records [B] -> (x [B, ...], y [B])`` with one ``parse_example`` per batch."""
    tf, _ = import_tf()
    features = source.features
    spec = _feature_spec(source, labels_only)
    sizes = {n: int(np.prod(features[n].shape or [1])) for n in order}

    def parse(records: Any) -> tuple[Any, Any]:
        parsed = tf.io.parse_example(records, spec)
        label = parsed[source.label]
        if labels_only:  # a placeholder per example (unbatching [B, 0] tensors crashes TensorFlow 2.21)
            return tf.zeros_like(label, tf.float32), label
        if len(order) == 1:
            shape = features[order[0]].shape or [1]
            x = tf.reshape(tf.cast(parsed[order[0]], tf.float32), [-1, *shape])
        else:
            x = tf.concat([tf.reshape(tf.cast(parsed[n], tf.float32), [-1, sizes[n]]) for n in order], axis=1)
        return x, label

    return parse


def _is_object(path: Any) -> bool:
    return str(path).startswith(("s3://", "gs://"))


def _object_record_batches(url: bytes, storage_json: bytes, batch: int) -> Any:
    """``(indices, records)`` of one TFRecord object, ``batch`` records at a time, read in order."""
    from tfspec.base.locations import filesystem

    location = url.decode()
    storage = StorageParams.model_validate_json(storage_json) if storage_json else None
    fs = filesystem(location, storage)
    # our own 8 MiB buffer: the file systems' read-ahead differs (gcsfs' default sends a request per read)
    with fs.open(location.split("://", 1)[1], "rb", block_size=8 * 2 ** 20) as raw, \
            io.BufferedReader(raw, buffer_size=8 * 2 ** 20) as handle:
        index = 0
        records: list[bytes] = []
        while True:
            header = handle.read(12)
            if not header:
                break
            length = int.from_bytes(header[:8], "little") if len(header) == 12 else -1
            record = handle.read(length) if length >= 0 else b""
            if length < 0 or len(record) != length or len(handle.read(4)) != 4:
                raise ValueError(f"truncated record {index + len(records)} in {location}")
            records.append(record)
            if len(records) == batch:
                yield np.arange(index, index + batch, dtype=np.int64), np.asarray(records, dtype=object)
                index += batch
                records = []
        if records:
            yield np.arange(index, index + len(records), dtype=np.int64), np.asarray(records, dtype=object)


def _read_bytes(path: Any, remote: bool, storage: StorageParams | None) -> Any:
    """A file's bytes as a string tensor: TensorFlow's own reader, or fsspec for an object store."""
    tf, _ = import_tf()

    def read_object(url: Any) -> Any:
        from tfspec.base.locations import filesystem

        location = url.numpy().decode()
        return filesystem(location, storage).cat_file(location.split("://", 1)[1])

    if remote:
        return tf.reshape(tf.py_function(read_object, [path], tf.string), [])
    return tf.io.read_file(path)


def _tfrecord_batches(read: DataSource, source: TfrecordSourceParams, files: list[dict[str, Any]], order: list[str],
                      parallel: bool, labels_only: bool, keep: Any, batch: int) -> Any:
    tf, _ = import_tf()
    compression = _COMPRESSION[source.compression]
    names = tf.data.Dataset.from_tensor_slices(([f["path"] for f in files], [f["name"] for f in files]))

    remote = any(_is_object(f["path"]) for f in files)
    if remote and compression is not None:
        raise ValueError("compressed TFRecord files are read from local files only")
    storage_json = read.storage.model_dump_json() if read.storage is not None else ""
    signature = (tf.TensorSpec([None], tf.int64), tf.TensorSpec([None], tf.string))

    def records(path: Any, name: Any) -> Any:
        """``(name [B], index [B], record [B])`` batches of one file, in record order."""
        if remote:
            ds = tf.data.Dataset.from_generator(_object_record_batches, args=(path, storage_json, batch),
                                                output_signature=signature)
        else:
            ds = tf.data.Dataset.zip((tf.data.Dataset.range(0, 2 ** 62, batch),
                                      tf.data.TFRecordDataset(path, compression_type=compression).batch(batch)))
            ds = ds.map(lambda start, chunk: (start + tf.range(tf.size(chunk, out_type=tf.int64)), chunk))
        return ds.map(lambda index, chunk: (tf.fill(tf.shape(index), name), index, chunk))

    if parallel:
        ds = names.interleave(records, cycle_length=min(8, max(1, len(files))), num_parallel_calls=tf.data.AUTOTUNE,
                              deterministic=True)
    else:
        ds = names.flat_map(records)

    parse = _tfrecord_parser(source, order, labels_only)
    labels = _tfrecord_parser(source, order, labels_only=True)

    def parsed(name: Any, index: Any, chunk: Any) -> Any:
        if keep is not None:  # the labels decide the split: decode the features of the kept records only
            mask = keep(name, index, labels(chunk)[1])
            name, index, chunk = (tf.boolean_mask(t, mask) for t in (name, index, chunk))
        x, y = parse(chunk)
        return name, index, x, y

    return ds.map(parsed, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True) if parallel else ds.map(parsed)


def _kept(keep: Any, names: list[str], index: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """``keep`` evaluated once over every example whose key and label are known before reading."""
    tf, _ = import_tf()
    if keep is None:
        return np.ones(len(names), dtype=bool)
    if not names:
        return np.zeros(0, dtype=bool)
    mask = keep(tf.constant(names, tf.string), tf.constant(index, tf.int64), tf.constant(labels))
    return np.broadcast_to(np.asarray(mask, dtype=bool), (len(names),))


def _image_batches(read: DataSource, source: ImageFolderSourceParams, files: list[dict[str, Any]], parallel: bool,
                   labels_only: bool, keep: Any, batch: int) -> Any:
    tf, _ = import_tf()
    height, width = source.image_size
    channels = 1 if source.color_mode == "grayscale" else 3
    remote = any(_is_object(f["path"]) for f in files)
    labels = np.asarray([f["label"] for f in files], dtype=np.int64)
    mask = _kept(keep, [f["name"] for f in files], np.zeros(len(files), np.int64), labels)
    kept = [f for f, k in zip(files, mask) if k]
    ds = tf.data.Dataset.from_tensor_slices(([f["path"] for f in kept], [f["name"] for f in kept],
                                             np.zeros(len(kept), np.int64), labels[mask]))

    def decode(path: Any, name: Any, index: Any, label: Any) -> Any:
        if labels_only:
            return name, index, tf.constant(0.0), label
        image = tf.io.decode_image(_read_bytes(path, remote, read.storage), channels=channels, expand_animations=False)
        image = tf.image.resize(tf.cast(image, tf.float32), [height, width], method="bilinear")
        return name, index, tf.ensure_shape(image, [height, width, channels]), label

    ds = ds.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True) if parallel else ds.map(decode)
    return ds.batch(batch)


def _memory_batches(read: DataSource, spec_dir: Path, order: list[str] | None, float_labels: bool,
                    keep: Any, batch: int) -> Any:
    tf, _ = import_tf()
    from .small_sources import read_source

    x, y, _ = read_source(read, spec_dir, order)
    name = read.location
    index = np.arange(len(x), dtype=np.int64)
    names = np.full(len(x), name, dtype=object).astype(str)
    y = y.astype(np.float32) if float_labels else y.astype(np.int64)
    mask = _kept(keep, list(names), index, y)
    return tf.data.Dataset.from_tensor_slices((names[mask], index[mask], x[mask].astype(np.float32),
                                               y[mask])).batch(batch)


def example_batches(read: DataSource, files: list[dict[str, Any]], spec_dir: Path, *,
                    order: list[str] | None = None, parallel: bool = True, labels_only: bool = False,
                    keep: Any = None, float_labels: bool = False, batch: int = BATCH) -> Any:
    """Batches (at most ``batch`` long, some shorter) of ``(name, index, features, label)`` of every example
    of ``files`` (or the in-memory source) that ``keep`` keeps.

    ``keep(name, index, label)`` is a vectorised tensor predicate (the split rule); None keeps everything.
    """
    source = read.source
    if isinstance(source, IN_MEMORY_SOURCES):
        return _memory_batches(read, spec_dir, order, float_labels, keep, batch)
    if isinstance(source, TfrecordSourceParams):
        return _tfrecord_batches(read, source, files, order or list(source.features), parallel, labels_only, keep,
                                 batch)
    if isinstance(source, ImageFolderSourceParams):
        return _image_batches(read, source, files, parallel, labels_only, keep, batch)
    raise TypeError(f"unknown source {type(source).__name__}")


def example_stream(read: DataSource, files: list[dict[str, Any]], spec_dir: Path, *,
                   order: list[str] | None = None, parallel: bool = True, labels_only: bool = False,
                   keep: Any = None, float_labels: bool = False, batch: int = BATCH) -> Any:
    """:func:`example_batches` one example at a time."""
    return example_batches(read, files, spec_dir, order=order, parallel=parallel, labels_only=labels_only,
                           keep=keep, float_labels=float_labels, batch=batch).unbatch()


def locate_bad_record(read: DataSource, files: list[dict[str, Any]], spec_dir: Path,
                      order: list[str] | None, labels_only: bool = False) -> tuple[str, int, str] | None:
    """After a pipeline failed: read each file alone, one record at a time, and return ``(name, record index,
    message)`` of the first record that fails (slow, but only on the error path)."""
    tf, _ = import_tf()
    for entry in files:
        ds = example_stream(read, [entry], spec_dir, order=order, parallel=False, labels_only=labels_only, batch=1)
        index = 0
        try:
            for _, index_t, _, _ in ds:
                index = int(index_t.numpy()) + 1
        except tf.errors.OpError as error:
            return entry["name"], index, error.message.splitlines()[0]
    return None
