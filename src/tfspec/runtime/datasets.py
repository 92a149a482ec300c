"""The data step's cache entry as streaming ``tf.data`` pipelines (shared by training, compression, checks).

The data step writes no copy of the data: ``manifest.json`` lists the source files (with their content
fingerprints), the split rule (:mod:`runtime.splits`), class counts per split and the example shape, and
``data_info.json`` holds labels, num_classes, input_shape, rescale/mean/std (one streaming pass over the
training split), the label mode the loss needs and the memory budget. The training pipeline is shuffled
and augmented as the fitting step's params say (``FitParams``).
Every reader builds its split from the source (:mod:`runtime.sources`): filtered by the split rule and
preprocessed a batch at a time in a parallel ``map`` (vectorised: per-example tf.data work is what makes
an input pipeline slow), ``cache()``d only when the split fits in the memory budget, prefetched.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.plan import AugmentationParams, FitParams, InputParams

from .data_source import DataSource
from .sources import example_batches
from .splits import BUCKETS, SPLITS, SplitRule, example_key
from .tf import import_tf

__all__ = ["MANIFEST_FILE", "DATA_INFO_FILE", "Dataset", "load_dataset", "label_mode", "make_dataset",
           "augmentation_model", "representative_samples", "split_inputs", "example_count", "example_at"]

MANIFEST_FILE = "manifest.json"
DATA_INFO_FILE = "data_info.json"

_ONE_HOT_LOSSES = {"categorical_crossentropy"}
_FLOAT_LOSSES = {"binary_crossentropy", "mean_squared_error", "mean_absolute_error", "huber"}


class Dataset:
    """The three splits of a data step: streamed from the source, or (tests, small data) from arrays.

    ``split`` names are ``train``, ``val`` and ``test``.
    """

    def __init__(self, info: dict[str, Any], manifest: dict[str, Any] | None = None, spec_dir: Path | None = None,
                 arrays: dict[str, tuple[np.ndarray, np.ndarray]] | None = None) -> None:
        self.info = info
        self.manifest = manifest or {}
        self.spec_dir = Path(spec_dir) if spec_dir is not None else Path(".")
        self._arrays = arrays

    @classmethod
    def from_arrays(cls, x_train: np.ndarray, y_train: np.ndarray, x_val: np.ndarray, y_val: np.ndarray,
                    x_test: np.ndarray, y_test: np.ndarray, info: dict[str, Any]) -> "Dataset":
        """Preprocessed splits already in memory (tests, benchmarks)."""
        return cls(info, arrays={"train": (x_train, y_train), "val": (x_val, y_val), "test": (x_test, y_test)})

    @property
    def num_classes(self) -> int | None:
        return self.info.get("num_classes")

    def count(self, split: str) -> int:
        if self._arrays is not None:
            return int(len(self._arrays[split][0]))
        return int(self.manifest["counts"][split])

    @property
    def has_validation(self) -> bool:
        return self.count("val") > 0

    @property
    def files(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("files") or [])

    @functools.cached_property
    def source(self) -> DataSource:
        """The data step's source and how to read it (its manifest keeps it)."""
        return DataSource.model_validate(self.manifest["source"])

    @property
    def raw_shape(self) -> list[int]:
        """The source's example shape, before any preprocessing (what a model with preprocessing baked in takes)."""
        return list(self.manifest.get("example_shape") or self.info["input_shape"])

    def _preprocess(self, *, batched: bool = False, raw: bool = False) -> Any:
        """The data's preprocessing as a tensor function: missing values (NaN) filled with the training split's
        values (``data.missing_values``), rescale, normalize with the training statistics, reshape, cast. ``batched``: over a batch axis (the exported model's wrapper). ``raw``: none of it, the
        source's example as float32 (what clients of a model with preprocessing baked in send)."""
        tf, _ = import_tf()
        info = self.info
        raw_shape = self.raw_shape
        rescale = info.get("rescale")
        mean = std = None
        if info.get("mean") is not None:
            mean = tf.constant(np.asarray(info["mean"], np.float32).reshape(raw_shape))
            std = tf.constant(np.asarray(info["std"], np.float32).reshape(raw_shape))
        lead = [-1] if batched else []
        shape = lead + list(raw_shape if raw else info["input_shape"])
        dtype = tf.float32 if raw else tf.as_dtype(info["input_dtype"])
        inputs = None if raw or not info.get("inputs") else [InputParams.model_validate(i) for i in info["inputs"]]
        impute = info.get("impute")
        fill = tf.constant(np.asarray(impute["values"], np.float32).reshape(raw_shape)) if impute else None

        def apply(x: Any) -> Any:
            x = tf.cast(x, tf.float32)
            if raw:
                return tf.reshape(x, shape)
            if fill is not None:  # a missing value is NaN, the one value not equal to itself (TFLite: EQUAL, SELECT)
                x = tf.where(tf.equal(x, x), x, fill)  # fill broadcasts over the batch axis
            if rescale is not None:
                x = x * rescale
            if mean is not None:
                x = (tf.reshape(x, lead + raw_shape) - mean) / std
            if inputs:
                return split_inputs(x, inputs, batched=batched)
            return tf.cast(tf.reshape(x, shape), dtype)

        return apply

    def preprocessing(self) -> Any:
        """The preprocessing over a batch of raw examples (``[n, *raw_shape]`` float32 → the model's input):
        what ``data.preprocessing.in_model`` bakes into the exported model, the same code training read."""
        return self._preprocess(batched=True)

    def examples(self, split: str, *, shard: tuple[int, int] | None = None, raw: bool = False) -> Any:
        """Unbatched ``(features, label)`` of one split, preprocessed (``raw``: as the source holds them, float32);
        ``shard=(workers, index)`` reads only this worker's files (the caller checked there are enough)."""
        tf, _ = import_tf()
        if self._arrays is not None:
            x, y = self._arrays[split]
            return tf.data.Dataset.from_tensor_slices((x, y))
        want = SPLITS.index(split)
        rule = SplitRule.from_json(self.manifest["split_rule"])
        seed = rule.seed

        def keep(name: Any, index: Any, label: Any) -> Any:  # vectorised over a batch of keys
            bucket = tf.strings.to_hash_bucket_fast(example_key(seed, name, index), BUCKETS)
            return tf.equal(rule.tf_split(bucket, label), want)

        files = self.files
        if shard is not None:
            files = files[shard[1]::shard[0]]
        ds = example_batches(self.source, files, self.spec_dir, order=self.manifest.get("feature_order"), keep=keep,
                             float_labels=self.info.get("label_mode") == "float" and
                             self.info.get("loss") != "binary_crossentropy")
        preprocess = self._preprocess(batched=True, raw=raw)  # the reader hands over batches of records
        ds = ds.map(_plain(lambda name, index, x, y: (preprocess(x), y)), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True).unbatch()
        itemsize = np.dtype(self.info["input_dtype"]).itemsize
        size = self.count(split) * int(np.prod(self.info["input_shape"])) * itemsize
        if size <= int(self.info["memory_budget"]):
            ds = ds.cache()  # fits the budget: decode once, not once per epoch
        return ds

    def batches(self, split: str, *, batch_size: int, loss: str, training: FitParams | None = None,
                distributed: Any = None) -> Any:
        """A batched ``(x, y)`` pipeline of one split; with ``training`` (the fitting step's params) shuffled
        (``seed``, ``shuffle_buffer``) and augmented (``augmentation``) as they say.

        Under ``multi_worker_mirrored`` (``distributed``) each worker reads its own files when there are at
        least as many files as workers (auto-shard policy ``OFF``, the pipeline repeats: the caller sets
        steps per epoch), otherwise every worker reads everything and keeps its share (policy ``DATA``).
        """
        tf, _ = import_tf()
        shard = self.shard_for(distributed)
        ds = self.examples(split, shard=shard)
        mode = label_mode(loss)
        num_classes = self.num_classes
        if training is not None:
            ds = ds.shuffle(max(1, min(training.shuffle_buffer, self.count(split))), seed=training.seed,
                            reshuffle_each_iteration=True)
        if shard is not None:
            ds = ds.repeat()
        ds = ds.batch(batch_size)
        # labels converted per batch (one op, not one per example)
        ds = ds.map(_plain(lambda xb, yb: (xb, _tf_labels(yb, mode, num_classes))), num_parallel_calls=tf.data.AUTOTUNE,
                    deterministic=True)
        augment = augmentation_model(training.augmentation, training.seed) if training is not None else None
        if augment is not None:
            ds = ds.map(lambda xb, yb: (augment(xb, training=True), yb), num_parallel_calls=tf.data.AUTOTUNE)
        # under a multi-worker strategy (evaluation inside it too), TensorFlow's default policy would shard
        # by file again: OFF when this worker already reads only its own files, else DATA
        options = tf.data.Options()
        policy = tf.data.experimental.AutoShardPolicy
        options.experimental_distribute.auto_shard_policy = policy.OFF if shard is not None else policy.DATA
        return ds.with_options(options).prefetch(tf.data.AUTOTUNE)

    def shard_for(self, distributed: Any) -> tuple[int, int] | None:
        """``(workers, index)`` when this worker reads its own files; None when it reads every file."""
        if distributed is None or not getattr(distributed, "multi_worker", False) or self._arrays is not None:
            return None
        workers = int(distributed.workers)
        if len(self.files) >= workers and self.source.source.kind in ("tfrecord", "image_folder"):
            return workers, int(distributed.task_index)
        return None  # the train step warns when a file source has fewer files than workers

    def input_description(self, distributed: Any) -> dict[str, Any]:
        """How this process reads the training split: ``{"sharding": "file"|"data"|"none", "files": [...]}``."""
        shard = self.shard_for(distributed)
        files = self.files[shard[1]::shard[0]] if shard is not None else self.files
        multi = distributed is not None and getattr(distributed, "multi_worker", False)
        return {"sharding": "file" if shard is not None else ("data" if multi else "none"),
                "files": [f["name"] for f in files]}

    def features(self, split: str, batch_size: int = 256, *, raw: bool = False) -> Any:
        """Batched features only (for ``predict``); ``raw``: unpreprocessed."""
        return self.examples(split, raw=raw).map(_plain(lambda x, y: x)).batch(batch_size).prefetch(2)

    def labels(self, split: str) -> np.ndarray:
        """The split's labels (one number per example: small), read by streaming the split."""
        if self._arrays is not None:
            return self._arrays[split][1]
        parts = [y for _, y in self.examples(split).map(_plain(lambda x, y: (0, y))).batch(4096).as_numpy_iterator()]
        return np.concatenate(parts) if parts else np.zeros([0], np.int64)

    def take(self, split: str, count: int, *, raw: bool = False) -> np.ndarray:
        """The first ``count`` examples' features of a split (``raw``: unpreprocessed)."""
        if self._arrays is not None:
            return self._arrays[split][0][:count]
        rows = [x for x, _ in self.examples(split, raw=raw).take(count).batch(max(1, count)).as_numpy_iterator()]
        return rows[0] if rows else np.zeros([0, *self.info["input_shape"]], np.float32)

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The whole split in memory: only for small data and tests (steps stream)."""
        if self._arrays is not None:
            return self._arrays[split]
        xs, ys = [], []
        for x, y in self.examples(split).batch(4096).as_numpy_iterator():
            xs.append(x)
            ys.append(y)
        if not xs:
            return np.zeros([0, *self.info["input_shape"]], np.float32), np.zeros([0], np.int64)
        if isinstance(xs[0], dict):  # several named inputs
            return {k: np.concatenate([x[k] for x in xs]) for k in xs[0]}, np.concatenate(ys)  # type: ignore[return-value]
        return np.concatenate(xs), np.concatenate(ys)


def split_inputs(flat: Any, inputs: list[InputParams], *, batched: bool = False) -> dict[str, Any]:
    """Examples whose features of several inputs are concatenated in input order, as ``{input name: tensor of
    its shape and dtype}``: what a model with several named inputs takes. ``batched``: a leading batch axis."""
    tf, _ = import_tf()
    lead = [-1] if batched else []
    flat = tf.reshape(flat, [tf.shape(flat)[0], -1] if batched else [-1])
    out, offset = {}, 0
    for model_input in inputs:
        size = int(np.prod(model_input.shape))
        part = flat[..., offset:offset + size]
        out[model_input.name] = tf.cast(tf.reshape(part, lead + list(model_input.shape)), model_input.dtype)
        offset += size
    return out


def load_dataset(folder: Path, spec_dir: Path | None = None) -> Dataset:
    """A data step's cache entry (``manifest.json`` + ``data_info.json``) as a streaming :class:`Dataset`.

    Relative file names resolve against ``spec_dir`` when given (another checkout or a worker's mount),
    else against the data root the data step recorded.
    """
    folder = Path(folder)
    info = json.loads((folder / DATA_INFO_FILE).read_text("utf-8"))
    manifest = json.loads((folder / MANIFEST_FILE).read_text("utf-8"))
    return Dataset(info, manifest, spec_dir if spec_dir is not None else manifest.get("spec_dir"))


def label_mode(loss: str) -> str:
    """``sparse`` (int labels), ``one_hot`` (categorical crossentropy) or ``float`` (binary/regression)."""
    if loss in _ONE_HOT_LOSSES:
        return "one_hot"
    if loss in _FLOAT_LOSSES:
        return "float"
    return "sparse"


def _labels(y: np.ndarray, mode: str, num_classes: int | None) -> np.ndarray:
    if mode == "one_hot":
        if not num_classes:
            raise ValueError("one-hot labels need num_classes")
        return np.eye(num_classes, dtype=np.float32)[y.astype(np.int64)]
    if mode == "float":
        return y.astype(np.float32)
    return y.astype(np.int64)


def _plain(function: Any) -> Any:
    """A ``Dataset.map`` function of plain tensor ops (its Python branches test Python values only) marked so
    that autograph does not rewrite its source: converting a new function costs about a second per process."""
    tf, _ = import_tf()
    return tf.autograph.experimental.do_not_convert(function)


def _tf_labels(y: Any, mode: str, num_classes: int | None) -> Any:
    tf, _ = import_tf()
    if mode == "one_hot":
        if not num_classes:
            raise ValueError("one-hot labels need num_classes")
        return tf.one_hot(tf.cast(y, tf.int64), num_classes, dtype=tf.float32)
    if mode == "float":
        return tf.cast(y, tf.float32)
    return tf.cast(y, tf.int64)


def augmentation_model(augmentation: AugmentationParams | None, seed: int) -> Any | None:
    """Keras preprocessing layers for ``data.augmentation`` (None when nothing is set)."""
    if augmentation is None:
        return None
    _, keras = import_tf()
    layers = keras.layers
    stack = []
    if augmentation.random_flip:
        stack.append(layers.RandomFlip(augmentation.random_flip, seed=seed))
    if augmentation.random_rotation:
        stack.append(layers.RandomRotation(augmentation.random_rotation, seed=seed + 1))
    if augmentation.random_zoom:
        stack.append(layers.RandomZoom(augmentation.random_zoom, seed=seed + 2))
    if augmentation.random_translation:
        f = augmentation.random_translation
        stack.append(layers.RandomTranslation(f, f, seed=seed + 3))
    if augmentation.random_contrast:
        stack.append(layers.RandomContrast(augmentation.random_contrast, seed=seed + 4))
    return keras.Sequential(stack, name="augmentation") if stack else None


def make_dataset(x: np.ndarray, y: np.ndarray, *, batch_size: int, loss: str, num_classes: int | None = None,
                 training: FitParams | None = None) -> Any:
    """A batched ``tf.data.Dataset`` of in-memory ``(x, y)``; with ``training`` shuffled and augmented as
    :meth:`Dataset.batches` does."""
    tf, _ = import_tf()
    labels = _labels(y, label_mode(loss), num_classes)
    ds = tf.data.Dataset.from_tensor_slices((x, labels))
    if training is not None:
        ds = ds.shuffle(min(training.shuffle_buffer, max(1, len(x))), seed=training.seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    augment = augmentation_model(training.augmentation, training.seed) if training is not None else None
    if augment is not None:
        ds = ds.map(lambda xb, yb: (augment(xb, training=True), yb), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def example_count(x: Any) -> int:
    """Examples in an array, or in ``{input name: array}`` (a model with several inputs)."""
    return int(len(next(iter(x.values())))) if isinstance(x, dict) else int(len(x))


def example_at(x: Any, i: int) -> Any:
    """Example ``i`` with its batch axis (``x[i:i + 1]``), of an array or of each array of a dict."""
    return {k: v[i:i + 1] for k, v in x.items()} if isinstance(x, dict) else x[i:i + 1]


def representative_samples(data: Dataset, count: int, seed: int = 0, *, raw: bool = False) -> np.ndarray:
    """``count`` training examples for post-training quantization calibration: a seeded shuffle of the
    training stream through a bounded buffer (the whole split is never loaded); ``raw``: unpreprocessed."""
    tf, _ = import_tf()
    if data._arrays is not None:
        x = data._arrays["train"][0]
        rng = np.random.default_rng(seed)
        count = min(count, len(x))
        return x[np.sort(rng.choice(len(x), size=count, replace=False))]
    ds = data.examples("train", raw=raw).shuffle(max(1, min(10 * count, 10000)), seed=seed).take(count).map(
        _plain(lambda x, y: x))
    rows = list(ds.batch(max(1, count)).as_numpy_iterator())
    return rows[0] if rows else np.zeros([0, *data.info["input_shape"]], np.float32)
