"""Optimizers and learning-rate schedules from the plan's typed ``fit.optimizer`` params.

A schedule is a ``LearningRateSchedule`` (exponential, cosine with optional linear warm-up, piecewise
constant), except ``reduce_on_plateau``, which is a constant rate plus a ``ReduceLROnPlateau`` callback.
"""

from __future__ import annotations

import typing
from typing import Any

from tfspec.plan import (AdadeltaParams, AdagradParams, AdamaxParams, AdamParams, AdamWParams, CosineDecayParams,
                         ExponentialDecayParams, FtrlParams, LearningRateParams, LionParams, NadamParams,
                         OptimizerParams, PiecewiseConstantParams, ReduceOnPlateauParams, RmsPropParams,
                         ScheduleParams, SgdParams)

from .tf import import_tf

__all__ = ["build_learning_rate", "build_optimizer", "at_learning_rate", "OPTIMIZER_KINDS", "SCHEDULE_KINDS"]


def _kinds(union: Any, field: str) -> tuple[str, ...]:
    members = typing.get_args(typing.get_args(union)[0])
    return tuple(typing.get_args(member.model_fields[field].annotation)[0] for member in members)


OPTIMIZER_KINDS = _kinds(OptimizerParams, "kind")
SCHEDULE_KINDS = _kinds(ScheduleParams, "schedule")

# tf_keras class of each optimizer and its arguments besides the learning rate and clipping (the params'
# fields of the same names)
_OPTIMIZERS: dict[type, tuple[str, tuple[str, ...]]] = {
    SgdParams: ("SGD", ("momentum", "nesterov")),
    AdamParams: ("Adam", ("beta_1", "beta_2", "epsilon", "amsgrad")),
    AdamWParams: ("AdamW", ("weight_decay", "beta_1", "beta_2", "epsilon")),
    AdagradParams: ("Adagrad", ("initial_accumulator_value", "epsilon")),
    RmsPropParams: ("RMSprop", ("rho", "momentum", "centered", "epsilon")),
    NadamParams: ("Nadam", ("beta_1", "beta_2", "epsilon")),
    AdamaxParams: ("Adamax", ("beta_1", "beta_2", "epsilon")),
    AdadeltaParams: ("Adadelta", ("rho", "epsilon")),
    FtrlParams: ("Ftrl", ("learning_rate_power", "initial_accumulator_value", "l1_regularization_strength",
                          "l2_regularization_strength")),
    LionParams: ("Lion", ("beta_1", "beta_2")),
}


def build_learning_rate(value: LearningRateParams, scale: float = 1.0) -> tuple[Any, list[Any]]:
    """``(learning rate or schedule, callbacks)``; ``scale`` multiplies every rate (replica scaling)."""
    _, keras = import_tf()
    schedules = keras.optimizers.schedules
    if isinstance(value, (int, float)):
        return float(value) * scale, []
    if isinstance(value, ExponentialDecayParams):
        return schedules.ExponentialDecay(value.initial * scale, value.decay_steps, value.decay_rate,
                                          staircase=value.staircase), []
    if isinstance(value, CosineDecayParams):
        if value.warmup_steps:
            return schedules.CosineDecay(0.0, value.decay_steps, alpha=value.alpha,
                                         warmup_target=value.initial * scale, warmup_steps=value.warmup_steps), []
        return schedules.CosineDecay(value.initial * scale, value.decay_steps, alpha=value.alpha), []
    if isinstance(value, PiecewiseConstantParams):
        return schedules.PiecewiseConstantDecay(list(value.boundaries), [v * scale for v in value.values]), []
    if isinstance(value, ReduceOnPlateauParams):
        callback = keras.callbacks.ReduceLROnPlateau(monitor=value.monitor, factor=value.factor,
                                                     patience=value.patience, min_lr=value.min_learning_rate,
                                                     verbose=0)
        return value.initial * scale, [callback]
    raise TypeError(f"unknown learning-rate schedule {type(value).__name__}")


def build_optimizer(params: OptimizerParams, scale: float = 1.0) -> tuple[Any, list[Any]]:
    """``(tf_keras optimizer, callbacks)`` for the plan's optimizer params."""
    _, keras = import_tf()
    learning_rate, callbacks = build_learning_rate(params.learning_rate, scale)
    common: dict[str, Any] = {"learning_rate": learning_rate}
    if params.clipnorm is not None:
        common["clipnorm"] = params.clipnorm
    if params.clipvalue is not None:
        common["clipvalue"] = params.clipvalue
    class_name, arguments = _OPTIMIZERS[type(params)]
    optimizer = getattr(keras.optimizers, class_name)(**{name: getattr(params, name) for name in arguments}, **common)
    return optimizer, callbacks


def at_learning_rate(params: OptimizerParams, learning_rate: float) -> OptimizerParams:
    """The same optimizer at a constant rate (a fine-tuning phase or compression stage: the plan resolved it)."""
    return params.model_copy(update={"learning_rate": learning_rate})
