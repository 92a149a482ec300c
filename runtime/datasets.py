"""The data step's outputs as arrays and ``tf.data`` pipelines (shared by training and compression).

``dataset.npz`` holds ``x_train, y_train, x_val, y_val, x_test, y_test`` with preprocessing applied;
``data_info.json`` holds labels, num_classes, input_shape, rescale/mean/std, the label mode the loss
needs and the augmentation settings (applied to training batches only).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from .tf import import_tf

__all__ = ["DATASET_FILE", "DATA_INFO_FILE", "Dataset", "load_dataset", "label_mode", "make_dataset",
           "augmentation_model", "representative_samples"]

DATASET_FILE = "dataset.npz"
DATA_INFO_FILE = "data_info.json"

_ONE_HOT_LOSSES = {"categorical_crossentropy"}
_FLOAT_LOSSES = {"binary_crossentropy", "mean_squared_error", "mean_absolute_error", "huber"}


@dataclasses.dataclass(frozen=True)
class Dataset:
    """The three splits and the data step's ``data_info.json``."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    info: dict[str, Any]

    @property
    def num_classes(self) -> int | None:
        return self.info.get("num_classes")

    @property
    def has_validation(self) -> bool:
        return len(self.x_val) > 0


def load_dataset(folder: Path) -> Dataset:
    """Read a data step's cache entry."""
    folder = Path(folder)
    info = json.loads((folder / DATA_INFO_FILE).read_text("utf-8"))
    with np.load(folder / DATASET_FILE) as arrays:
        splits = {key: arrays[key] for key in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
    return Dataset(info=info, **splits)


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


def augmentation_model(augmentation: dict[str, Any] | None, seed: int) -> Any | None:
    """Keras preprocessing layers for the spec's ``data.augmentation`` (None when nothing is set)."""
    if not augmentation:
        return None
    _, keras = import_tf()
    layers = keras.layers
    stack = []
    if augmentation.get("random_flip"):
        stack.append(layers.RandomFlip(augmentation["random_flip"], seed=seed))
    if augmentation.get("random_rotation"):
        stack.append(layers.RandomRotation(augmentation["random_rotation"], seed=seed + 1))
    if augmentation.get("random_zoom"):
        stack.append(layers.RandomZoom(augmentation["random_zoom"], seed=seed + 2))
    if augmentation.get("random_translation"):
        f = augmentation["random_translation"]
        stack.append(layers.RandomTranslation(f, f, seed=seed + 3))
    if augmentation.get("random_contrast"):
        stack.append(layers.RandomContrast(augmentation["random_contrast"], seed=seed + 4))
    return keras.Sequential(stack, name="augmentation") if stack else None


def make_dataset(x: np.ndarray, y: np.ndarray, *, batch_size: int, loss: str = "sparse_categorical_crossentropy",
                 num_classes: int | None = None, training: bool = False, seed: int = 0,
                 shuffle_buffer: int = 10000, augmentation: dict[str, Any] | None = None) -> Any:
    """A batched ``tf.data.Dataset`` of ``(x, y)``; shuffled (seeded) and augmented only when ``training``."""
    tf, _ = import_tf()
    labels = _labels(y, label_mode(loss), num_classes)
    ds = tf.data.Dataset.from_tensor_slices((x, labels))
    if training:
        ds = ds.shuffle(min(shuffle_buffer, max(1, len(x))), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size)
    augment = augmentation_model(augmentation, seed) if training else None
    if augment is not None:
        ds = ds.map(lambda xb, yb: (augment(xb, training=True), yb), num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def representative_samples(data: Dataset, count: int, seed: int = 0) -> np.ndarray:
    """``count`` training examples (a seeded sample) for post-training quantization calibration."""
    rng = np.random.default_rng(seed)
    count = min(count, len(data.x_train))
    index = np.sort(rng.choice(len(data.x_train), size=count, replace=False))
    return data.x_train[index]
