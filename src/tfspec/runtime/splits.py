"""Deterministic train/validation/test assignment of streamed examples.

Each example has a stable key: the source file's name relative to the data root and the record's index in
that file (``train/cat/001.png:0``, ``shard-00003.tfrecord:4711``). Its bucket is
``Fingerprint64("<seed>:<key>") mod 2**62`` (``tf.strings.to_hash_bucket_fast``, the same on every
platform, run and worker). A rule holds, per class when stratified (one entry otherwise), two thresholds:
bucket < ``test`` → test, bucket < ``validation`` → validation, else train. The data step chooses the
thresholds from the ranks of the buckets, so each class's split sizes are exact; every reader applies the
same rule to the same keys, so the splits never overlap.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from tfspec.plan import SplitParams

from .tf import import_tf

__all__ = ["BUCKETS", "SPLITS", "SplitRule", "buckets", "choose_rule", "example_key"]

BUCKETS = 2 ** 62
SPLITS = ("train", "val", "test")


def example_key(seed: int, name: Any, index: Any) -> Any:
    """``"<seed>:<name>:<index>"`` as a string tensor (name and index may be tensors)."""
    tf, _ = import_tf()
    return tf.strings.join([str(int(seed)), name, tf.strings.as_string(index)], separator=":")


def buckets(seed: int, names: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """The int64 bucket of each (name, index) key."""
    tf, _ = import_tf()
    keys = example_key(seed, tf.constant(names, dtype=tf.string), tf.constant(indices, dtype=tf.int64))
    return tf.strings.to_hash_bucket_fast(keys, BUCKETS).numpy()


@dataclasses.dataclass(frozen=True)
class SplitRule:
    """Thresholds per class (``stratified``) or one pair for every example."""

    seed: int
    stratified: bool
    test: tuple[int, ...]
    validation: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {"seed": self.seed, "stratified": self.stratified, "test": list(self.test),
                "validation": list(self.validation), "buckets": BUCKETS}

    @staticmethod
    def from_json(data: dict[str, Any]) -> "SplitRule":
        return SplitRule(int(data["seed"]), bool(data["stratified"]), tuple(int(v) for v in data["test"]),
                         tuple(int(v) for v in data["validation"]))

    def assign(self, bucket: np.ndarray, label: np.ndarray) -> np.ndarray:
        """0 train, 1 validation, 2 test (NumPy)."""
        at = label.astype(np.int64) if self.stratified else np.zeros(len(bucket), dtype=np.int64)
        test = np.asarray(self.test, dtype=np.int64)[at]
        val = np.asarray(self.validation, dtype=np.int64)[at]
        return np.where(bucket < test, 2, np.where(bucket < val, 1, 0))

    def tf_split(self, bucket: Any, label: Any) -> Any:
        """The same as :meth:`assign` on one example's tensors."""
        tf, _ = import_tf()
        at = tf.cast(label, tf.int64) if self.stratified else tf.constant(0, tf.int64)
        test = tf.gather(tf.constant(self.test, tf.int64), at)
        val = tf.gather(tf.constant(self.validation, tf.int64), at)
        return tf.where(bucket < test, tf.constant(2, tf.int64), tf.where(bucket < val, tf.constant(1, tf.int64),
                                                                           tf.constant(0, tf.int64)))


def _thresholds(values: np.ndarray, test: float, validation: float) -> tuple[int, int]:
    ordered = np.sort(values)
    n = len(ordered)
    n_test = int(round(n * test))
    n_val = int(round(n * validation))

    def at(rank: int) -> int:
        return int(ordered[rank]) if rank < n else BUCKETS

    return at(n_test), at(min(n, n_test + n_val))


def choose_rule(bucket: np.ndarray, label: np.ndarray | None, split: SplitParams, classes: int | None) -> SplitRule:
    """Thresholds that give each class (or the whole set) exactly its fractions, by rank of bucket."""
    seed = split.seed
    test, validation = split.test, split.validation
    if label is None or not classes or not split.stratify:
        t, v = _thresholds(bucket, test, validation)
        return SplitRule(seed, False, (t,), (v,))
    tests, vals = [], []
    for c in range(classes):
        t, v = _thresholds(bucket[label == c], test, validation)
        tests.append(t)
        vals.append(v)
    return SplitRule(seed, True, tuple(tests), tuple(vals))
