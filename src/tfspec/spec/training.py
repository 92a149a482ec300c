"""The ``training`` section: optimizer, learning-rate schedule, loss, stopping rules and distribution."""

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import (
    FiniteFloat, NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability, Seed, StrictBool,
    StrictInt, StrictModel,
)

__all__ = [
    "ExponentialDecay",
    "CosineDecay",
    "PiecewiseConstant",
    "ReduceOnPlateau",
    "LearningRate",
    "Sgd",
    "Adam",
    "AdamW",
    "Adagrad",
    "RmsProp",
    "Optimizer",
    "LossName",
    "Loss",
    "EarlyStopping",
    "Distribution",
    "Training",
]



class ExponentialDecay(StrictModel):
    """``initial * decay_rate ** (step / decay_steps)``."""

    schedule: Literal["exponential_decay"]
    """Schedule kind."""
    initial: PositiveFloat
    """Learning rate at step 0."""
    decay_steps: PositiveInt
    """Steps per decay period."""
    decay_rate: Annotated[FiniteFloat, Field(gt=0.0, le=1.0)]
    """Factor applied every ``decay_steps``."""
    staircase: StrictBool = False
    """Decay in discrete steps."""


class CosineDecay(StrictModel):
    """Cosine decay from ``initial`` to ``alpha * initial`` over ``decay_steps``, with optional warm-up."""

    schedule: Literal["cosine_decay"]
    """Schedule kind."""
    initial: PositiveFloat
    """Learning rate after warm-up."""
    decay_steps: PositiveInt
    """Steps of the decay."""
    alpha: Probability = 0.0
    """Final learning rate as a fraction of ``initial``."""
    warmup_steps: NonNegativeInt = 0
    """Linear warm-up steps before the decay."""


class PiecewiseConstant(StrictModel):
    """Constant learning rates between step boundaries."""

    schedule: Literal["piecewise_constant"]
    """Schedule kind."""
    boundaries: Annotated[list[PositiveInt], Field(min_length=1)]
    """Increasing step boundaries."""
    values: Annotated[list[PositiveFloat], Field(min_length=2)]
    """Learning rates; one more than there are boundaries."""

    @model_validator(mode="after")
    def _one_more_value_than_boundaries(self) -> "PiecewiseConstant":
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(
                f"values needs {len(self.boundaries) + 1} entries for {len(self.boundaries)} boundaries, "
                f"got {len(self.values)}"
            )
        if self.boundaries != sorted(set(self.boundaries)):
            raise ValueError("boundaries must be strictly increasing")
        return self


class ReduceOnPlateau(StrictModel):
    """Start at ``initial`` and multiply by ``factor`` when ``monitor`` stops improving (a callback)."""

    schedule: Literal["reduce_on_plateau"]
    """Schedule kind."""
    initial: PositiveFloat
    """Starting learning rate."""
    factor: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.5
    """Reduction factor."""
    patience: Annotated[StrictInt, Field(ge=1, le=100_000)] = 3
    """Epochs without improvement before reducing."""
    min_learning_rate: NonNegativeFloat = 1e-6
    """Lower bound."""
    monitor: Literal["val_loss", "val_accuracy", "loss", "accuracy"] = "val_loss"
    """Metric watched."""


LearningRate = (
    PositiveFloat
    | Annotated[
        ExponentialDecay | CosineDecay | PiecewiseConstant | ReduceOnPlateau,
        Field(discriminator="schedule"),
    ]
)


class _OptimizerBase(StrictModel):
    learning_rate: LearningRate = 1e-3
    """A constant rate, or a schedule (``exponential_decay``, ``cosine_decay``, ``piecewise_constant``, ``reduce_on_plateau``)."""
    clipnorm: PositiveFloat | None = None
    """Clip each gradient to this L2 norm."""
    clipvalue: PositiveFloat | None = None
    """Clip each gradient element to [-clipvalue, clipvalue]."""


class Sgd(_OptimizerBase):
    """Stochastic gradient descent with optional (Nesterov) momentum."""

    kind: Literal["sgd"]
    """Optimizer kind."""
    momentum: Annotated[FiniteFloat, Field(ge=0.0, lt=1.0)] = 0.0
    """Momentum factor (0 disables momentum)."""
    nesterov: StrictBool = False
    """Use Nesterov momentum."""


