"""The one quality metric, confusion matrices and the chance level (no TensorFlow)."""

from __future__ import annotations

import numpy as np
import pytest

from tfspec.runtime.quality import chance_level, confusion_matrix, per_class, quality


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
