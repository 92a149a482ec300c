"""Training with checkpoints but no validation split (``data.split.validation: 0``) finishes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from runtime_testing import plan_fit

from tfspec.runtime.datasets import Dataset
from tfspec.runtime.fit import compile_model, fit_model
from tfspec.runtime.tf import import_tf

FIT = plan_fit({"optimizer": {"kind": "adam", "learning_rate": 0.01}, "loss": {"kind": "sparse_categorical_crossentropy"},
                "metrics": ["accuracy"], "batch_size": 16, "seed": 0})


def test_checkpointed_fit_without_validation_reads_its_history(tmp_path: Path) -> None:
    _, keras = import_tf()
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(48, 4)).astype(np.float32), np.array([0, 1, 2] * 16, dtype=np.int64)
    data = Dataset.from_arrays(x, y, x[:0], y[:0], x[:6], y[:6], {"num_classes": 3})
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    compile_model(model, FIT)
    # CSVLogger logs val_* as "NA" without validation data; reading that history used to raise ValueError
    result = fit_model(model, data, fit=FIT, epochs=2, quiet=True, checkpoint_dir=tmp_path / "checkpoint")
    assert len(result.history["loss"]) == 2
    assert not any(key.startswith("val_") for key in result.history)