class Adam(_OptimizerBase):
    """Adam."""

    kind: Literal["adam"]
    """Optimizer kind."""
    beta_1: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.9
    """First-moment decay."""
    beta_2: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.999
    """Second-moment decay."""
    epsilon: PositiveFloat = 1e-7
    """Numerical epsilon."""
    amsgrad: StrictBool = False
    """Use the AMSGrad variant."""


class AdamW(_OptimizerBase):
    """Adam with decoupled weight decay."""

    kind: Literal["adamw"]
    """Optimizer kind."""
    weight_decay: NonNegativeFloat = 0.004
    """Decoupled weight decay."""
    beta_1: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.9
    """First-moment decay."""
    beta_2: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.999
    """Second-moment decay."""
    epsilon: PositiveFloat = 1e-7
    """Numerical epsilon."""


class Adagrad(_OptimizerBase):
    """Adagrad."""

    kind: Literal["adagrad"]
    """Optimizer kind."""
    initial_accumulator_value: NonNegativeFloat = 0.1
    """Starting accumulator value."""
    epsilon: PositiveFloat = 1e-7
    """Numerical epsilon."""


class RmsProp(_OptimizerBase):
    """RMSprop."""

    kind: Literal["rmsprop"]
    """Optimizer kind."""
    rho: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.9
    """Discounting factor of the gradient history."""
    momentum: Annotated[FiniteFloat, Field(ge=0.0, lt=1.0)] = 0.0
    """Momentum factor (0 disables momentum)."""
    centered: StrictBool = False
    """Normalise by the estimated variance of the gradient."""
    epsilon: PositiveFloat = 1e-7
    """Numerical epsilon."""


class Nadam(_OptimizerBase):
    """Adam with Nesterov momentum."""

    kind: Literal["nadam"]
    """Optimizer kind."""
    beta_1: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.9
    """First-moment decay."""
    beta_2: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.999
    """Second-moment decay."""
    epsilon: PositiveFloat = 1e-7
    """Numerical epsilon."""


class Adamax(_OptimizerBase):
    """Adam on the infinity norm."""

    kind: Literal["adamax"]
    """Optimizer kind."""
    beta_1: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.9
    """First-moment decay."""
    beta_2: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.999
    """Exponentially weighted infinity-norm decay."""
    epsilon: PositiveFloat = 1e-7
    """Numerical epsilon."""


class Adadelta(_OptimizerBase):
    """Adadelta."""

    kind: Literal["adadelta"]
    """Optimizer kind."""
    rho: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.95
    """Decay rate."""
    epsilon: PositiveFloat = 1e-7
    """Numerical epsilon."""


class Ftrl(_OptimizerBase):
    """Follow-the-regularized-leader (wide, sparse models)."""

    kind: Literal["ftrl"]
    """Optimizer kind."""
    learning_rate_power: Annotated[FiniteFloat, Field(ge=-10.0, le=0.0)] = -0.5
    """Power of the learning-rate decrease."""
    initial_accumulator_value: NonNegativeFloat = 0.1
    """Starting accumulator value."""
    l1_regularization_strength: NonNegativeFloat = 0.0
    """L1 strength."""
    l2_regularization_strength: NonNegativeFloat = 0.0
    """L2 strength."""

    @model_validator(mode="after")
    def _no_warmup(self) -> "Ftrl":
        if getattr(self.learning_rate, "warmup_steps", 0):
            raise ValueError("ftrl divides by the learning rate: a warm-up from 0 makes the first step NaN "
                             "(use warmup_steps: 0 or another optimizer)")
        return self


class Lion(_OptimizerBase):
    """Lion (sign-based momentum); use a 3-10× smaller rate than Adam."""

    kind: Literal["lion"]
    """Optimizer kind."""
    beta_1: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.9
    """Update interpolation."""
    beta_2: Annotated[FiniteFloat, Field(gt=0.0, lt=1.0)] = 0.99
    """Momentum decay."""


Optimizer = Annotated[Sgd | Adam | AdamW | Adagrad | RmsProp | Nadam | Adamax | Adadelta | Ftrl | Lion,
                      Field(discriminator="kind")]

LossName = Literal[
    "sparse_categorical_crossentropy",
    "categorical_crossentropy",
    "binary_crossentropy",
    "mean_squared_error",
    "mean_absolute_error",
    "huber",
]


