"""The quality metric every model and artifact is measured with, on the test split, from predictions.

One function for every stage (trained model, each compression stage, each target's artifact), so the
numbers in a gate are comparable. Two metrics exist: ``accuracy`` for classifiers (higher is better)
and ``mae``, the mean absolute error, for regression (lower is better). The plan picks one per spec
(``compiler.plan.quality_metric``) and names it everywhere a value is shown.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ERROR_METRICS", "CHANCE_MARGIN", "LATENCY_SAMPLES", "is_error_metric", "quality", "predicted_classes",
           "confusion_matrix", "per_class", "chance_level", "percentiles", "time_single_calls"]

# Metrics where lower is better: their gates bound an increase, not a drop.
ERROR_METRICS = frozenset({"mae"})
# An accuracy within this much of the chance level counts as "at chance" (and is warned about).
CHANCE_MARGIN = 0.02
LATENCY_SAMPLES = 200


def is_error_metric(metric: str) -> bool:
    return metric in ERROR_METRICS


def predicted_classes(predictions: np.ndarray) -> np.ndarray:
    """Class indices: a threshold at 0.5 for one output unit (binary), otherwise the arg-max."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if predictions.ndim == 1 or predictions.shape[-1] == 1:
        return (predictions.reshape(-1) > 0.5).astype(np.int64)
    return np.argmax(predictions, axis=-1)


def quality(predictions: np.ndarray, labels: np.ndarray, metric: str | None) -> float:
    """``mae`` for regression, otherwise classification accuracy."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if metric is not None and is_error_metric(metric):
        return float(np.mean(np.abs(predictions.reshape(labels.shape) - labels)))
    return float(np.mean(predicted_classes(predictions) == labels.reshape(-1).astype(np.int64)))


def confusion_matrix(predictions: np.ndarray, labels: np.ndarray, num_classes: int) -> list[list[int]]:
    """``matrix[true][predicted]`` counts on the test split."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    truth = labels.reshape(-1).astype(np.int64)
    np.add.at(matrix, (truth, np.clip(predicted_classes(predictions), 0, num_classes - 1)), 1)
    return matrix.tolist()


def per_class(matrix: list[list[int]]) -> list[dict[str, float | int | None]]:
    """Precision, recall and support of each class (``None`` where a class was never predicted/present)."""
    m = np.asarray(matrix, dtype=np.int64)
    out: list[dict[str, float | int | None]] = []
    for k in range(len(m)):
        predicted, actual, hit = int(m[:, k].sum()), int(m[k, :].sum()), int(m[k, k])
        out.append({"precision": round(hit / predicted, 6) if predicted else None,
                    "recall": round(hit / actual, 6) if actual else None, "support": actual})
    return out


def chance_level(labels: np.ndarray, num_classes: int | None) -> float:
    """The accuracy of a model that ignores its input: uniform guessing or always the majority class."""
    truth = labels.reshape(-1).astype(np.int64)
    classes = num_classes if num_classes and num_classes > 1 else 2  # one sigmoid unit: two classes
    majority = float(np.bincount(truth).max() / truth.size) if truth.size else 0.0
    return max(1.0 / classes, majority)


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds of latencies in seconds."""
    values = np.asarray(latencies) * 1000.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def time_single_calls(call: Callable[[np.ndarray], Any], x: np.ndarray, samples: int = LATENCY_SAMPLES) -> list[float]:
    """Seconds of ``call`` on each of the first ``samples`` examples, one example at a time."""
    latencies = []
    count = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)  # a dict: several named inputs
    for i in range(min(count, samples)):
        sample = {k: v[i:i + 1] for k, v in x.items()} if isinstance(x, dict) else x[i:i + 1]
        start = time.perf_counter()
        call(sample)
        latencies.append(time.perf_counter() - start)
    return latencies
