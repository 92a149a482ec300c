"""Compile and fit a tf_keras model the way the spec says (shared by ``train`` and the compression steps).

Resumable: with a ``checkpoint_dir``, ``BackupAndRestore`` keeps the last finished epoch there and a
``CSVLogger`` appends each epoch's logs, so a killed run restarts where it stopped and the saved history
covers every epoch, not only the ones this process ran.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import math
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .datasets import Dataset, make_dataset
from .optimizers import build_optimizer
from .tf import import_tf

__all__ = ["FitResult", "build_loss", "build_metrics", "compile_model", "fit_model", "evaluate_model",
           "layer_stats", "model_metrics", "make_strategy", "strategy_scope", "is_ci"]

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def is_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def build_loss(loss: dict[str, Any]) -> Any:
    """A tf_keras loss object from ``{kind, from_logits, label_smoothing}``."""
    _, keras = import_tf()
    losses = keras.losses
    kind = loss["kind"]
    from_logits = loss.get("from_logits", False)
    smoothing = loss.get("label_smoothing", 0.0)
    if kind == "sparse_categorical_crossentropy":
        return losses.SparseCategoricalCrossentropy(from_logits=from_logits)
    if kind == "categorical_crossentropy":
        return losses.CategoricalCrossentropy(from_logits=from_logits, label_smoothing=smoothing)
    if kind == "binary_crossentropy":
        return losses.BinaryCrossentropy(from_logits=from_logits, label_smoothing=smoothing)
    if kind == "mean_squared_error":
        return losses.MeanSquaredError()
    if kind == "mean_absolute_error":
        return losses.MeanAbsoluteError()
    if kind == "huber":
        return losses.Huber()
    raise ValueError(f"unknown loss {kind!r}")


def build_metrics(names: list[str]) -> list[Any]:
    """Keras metrics; the string ``accuracy`` lets Keras pick the variant matching the loss."""
    _, keras = import_tf()
    table = {
        "accuracy": lambda: "accuracy",
        "sparse_top_k_categorical_accuracy": lambda: keras.metrics.SparseTopKCategoricalAccuracy(
            name="sparse_top_k_categorical_accuracy"),
        "auc": lambda: keras.metrics.AUC(name="auc"),
        "precision": lambda: keras.metrics.Precision(name="precision"),
        "recall": lambda: keras.metrics.Recall(name="recall"),
        "mae": lambda: keras.metrics.MeanAbsoluteError(name="mae"),
    }
    return [table[name]() for name in names]


def make_strategy(distribution: dict[str, Any] | None) -> Any | None:
    """The ``tf.distribute`` strategy for ``training.distribution`` (None for the default strategy)."""
    tf, _ = import_tf()
    kind = (distribution or {}).get("kind", "default")
    if kind == "default":
        return None
    if kind == "mirrored":
        devices = distribution.get("devices")
        return tf.distribute.MirroredStrategy(devices=[f"/{d}" for d in devices] if devices else None)
    if kind == "multi_worker_mirrored":
        implementation = {"auto": tf.distribute.experimental.CommunicationImplementation.AUTO,
                          "ring": tf.distribute.experimental.CommunicationImplementation.RING,
                          "nccl": tf.distribute.experimental.CommunicationImplementation.NCCL}[
            distribution.get("communication", "auto")]
        return tf.distribute.MultiWorkerMirroredStrategy(
            communication_options=tf.distribute.experimental.CommunicationOptions(implementation=implementation))
    raise ValueError(f"unknown distribution kind {kind!r}")


@contextlib.contextmanager
def strategy_scope(strategy: Any | None) -> Iterator[None]:
    if strategy is None:
        yield
    else:
        with strategy.scope():
            yield


def compile_model(model: Any, fit: dict[str, Any], *, replicas: int = 1) -> list[Any]:
    """Compile with the spec's optimizer, loss and metrics; returns the optimizer's callbacks."""
    scale = float(replicas) if (fit.get("distribution") or {}).get("scale_learning_rate") else 1.0
    optimizer, callbacks = build_optimizer(fit["optimizer"], scale)
    model.compile(optimizer=optimizer, loss=build_loss(fit["loss"]), metrics=build_metrics(fit.get("metrics", [])))
    return callbacks


@dataclasses.dataclass(frozen=True)
class FitResult:
    """What ``fit_model`` did.

    Attributes:
        history: every epoch's logs (resumed epochs included), metric name → values.
        epochs_run: epochs this process ran.
        initial_epoch: epochs already finished by an earlier, interrupted run (0 on a fresh start).
        stopped_early: early stopping ended training before ``epochs``.
    """

    history: dict[str, list[float]]
    epochs_run: int
    initial_epoch: int
    stopped_early: bool


def _epoch_counter(keras: Any) -> Any:
    class EpochCounter(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.epochs: list[int] = []

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.epochs.append(epoch)

    return EpochCounter()


def _read_csv_history(path: Path) -> dict[str, list[float]]:
    if not path.is_file():
        return {}
    rows: dict[int, dict[str, str]] = {}
    with open(path, newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            rows[int(row["epoch"])] = row  # a re-run epoch replaces its earlier row
    history: dict[str, list[float]] = {}
    for epoch in sorted(rows):
        for key, value in rows[epoch].items():
            if key != "epoch" and value not in ("", None):
                history.setdefault(key, []).append(float(value))
    return history


def _verbosity(quiet: bool) -> int:
    if quiet or is_ci():
        return 0
    return 1 if sys.stdout.isatty() else 2


def fit_model(model: Any, data: Dataset, *, fit: dict[str, Any], epochs: int, quiet: bool = False,
              early_stopping: dict[str, Any] | None = None, checkpoint_dir: Path | None = None,
              callbacks: list[Any] | None = None, augmentation: dict[str, Any] | None = None) -> FitResult:
    """Fit a compiled model on the training split (validated on the validation split when there is one)."""
    _, keras = import_tf()
    loss = fit["loss"]["kind"]
    seed = fit.get("seed", 0)
    train = make_dataset(data.x_train, data.y_train, batch_size=fit["batch_size"], loss=loss,
                         num_classes=data.num_classes, training=True, seed=seed,
                         shuffle_buffer=fit.get("shuffle_buffer", 10000), augmentation=augmentation)
    validation = None
    if data.has_validation:
        validation = make_dataset(data.x_val, data.y_val, batch_size=fit["batch_size"], loss=loss,
                                  num_classes=data.num_classes)
    all_callbacks = list(callbacks or [])
    counter = _epoch_counter(keras)
    all_callbacks.append(counter)
    stopper = None
    if early_stopping:
        monitor = early_stopping.get("monitor", "val_loss")
        if validation is None and monitor.startswith("val_"):
            monitor = monitor[len("val_"):]
        stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=early_stopping.get("patience", 5),
                                                min_delta=early_stopping.get("min_delta", 0.0),
                                                restore_best_weights=early_stopping.get("restore_best_weights", True))
        all_callbacks.append(stopper)
    csv_path = None
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        csv_path = checkpoint_dir / "history.csv"
        # CSV first: an epoch is logged before its backup, so a resumed run never lacks a logged epoch.
        all_callbacks.append(keras.callbacks.CSVLogger(str(csv_path), append=True))
        all_callbacks.append(keras.callbacks.BackupAndRestore(str(checkpoint_dir / "backup"), delete_checkpoint=False))
    result = model.fit(train, validation_data=validation, epochs=epochs, callbacks=all_callbacks,
                       verbose=_verbosity(quiet))
    history = _read_csv_history(csv_path) if csv_path is not None else {}
    if not history:
        history = {k: [float(v) for v in values] for k, values in result.history.items()}
    initial_epoch = counter.epochs[0] if counter.epochs else epochs
    stopped = bool(stopper is not None and stopper.stopped_epoch > 0)
    return FitResult(history, len(counter.epochs), initial_epoch, stopped)


def evaluate_model(model: Any, x: np.ndarray, y: np.ndarray, fit: dict[str, Any],
                   num_classes: int | None) -> dict[str, float]:
    """Loss and metrics on one split (``model.evaluate``)."""
    ds = make_dataset(x, y, batch_size=max(fit["batch_size"], 256), loss=fit["loss"]["kind"], num_classes=num_classes)
    values = model.evaluate(ds, verbose=0, return_dict=True)
    return {k: float(v) for k, v in values.items()}


_KERNEL_ATTRS = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings")


def _kernel(layer: Any) -> Any | None:
    tf, _ = import_tf()
    inner = getattr(layer, "layer", layer)  # tfmot wrappers keep the wrapped layer in .layer
    for attr in _KERNEL_ATTRS:
        value = getattr(inner, attr, None)
        if isinstance(value, tf.Variable):
            return value
    # Quantize wrappers replace the attribute with the fake-quantized tensor: find the variable itself.
    for weight in layer.weights:
        if weight.name.rsplit("/", 1)[-1].split(":")[0] in _KERNEL_ATTRS:
            return weight
    return None


def layer_stats(model: Any) -> list[dict[str, Any]]:
    """Per weighted layer: kernel size, non-zero and unique values, sparsity (for the report)."""
    stats = []
    for layer in model.layers:
        kernel = _kernel(layer)
        if kernel is None:
            continue
        values = np.asarray(kernel.numpy())
        size = int(values.size)
        nonzero = int(np.count_nonzero(values))
        stats.append({"layer": getattr(getattr(layer, "layer", layer), "name", layer.name), "kernel_size": size,
                      "nonzero": nonzero, "unique": int(np.unique(values).size),
                      "sparsity": round(1.0 - nonzero / size, 6) if size else 0.0})
    return stats


def model_metrics(model: Any, data: Dataset, fit: dict[str, Any]) -> dict[str, Any]:
    """The metrics every model step reports: test metrics, ``accuracy``, ``params`` and ``layers``."""
    test = evaluate_model(model, data.x_test, data.y_test, fit, data.num_classes)
    metric_names = fit.get("metrics") or []
    quality = metric_names[0] if metric_names else "loss"
    out: dict[str, Any] = {"test": test, "params": int(model.count_params()), "layers": layer_stats(model)}
    value = test.get(quality)
    out["accuracy"] = value if value is None or math.isfinite(value) else None
    return out
