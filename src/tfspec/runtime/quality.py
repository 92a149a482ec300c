"""The quality metric every model and artifact is measured with, on the test split, from predictions.

One function for every stage (trained model, each compression stage, each target's artifact), so the
numbers in a gate are comparable. Two metrics exist: ``accuracy`` for classifiers (higher is better)
and ``mae``, the mean absolute error, for regression (lower is better). The compiler picks one per spec
(``compiler.plan.quality_metric``) and names it in the train and evaluate steps' params; every value shown
names it.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["ERROR_METRICS", "CHANCE_MARGIN", "LATENCY_SAMPLES", "NAIVE_BASELINE_GATE", "is_error_metric", "quality",
           "predicted_classes", "confusion_matrix", "per_class", "chance_level", "naive_baseline", "beats",
           "percentiles", "time_single_calls", "time_alternating", "machine_load", "LATENCY_REPEATS", "LATENCY_METHOD"]

# Metrics where lower is better: their gates bound an increase, not a drop.
ERROR_METRICS = frozenset({"mae"})
# An accuracy within this much of the chance level counts as "at chance" (and is warned about).
CHANCE_MARGIN = 0.02
LATENCY_SAMPLES = 200
LATENCY_REPEATS = 3
"""Calls per example when timing: the fastest counts (see ``time_single_calls``)."""
LATENCY_METHOD = f"p50/p95 over up to {LATENCY_SAMPLES} test examples, one at a time, each the fastest of {LATENCY_REPEATS} calls"
NAIVE_BASELINE_GATE = "beats_naive_baseline"
"""The gate every measured artifact gets (``training.naive_baseline: fail``): better than ignoring the input."""


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


def naive_baseline(predictor: dict[str, Any] | None, labels: np.ndarray, metric: str,
                   names: list[str] | None = None) -> dict[str, Any] | None:
    """The test-split quality of a model that ignores its input: always the training split's majority class
    (``predictor`` from the data step: ``{"kind": "majority_class", "class": k}``), or always the training
    labels' mean (``{"kind": "training_mean", "value": m}``). None when the data step recorded none."""
    if not predictor or not labels.size:
        return None
    truth = labels.reshape(-1)
    if predictor["kind"] == "training_mean":
        mean = float(predictor["value"])
        return {"predictor": f"always the training labels' mean {mean:.6g}", "value": float(np.mean(np.abs(
            truth.astype(np.float64) - mean))), "metric": metric}
    k = int(predictor["class"])
    name = names[k] if names and k < len(names) and names[k] != str(k) else None
    shown = f"class {k} ({name})" if name else f"class {k}"
    return {"predictor": f"always {shown}, the training split's majority", "value": float(np.mean(
        truth.astype(np.int64) == k)), "metric": metric}


def beats(value: float, baseline: float, metric: str) -> bool:
    """Strictly better than ``baseline``: a higher accuracy, a lower error."""
    return value < baseline if is_error_metric(metric) else value > baseline


def percentiles(latencies: list[float]) -> tuple[float, float]:
    """p50 and p95 in milliseconds of latencies in seconds."""
    values = np.asarray(latencies) * 1000.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def machine_load() -> dict[str, Any]:
    """The machine's 1-minute load average and the cores this process may use: recorded beside every
    latency figure (a load above the cores means calls waited for a CPU)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        load = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {"load_1m": load, "cores": cores}


def time_single_calls(call: Callable[[np.ndarray], Any], x: np.ndarray, samples: int = LATENCY_SAMPLES,
                      repeats: int = LATENCY_REPEATS) -> list[float]:
    """Seconds of ``call`` on each of the first ``samples`` examples, one example at a time: the fastest of
    ``repeats`` calls per example, so a call another process preempted (a loaded machine) is not what counts."""
    latencies = []
    count = len(next(iter(x.values()))) if isinstance(x, dict) else len(x)  # a dict: several named inputs
    for i in range(min(count, samples)):
        sample = {k: v[i:i + 1] for k, v in x.items()} if isinstance(x, dict) else x[i:i + 1]
        best = math.inf
        for _ in range(repeats):
            start = time.perf_counter()
            call(sample)
            best = min(best, time.perf_counter() - start)
        latencies.append(best)
    return latencies


def time_alternating(timers: list[Callable[[Any], float]], xs: list[Any], samples: int = LATENCY_SAMPLES,
                     repeats: int = LATENCY_REPEATS) -> list[list[float]]:
    """Seconds of several models on the first ``samples`` examples, timed alternately: for each example the
    fastest of ``repeats`` calls of the first model, then of the second, ...; a change of the machine's load
    during the timing hits every model alike (a candidate and the released model it is compared with).
    ``timers[k](example) → seconds`` times one call on one example of ``xs[k]`` (an array, or a dict of arrays
    by input name), so each model is timed as it is timed alone."""
    counts = [len(next(iter(x.values()))) if isinstance(x, dict) else len(x) for x in xs]
    out: list[list[float]] = [[] for _ in timers]
    for i in range(min([*counts, samples])):
        for k, (timer, x) in enumerate(zip(timers, xs)):
            sample = {name: v[i:i + 1] for name, v in x.items()} if isinstance(x, dict) else x[i:i + 1]
            out[k].append(min(timer(sample) for _ in range(repeats)))
    return out
