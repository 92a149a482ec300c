"""Every optimizer with every learning-rate form builds and takes real training steps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tfspec.runtime.optimizers import OPTIMIZER_KINDS, SCHEDULE_KINDS, build_learning_rate, build_optimizer
from tfspec.runtime.tf import import_tf

tf, keras = import_tf()

SCHEDULES = {
    "constant": 0.01,
    "exponential_decay": {"schedule": "exponential_decay", "initial": 0.01, "decay_steps": 10, "decay_rate": 0.5},
    "cosine_decay": {"schedule": "cosine_decay", "initial": 0.01, "decay_steps": 100, "alpha": 0.1, "warmup_steps": 5},
    "piecewise_constant": {"schedule": "piecewise_constant", "boundaries": [10, 20], "values": [0.01, 0.005, 0.001]},
    "reduce_on_plateau": {"schedule": "reduce_on_plateau", "initial": 0.01, "factor": 0.5, "patience": 1},
}
OPTIMIZERS = {
    "sgd": {"kind": "sgd", "momentum": 0.9, "nesterov": True},
    "adam": {"kind": "adam", "amsgrad": True},
    "adamw": {"kind": "adamw", "weight_decay": 0.01},
    "adagrad": {"kind": "adagrad"},
    "rmsprop": {"kind": "rmsprop", "centered": True, "momentum": 0.5},
}


def test_the_tables_cover_every_kind() -> None:
    assert set(OPTIMIZERS) == set(OPTIMIZER_KINDS)
    assert set(SCHEDULES) - {"constant"} == set(SCHEDULE_KINDS)


@pytest.mark.parametrize(("optimizer", "schedule"), list(itertools.product(OPTIMIZERS, SCHEDULES)))
def test_optimizer_and_schedule_take_one_step(optimizer: str, schedule: str) -> None:
    params = {**OPTIMIZERS[optimizer], "learning_rate": SCHEDULES[schedule], "clipnorm": 1.0}
    built, callbacks = build_optimizer(params)
    assert type(built).__name__.lower() == optimizer
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=built, loss="sparse_categorical_crossentropy")
    before = [w.copy() for w in model.get_weights()]
    x = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32)
    y = np.arange(8) % 3
    history = model.fit(x, y, epochs=1, batch_size=4, verbose=0, callbacks=callbacks)  # 2 steps (warm-up starts at 0)
    assert np.isfinite(history.history["loss"][0])
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert int(built.iterations.numpy()) == 2
    if schedule == "reduce_on_plateau":
        assert len(callbacks) == 1 and isinstance(callbacks[0], keras.callbacks.ReduceLROnPlateau)
    else:
        assert callbacks == []


def test_schedules_follow_their_formulas() -> None:
    exponential, _ = build_learning_rate(SCHEDULES["exponential_decay"])
    assert float(exponential(20)) == pytest.approx(0.01 * 0.5 ** 2)
    cosine, _ = build_learning_rate(SCHEDULES["cosine_decay"])
    assert float(cosine(0)) == pytest.approx(0.0)  # linear warm-up from 0 ...
    assert float(cosine(5)) == pytest.approx(0.01)  # ... to `initial`, then cosine decay
    assert float(cosine(105)) == pytest.approx(0.001)  # down to alpha * initial
    piecewise, _ = build_learning_rate(SCHEDULES["piecewise_constant"])
    assert [float(piecewise(s)) for s in (0, 15, 25)] == pytest.approx([0.01, 0.005, 0.001])
    plain, _ = build_learning_rate({"schedule": "cosine_decay", "initial": 0.02, "decay_steps": 10})
    assert float(plain(0)) == pytest.approx(0.02)
    scaled, _ = build_learning_rate(0.01, scale=4)
    assert scaled == pytest.approx(0.04)
