"""Compile and fit a tf_keras model the way the spec says (shared by ``train`` and the compression steps).

Resumable: with a ``checkpoint_dir``, ``BackupAndRestore`` keeps the last finished epoch there and a
``CSVLogger`` appends each epoch's logs, so a killed run restarts where it stopped and the saved history
covers every epoch, not only the ones this process ran.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.plan import EarlyStoppingParams, FitParams, LossParams

from .datasets import Dataset
from .distribute import Distributed
from .optimizers import build_optimizer
from .tf import import_tf

__all__ = ["FitResult", "build_loss", "build_metrics", "compile_model", "fit_model", "evaluate_model",
           "layer_stats", "model_metrics", "is_ci"]

HISTORY_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy")


def is_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def build_loss(loss: LossParams) -> Any:
    """A tf_keras loss object from the plan's loss params."""
    _, keras = import_tf()
    losses = keras.losses
    kind = loss.kind
    from_logits = loss.from_logits
    smoothing = loss.label_smoothing
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


def compile_model(model: Any, fit: FitParams, *, replicas: int = 1) -> list[Any]:
    """Compile with the plan's optimizer, loss and metrics; returns the optimizer's callbacks."""
    scale = float(replicas) if fit.distribution.scale_learning_rate else 1.0
    optimizer, callbacks = build_optimizer(fit.optimizer, scale)
    model.compile(optimizer=optimizer, loss=build_loss(fit.loss), metrics=build_metrics(fit.metrics))
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
            # CSVLogger writes "NA" for val_* columns when there is no validation split
            if key != "epoch" and value not in ("", "NA", None):
                history.setdefault(key, []).append(float(value))
    return history


def _verbosity(quiet: bool) -> int:
    if quiet or is_ci():
        return 0
    return 1 if sys.stdout.isatty() else 2


