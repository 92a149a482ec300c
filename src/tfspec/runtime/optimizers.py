"""Optimizers and learning-rate schedules from the plan's ``training.optimizer`` params.

A schedule is a ``LearningRateSchedule`` (exponential, cosine with optional linear warm-up, piecewise
constant), except ``reduce_on_plateau``, which is a constant rate plus a ``ReduceLROnPlateau`` callback.
"""

from __future__ import annotations

from typing import Any

from .tf import import_tf

__all__ = ["build_learning_rate", "build_optimizer", "OPTIMIZER_KINDS", "SCHEDULE_KINDS"]

OPTIMIZER_KINDS = ("sgd", "adam", "adamw", "adagrad", "rmsprop", "nadam", "adamax", "adadelta", "ftrl", "lion")
# Optimizers built from the plan's params as they are: tf_keras class and the spec keys passed through.
_PASS_THROUGH = {
    "nadam": ("Nadam", ("beta_1", "beta_2", "epsilon")),
    "adamax": ("Adamax", ("beta_1", "beta_2", "epsilon")),
    "adadelta": ("Adadelta", ("rho", "epsilon")),
    "ftrl": ("Ftrl", ("learning_rate_power", "initial_accumulator_value", "l1_regularization_strength",
                      "l2_regularization_strength")),
    "lion": ("Lion", ("beta_1", "beta_2")),
}
SCHEDULE_KINDS = ("exponential_decay", "cosine_decay", "piecewise_constant", "reduce_on_plateau")


def build_learning_rate(value: float | dict[str, Any], scale: float = 1.0) -> tuple[Any, list[Any]]:
    """``(learning rate or schedule, callbacks)``; ``scale`` multiplies every rate (replica scaling)."""
    _, keras = import_tf()
    schedules = keras.optimizers.schedules
    if isinstance(value, (int, float)):
        return float(value) * scale, []
    kind = value["schedule"]
    if kind == "exponential_decay":
        return schedules.ExponentialDecay(value["initial"] * scale, value["decay_steps"], value["decay_rate"],
                                          staircase=value.get("staircase", False)), []
    if kind == "cosine_decay":
        warmup = value.get("warmup_steps", 0)
        if warmup:
            return schedules.CosineDecay(0.0, value["decay_steps"], alpha=value.get("alpha", 0.0),
                                         warmup_target=value["initial"] * scale, warmup_steps=warmup), []
        return schedules.CosineDecay(value["initial"] * scale, value["decay_steps"], alpha=value.get("alpha", 0.0)), []
    if kind == "piecewise_constant":
        return schedules.PiecewiseConstantDecay(list(value["boundaries"]), [v * scale for v in value["values"]]), []
    if kind == "reduce_on_plateau":
        callback = keras.callbacks.ReduceLROnPlateau(monitor=value.get("monitor", "val_loss"),
                                                     factor=value.get("factor", 0.5),
                                                     patience=value.get("patience", 3),
                                                     min_lr=value.get("min_learning_rate", 1e-6), verbose=0)
        return value["initial"] * scale, [callback]
    raise ValueError(f"unknown learning-rate schedule {kind!r}")


def build_optimizer(params: dict[str, Any], scale: float = 1.0) -> tuple[Any, list[Any]]:
    """``(tf_keras optimizer, callbacks)`` for ``training.optimizer`` params."""
    _, keras = import_tf()
    opt = keras.optimizers
    learning_rate, callbacks = build_learning_rate(params.get("learning_rate", 1e-3), scale)
    common: dict[str, Any] = {"learning_rate": learning_rate}
    for clip in ("clipnorm", "clipvalue"):
        if params.get(clip) is not None:
            common[clip] = params[clip]
    kind = params["kind"]
    if kind == "sgd":
        optimizer = opt.SGD(momentum=params.get("momentum", 0.0), nesterov=params.get("nesterov", False), **common)
    elif kind == "adam":
        optimizer = opt.Adam(beta_1=params.get("beta_1", 0.9), beta_2=params.get("beta_2", 0.999),
                             epsilon=params.get("epsilon", 1e-7), amsgrad=params.get("amsgrad", False), **common)
    elif kind == "adamw":
        optimizer = opt.AdamW(weight_decay=params.get("weight_decay", 0.004), beta_1=params.get("beta_1", 0.9),
                              beta_2=params.get("beta_2", 0.999), epsilon=params.get("epsilon", 1e-7), **common)
    elif kind == "adagrad":
        optimizer = opt.Adagrad(initial_accumulator_value=params.get("initial_accumulator_value", 0.1),
                                epsilon=params.get("epsilon", 1e-7), **common)
    elif kind == "rmsprop":
        optimizer = opt.RMSprop(rho=params.get("rho", 0.9), momentum=params.get("momentum", 0.0),
                                centered=params.get("centered", False), epsilon=params.get("epsilon", 1e-7), **common)
    elif kind in _PASS_THROUGH:
        class_name, keys = _PASS_THROUGH[kind]
        optimizer = getattr(opt, class_name)(**{k: params[k] for k in keys if k in params}, **common)
    else:
        raise ValueError(f"unknown optimizer {kind!r}")
    return optimizer, callbacks
