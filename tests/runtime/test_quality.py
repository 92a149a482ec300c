"""The one quality metric, confusion matrices, the chance level, the naive baseline and latency timing (no
TensorFlow)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from tfspec.runtime.quality import (beats, chance_level, confusion_matrix, machine_load, naive_baseline, per_class,
                                    quality, time_single_calls)


def test_accuracy_from_softmax_and_from_one_sigmoid_unit() -> None:
    labels = np.array([0, 1, 2, 1])
    softmax = np.eye(3)[[0, 1, 1, 1]]
    assert quality(softmax, labels, "accuracy") == 0.75
    assert quality(np.array([[0.9], [0.2], [0.7]]), np.array([1, 0, 0]), "accuracy") == pytest.approx(2 / 3)


def test_mae_is_the_mean_absolute_error() -> None:
    assert quality(np.array([[1.0], [2.0]]), np.array([1.5, 1.0]), "mae") == pytest.approx(0.75)


def test_confusion_matrix_rows_are_true_classes_with_precision_and_recall() -> None:
    labels = np.array([0, 0, 1, 1, 2])
    predictions = np.eye(3)[[0, 1, 1, 1, 0]]
    matrix = confusion_matrix(predictions, labels, 3)
    assert matrix == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    stats = per_class(matrix)
    assert stats[0] == {"precision": 0.5, "recall": 0.5, "support": 2}
    assert stats[1] == {"precision": pytest.approx(2 / 3, abs=1e-6), "recall": 1.0, "support": 2}
    assert stats[2] == {"precision": None, "recall": 0.0, "support": 1}  # never predicted


def test_chance_level_is_the_majority_share_or_uniform_guessing() -> None:
    assert chance_level(np.array([0, 1, 2, 3] * 5), 4) == 0.25
    assert chance_level(np.array([0] * 8 + [1, 2]), 3) == 0.8
    assert chance_level(np.array([0, 1, 1, 1]), 1) == 0.75  # one sigmoid unit: two classes
    assert chance_level(np.array([0, 1]), 1) == 0.5


def test_naive_baseline_is_the_training_majority_or_mean_measured_on_the_test_split() -> None:
    test = np.array([0, 1, 1, 2])
    naive = naive_baseline({"kind": "majority_class", "class": 1}, test, "accuracy", ["cat", "dog", "owl"])
    assert naive == {"predictor": "always class 1 (dog), the training split's majority", "value": 0.5,
                     "metric": "accuracy"}
    mean = naive_baseline({"kind": "training_mean", "value": 2.0}, np.array([1.0, 4.0]), "mae")
    assert mean is not None and mean["value"] == pytest.approx(1.5)
    assert naive_baseline(None, test, "accuracy") is None
    # at the baseline is not better than it: a model that always says "dog" fails
    assert not beats(0.5, 0.5, "accuracy") and beats(0.51, 0.5, "accuracy")
    assert not beats(1.5, 1.5, "mae") and beats(1.4, 1.5, "mae")


def test_latency_is_each_examples_fastest_call_so_a_preempted_call_does_not_count() -> None:
    calls: list[int] = []

    def call(sample: np.ndarray) -> None:
        calls.append(int(sample[0, 0]))
        if calls.count(int(sample[0, 0])) == 1:  # the first call of every example is stalled (another process ran)
            time.sleep(0.02)

    latencies = time_single_calls(call, np.arange(5, dtype=np.float32).reshape(5, 1), repeats=3)
    assert calls == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert max(latencies) < 0.01  # a single timed call per example would report 20 ms for every one
    load = machine_load()
    assert load["cores"] >= 1 and (load["load_1m"] is None or load["load_1m"] >= 0)
