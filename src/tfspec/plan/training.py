"""How a model is fitted, as the plan holds it: optimizer, learning-rate schedule, loss, early stopping,
distribution and augmentation, every field decided by the compiler (``training`` and ``data.augmentation``
of the resolved spec).

The runtime builds tf_keras objects from these and restates no default: a field the spec left out is here
with the value the compiler chose.
"""

from typing import Annotated, Literal, Union

from pydantic import Field

from .common import Params

__all__ = [
    "ExponentialDecayParams",
    "CosineDecayParams",
    "PiecewiseConstantParams",
    "ReduceOnPlateauParams",
    "ScheduleParams",
    "LearningRateParams",
    "SgdParams",
    "AdamParams",
    "AdamWParams",
    "AdagradParams",
    "RmsPropParams",
    "NadamParams",
    "AdamaxParams",
    "AdadeltaParams",
    "FtrlParams",
    "LionParams",
    "OptimizerParams",
    "LossParams",
    "EarlyStoppingParams",
    "DistributionParams",
    "AugmentationParams",
    "FitParams",
    "QualityMetric",
]

QualityMetric = Literal["accuracy", "mae"]
"""The one metric every stage and artifact is measured and gated with (``mae`` for a regression loss)."""


class ExponentialDecayParams(Params):
    schedule: Literal["exponential_decay"]
    initial: float
    decay_steps: int
    decay_rate: float
    staircase: bool


class CosineDecayParams(Params):
    schedule: Literal["cosine_decay"]
    initial: float
    decay_steps: int
    alpha: float
    warmup_steps: int
    """0: no warm-up (the decay starts at ``initial``); otherwise a linear warm-up from 0 to ``initial``."""


class PiecewiseConstantParams(Params):
    schedule: Literal["piecewise_constant"]
    boundaries: list[int]
    values: list[float]


class ReduceOnPlateauParams(Params):
    """A constant rate lowered by a ``ReduceLROnPlateau`` callback."""

    schedule: Literal["reduce_on_plateau"]
    initial: float
    factor: float
    patience: int
    min_learning_rate: float
    monitor: str


ScheduleParams = Annotated[
    Union[ExponentialDecayParams, CosineDecayParams, PiecewiseConstantParams, ReduceOnPlateauParams],
    Field(discriminator="schedule"),
]
LearningRateParams = Union[float, ScheduleParams]
"""A constant rate, or a schedule."""


class _OptimizerParams(Params):
    learning_rate: LearningRateParams
    clipnorm: float | None
    clipvalue: float | None


class SgdParams(_OptimizerParams):
    kind: Literal["sgd"]
    momentum: float
    nesterov: bool


class AdamParams(_OptimizerParams):
    kind: Literal["adam"]
    beta_1: float
    beta_2: float
    epsilon: float
    amsgrad: bool


class AdamWParams(_OptimizerParams):
    kind: Literal["adamw"]
    weight_decay: float
    beta_1: float
    beta_2: float
    epsilon: float


class AdagradParams(_OptimizerParams):
    kind: Literal["adagrad"]
    initial_accumulator_value: float
    epsilon: float


class RmsPropParams(_OptimizerParams):
    kind: Literal["rmsprop"]
    rho: float
    momentum: float
    centered: bool
    epsilon: float


class NadamParams(_OptimizerParams):
    kind: Literal["nadam"]
    beta_1: float
    beta_2: float
    epsilon: float


class AdamaxParams(_OptimizerParams):
    kind: Literal["adamax"]
    beta_1: float
    beta_2: float
    epsilon: float


class AdadeltaParams(_OptimizerParams):
    kind: Literal["adadelta"]
    rho: float
    epsilon: float


class FtrlParams(_OptimizerParams):
    kind: Literal["ftrl"]
    learning_rate_power: float
    initial_accumulator_value: float
    l1_regularization_strength: float
    l2_regularization_strength: float


class LionParams(_OptimizerParams):
    kind: Literal["lion"]
    beta_1: float
    beta_2: float


OptimizerParams = Annotated[
    Union[SgdParams, AdamParams, AdamWParams, AdagradParams, RmsPropParams, NadamParams, AdamaxParams,
          AdadeltaParams, FtrlParams, LionParams],
    Field(discriminator="kind"),
]


class LossParams(Params):
    kind: Literal["sparse_categorical_crossentropy", "categorical_crossentropy", "binary_crossentropy",
                  "mean_squared_error", "mean_absolute_error", "huber"]
    from_logits: bool
    label_smoothing: float


class EarlyStoppingParams(Params):
    monitor: str
    """The metric as the spec names it (``val_loss``); without a validation split the runtime watches the
    training metric of the same name (``loss``)."""
    patience: int
    min_delta: float
    restore_best_weights: bool


class DistributionParams(Params):
    kind: Literal["default", "mirrored", "multi_worker_mirrored"]
    devices: list[str] | None
    """``mirrored``: the devices to mirror over; None: every visible GPU (or the CPU)."""
    workers: int | None
    """``multi_worker_mirrored``: the workers the spec expects (None: whatever the cluster has)."""
    scale_learning_rate: bool
    communication: Literal["auto", "ring", "nccl"]


class AugmentationParams(Params):
    """Random image augmentation of the training batches (Keras preprocessing layers); None: that one is off."""

    random_flip: Literal["horizontal", "vertical", "horizontal_and_vertical"] | None
    random_rotation: float | None
    random_zoom: float | None
    random_translation: float | None
    random_contrast: float | None


class FitParams(Params):
    """What compiling and fitting a model needs (the train step and every fine-tuning compression stage)."""

    optimizer: OptimizerParams
    loss: LossParams
    metrics: list[str]
    """Keras metrics tracked during training; the first is the quality metric of model metrics."""
    batch_size: int
    """Per replica."""
    seed: int
    shuffle_buffer: int
    distribution: DistributionParams
    augmentation: AugmentationParams | None
    """``data.augmentation``, applied to training batches only; None: no augmentation."""