class Loss(StrictModel):
    """A loss with options."""

    kind: LossName
    """Loss function (Keras name)."""
    from_logits: StrictBool = False
    """The model outputs logits (final layer without softmax/sigmoid)."""
    label_smoothing: Annotated[FiniteFloat, Field(ge=0.0, lt=1.0)] = 0.0
    """Label smoothing (categorical and binary crossentropy only)."""


class EarlyStopping(StrictModel):
    """Stop training when a monitored metric stops improving."""

    monitor: Literal["val_loss", "val_accuracy", "loss", "accuracy"] = "val_loss"
    """Metric watched; training stops when it has not improved for ``patience`` epochs."""
    patience: Annotated[StrictInt, Field(ge=0, le=100_000)] = 5
    """Epochs without improvement before stopping."""
    min_delta: NonNegativeFloat = 0.0
    """Smallest change counted as an improvement."""
    restore_best_weights: StrictBool = True
    """Restore the weights of the best epoch when stopping."""


DeviceName = Annotated[str, Field(pattern=r"^(CPU|GPU):[0-9]{1,2}$")]


class Distribution(StrictModel):
    """How training is spread over devices and hosts (``tf.distribute``)."""

    kind: Literal["default", "mirrored", "multi_worker_mirrored"] = "default"
    """``default`` (one device), ``mirrored`` (all local devices) or ``multi_worker_mirrored`` (TF_CONFIG cluster)."""
    devices: list[DeviceName] | None = None
    """``mirrored`` only: the devices to mirror over; every visible GPU (or the CPU) when omitted."""
    workers: PositiveInt | None = None
    """``multi_worker_mirrored`` only: number of workers, when no gpu_cluster target says it."""
    scale_learning_rate: StrictBool = False
    """Multiply the learning rate by the number of replicas (the global batch grows with them)."""
    communication: Literal["auto", "ring", "nccl"] = "auto"
    """Collective implementation for ``multi_worker_mirrored``."""


class Training(StrictModel):
    """How the model is trained."""

    optimizer: Optimizer = Adam(kind="adam")
    """Optimizer: ``sgd``, ``adam``, ``adamw``, ``adagrad``, ``rmsprop``, ``nadam``, ``adamax``, ``adadelta``,
    ``ftrl`` or ``lion``."""
    loss: LossName | Loss = "sparse_categorical_crossentropy"
    """Loss: a Keras name or ``{kind, from_logits, label_smoothing}``."""
    metrics: list[Literal["accuracy", "sparse_top_k_categorical_accuracy", "auc", "precision", "recall", "mae"]] = [
        "accuracy"
    ]
    """Metrics tracked during training (the first one is the gates' quality metric)."""
    epochs: Annotated[StrictInt, Field(ge=1, le=100000)] = 10
    """Maximum number of epochs."""
    batch_size: Annotated[StrictInt, Field(ge=1, le=1 << 20)] = 32
    """Batch size per replica."""
    early_stopping: EarlyStopping | None = None
    """Early stopping; off when omitted."""
    distribution: Distribution = Distribution()
    """``tf.distribute`` strategy: ``default`` (one device), ``mirrored`` (the GPUs of one host) or
    ``multi_worker_mirrored`` (several hosts, with TF_CONFIG)."""
    seed: Seed = 42
    """Seed for weight initialisation, dropout and shuffling."""
    shuffle_buffer: PositiveInt = 10000
    """Shuffle buffer size of the training dataset."""
    checkpoint_every_epoch: StrictBool = True
    """Keep a ``BackupAndRestore`` checkpoint so a killed run resumes from the last finished epoch."""
    naive_baseline: Literal["fail", "warn"] = "fail"
    """What a model no better than one that ignores its input does to the run. The naive baseline always
    predicts the training split's majority class (classifiers) or the training labels' mean (regression),
    measured on the test split. A trained model, compression stage or target artifact at or below it
    (accuracy not above it, mae not below it) fails the run with ``fail`` (exit 1, ``passed: false`` in
    ``report.json``, a ``beats_naive_baseline`` gate missed); ``warn`` accepts it with a warning (a smoke
    test on random data). Models just above it are warned about either way (the chance-level warning)."""

    @property
    def loss_spec(self) -> Loss:
        """The loss as a :class:`Loss` whatever form the spec used."""
        return self.loss if isinstance(self.loss, Loss) else Loss(kind=self.loss)