def fit_model(model: Any, data: Dataset, *, fit: FitParams, epochs: int, quiet: bool = False,
              early_stopping: EarlyStoppingParams | None = None, checkpoint_dir: Path | None = None,
              callbacks: list[Any] | None = None, distributed: Distributed | None = None) -> FitResult:
    """Fit a compiled model on the training split (validated on the validation split when there is one).

    ``checkpoint_dir`` belongs to this one ``fit`` call (a step fitting twice gives each call its own
    sub-folder): it holds the ``BackupAndRestore`` state and ``history.csv``. It is kept after training
    ends so a crash before the step is cached does not retrain; the executor deletes it after caching.

    With ``distributed`` (``runtime.distribute``), batches are global (per-replica ``batch_size`` ×
    replicas), datasets are sharded by example, and a non-chief worker logs its epochs beside the chief's.
    """
    _, keras = import_tf()
    loss = fit.loss.kind
    batch_size = distributed.global_batch_size(fit.batch_size) if distributed else fit.batch_size
    train = data.batches("train", batch_size=batch_size, loss=loss, training=fit, distributed=distributed)
    validation = None
    if data.has_validation:
        validation = data.batches("val", batch_size=batch_size, loss=loss, distributed=distributed)
    steps: dict[str, Any] = {}
    if data.shard_for(distributed) is not None:
        # each worker reads its own files, so the pipelines repeat and every worker stops after the same
        # number of global batches
        steps["steps_per_epoch"] = max(1, data.count("train") // batch_size)
        if validation is not None:
            steps["validation_steps"] = max(1, data.count("val") // batch_size)
    all_callbacks = list(callbacks or [])
    counter = _epoch_counter(keras)
    all_callbacks.append(counter)
    stopper = None
    if early_stopping is not None:
        monitor = early_stopping.monitor
        if validation is None and monitor.startswith("val_"):
            monitor = monitor[len("val_"):]
        stopper = keras.callbacks.EarlyStopping(monitor=monitor, patience=early_stopping.patience,
                                                min_delta=early_stopping.min_delta,
                                                restore_best_weights=early_stopping.restore_best_weights)
        all_callbacks.append(stopper)
    csv_path = None
    if checkpoint_dir is not None:
        checkpoint_dir = Path(checkpoint_dir)
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        csv_path = checkpoint_dir / "history.csv"
        if distributed is not None:
            csv_path = distributed.write_path(csv_path)
        # CSV first: an epoch is logged before its backup, so a resumed run never lacks a logged epoch.
        all_callbacks.append(keras.callbacks.CSVLogger(str(csv_path), append=True))
        all_callbacks.append(keras.callbacks.BackupAndRestore(str(checkpoint_dir / "backup"), delete_checkpoint=False))
    result = model.fit(train, validation_data=validation, epochs=epochs, callbacks=all_callbacks,
                       verbose=_verbosity(quiet), **steps)
    history = _read_csv_history(csv_path) if csv_path is not None else {}
    if not history:
        history = {k: [float(v) for v in values] for k, values in result.history.items()}
    initial_epoch = counter.epochs[0] if counter.epochs else epochs
    stopped = bool(stopper is not None and stopper.stopped_epoch > 0)
    return FitResult(history, len(counter.epochs), initial_epoch, stopped)


def evaluate_model(model: Any, data: Dataset, split: str, fit: FitParams) -> dict[str, float]:
    """Loss and metrics on one split (streamed): ``model.evaluate`` when compiled, otherwise the loss and
    accuracy computed from predictions (a stripped or freshly loaded model need not be compiled)."""
    ds = data.batches(split, batch_size=max(fit.batch_size, 256), loss=fit.loss.kind)
    if getattr(model, "_is_compiled", False):
        values = model.evaluate(ds, verbose=0, return_dict=True)
        return {k: float(v) for k, v in values.items()}
    predictions = model.predict(ds, verbose=0)
    labels = np.concatenate([batch_y for _, batch_y in ds.as_numpy_iterator()])
    out = {"loss": float(build_loss(fit.loss)(labels, predictions).numpy())}
    if "accuracy" in fit.metrics:
        if predictions.ndim == 1 or predictions.shape[-1] == 1:
            predicted = (predictions.reshape(-1) > 0.5).astype(np.int64)
        else:
            predicted = np.argmax(predictions, axis=-1)
        truth = np.argmax(labels, axis=-1) if labels.ndim == 2 and labels.shape[-1] > 1 else labels.reshape(-1)
        out["accuracy"] = float(np.mean(predicted == truth.astype(np.int64)))
    return out


_KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel", "embeddings")


def _weight_name(variable: Any) -> str:
    return variable.name.split("/")[-1].split(":")[0]


def _kernel(layer: Any) -> np.ndarray | None:
    """The kernel the layer computes with: clustered wrappers gather centroids by index, other tfmot
    wrappers (prune, quantize) keep the wrapped layer's kernel variable among their weights."""
    weights = {_weight_name(w): w for w in layer.weights}
    if "cluster_centroids_kernel" in weights and "pulling_indices_kernel" in weights:
        centroids = np.asarray(weights["cluster_centroids_kernel"].numpy())
        return centroids[np.asarray(weights["pulling_indices_kernel"].numpy())]
    for name in _KERNEL_NAMES:
        if name in weights:
            return np.asarray(weights[name].numpy())
    return None


def layer_stats(model: Any) -> list[dict[str, Any]]:
    """Per weighted layer: kernel size, non-zero and unique values, sparsity (for the report)."""
    stats = []
    for layer in model.layers:
        values = _kernel(layer)
        if values is None:
            continue
        size = int(values.size)
        nonzero = int(np.count_nonzero(values))
        stats.append({"layer": getattr(getattr(layer, "layer", layer), "name", layer.name), "kernel_size": size,
                      "nonzero": nonzero, "unique": int(np.unique(values).size),
                      "sparsity": round(1.0 - nonzero / size, 6) if size else 0.0})
    return stats


def model_metrics(model: Any, data: Dataset, fit: FitParams) -> dict[str, Any]:
    """The metrics every model step reports: test metrics, ``accuracy`` (historical name: the value of
    ``metric``, the first of ``training.metrics``, e.g. ``mae``), ``params`` and ``layers``."""
    test = evaluate_model(model, data, "test", fit)
    quality = fit.metrics[0] if fit.metrics else "loss"
    out: dict[str, Any] = {"test": test, "params": int(model.count_params()), "layers": layer_stats(model),
                           "metric": quality}
    value = test.get(quality)
    out["accuracy"] = value if value is None or math.isfinite(value) else None
    return out
