"""Every optimizer with every learning-rate form builds and takes real training steps."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from tfspec.runtime.optimizers import OPTIMIZER_KINDS, SCHEDULE_KINDS, build_learning_rate, build_optimizer
from tfspec.runtime.tf import import_tf
from runtime_testing import plan_learning_rate, plan_optimizer

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
    "nadam": {"kind": "nadam", "beta_2": 0.99},
    "adamax": {"kind": "adamax"},
    "adadelta": {"kind": "adadelta", "rho": 0.9},
    "ftrl": {"kind": "ftrl", "l1_regularization_strength": 0.001},
    "lion": {"kind": "lion", "beta_2": 0.98},
}


def test_the_tables_cover_every_kind() -> None:
    assert set(OPTIMIZERS) == set(OPTIMIZER_KINDS)
    assert set(SCHEDULES) - {"constant"} == set(SCHEDULE_KINDS)


# ftrl divides by the rate: the spec refuses a warm-up from 0 for it (test below)
COMBINATIONS = [(o, s) for o, s in itertools.product(OPTIMIZERS, SCHEDULES) if (o, s) != ("ftrl", "cosine_decay")]


def test_ftrl_with_a_warm_up_is_refused_by_the_spec() -> None:
    from pydantic import ValidationError

    from tfspec.spec.training import Training

    with pytest.raises(ValidationError, match="ftrl divides by the learning rate"):
        Training.model_validate({"optimizer": {**OPTIMIZERS["ftrl"], "learning_rate": SCHEDULES["cosine_decay"]}})
    Training.model_validate({"optimizer": {**OPTIMIZERS["ftrl"], "learning_rate": {
        **SCHEDULES["cosine_decay"], "warmup_steps": 0}}})


@pytest.mark.parametrize(("optimizer", "schedule"), COMBINATIONS)
def test_optimizer_and_schedule_take_one_step(optimizer: str, schedule: str) -> None:
    params = {**OPTIMIZERS[optimizer], "learning_rate": SCHEDULES[schedule], "clipnorm": 1.0}
    built, callbacks = build_optimizer(plan_optimizer(params))
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
    exponential, _ = build_learning_rate(plan_learning_rate(SCHEDULES["exponential_decay"]))
    assert float(exponential(20)) == pytest.approx(0.01 * 0.5 ** 2)
    cosine, _ = build_learning_rate(plan_learning_rate(SCHEDULES["cosine_decay"]))
    assert float(cosine(0)) == pytest.approx(0.0)  # linear warm-up from 0 ...
    assert float(cosine(5)) == pytest.approx(0.01)  # ... to `initial`, then cosine decay
    assert float(cosine(105)) == pytest.approx(0.001)  # down to alpha * initial
    piecewise, _ = build_learning_rate(plan_learning_rate(SCHEDULES["piecewise_constant"]))
    assert [float(piecewise(s)) for s in (0, 15, 25)] == pytest.approx([0.01, 0.005, 0.001])
    plain, _ = build_learning_rate(plan_learning_rate({"schedule": "cosine_decay", "initial": 0.02, "decay_steps": 10}))
    assert float(plain(0)) == pytest.approx(0.02)
    scaled, _ = build_learning_rate(plan_learning_rate(0.01), scale=4)
    assert scaled == pytest.approx(0.04)


def test_clipvalue_bounds_each_gradient_element() -> None:
    built, _ = build_optimizer(plan_optimizer({"kind": "sgd", "learning_rate": 1.0, "clipvalue": 0.01}))
    assert built.clipvalue == 0.01
    variable = tf.Variable([0.0, 0.0])
    built.apply_gradients([(tf.constant([5.0, -0.001]), variable)])
    np.testing.assert_allclose(variable.numpy(), [-0.01, 0.001], rtol=1e-6)


def test_every_optimizer_field_of_the_plan_reaches_keras() -> None:
    """The runtime passes each of the plan's optimizer fields to tf_keras and restates none of its defaults:
    non-default values come out of the built optimizer's config."""
    from tfspec.runtime.optimizers import _OPTIMIZERS

    for params_type, (_, arguments) in _OPTIMIZERS.items():
        assert set(arguments) == set(params_type.model_fields) - {"kind", "learning_rate", "clipnorm", "clipvalue"}
    built, _ = build_optimizer(plan_optimizer({"kind": "adam", "beta_1": 0.8, "beta_2": 0.95, "epsilon": 1e-5,
                                               "amsgrad": True}))
    config = built.get_config()
    assert (config["beta_1"], config["beta_2"], config["epsilon"], config["amsgrad"]) == (0.8, 0.95, 1e-5, True)
