"""The ``search`` section: which spec values ``tfspec search`` explores, what it optimises, and for how long.

Each trial is the spec with the sampled values applied as an environment overlay, compiled and run like
``tfspec run -e searched``; the values are checked against the spec's own field types and rules by the
compiler (``compiler/search.py``), not here.
"""

from typing import Annotated, Literal

from pydantic import Field, StringConstraints, model_validator

from .base import MAX_FLOAT, MAX_INT, DnsLabel, FiniteFloat, PositiveFloat, PositiveInt, Seed, StrictBool, StrictInt, StrictModel

__all__ = [
    "KeyPathText",
    "IntRange",
    "FloatRange",
    "Choice",
    "SearchParameter",
    "OBJECTIVE_METRICS",
    "Minimize",
    "Pareto",
    "Objective",
    "Budget",
    "MedianPruner",
    "NoPruner",
    "Pruner",
    "Search",
]

# ``model.layers[0].units``: keys separated by dots, list items by [index].
KeyPathText = Annotated[
    str, StringConstraints(pattern=r"^[a-z_][a-z0-9_]*(\[[0-9]{1,4}\])*(\.[a-z_][a-z0-9_]*(\[[0-9]{1,4}\])*){0,15}$")
]

AnyInt = Annotated[StrictInt, Field(ge=-MAX_INT - 1, le=MAX_INT)]
AnyFloat = Annotated[FiniteFloat, Field(ge=-MAX_FLOAT, le=MAX_FLOAT)]
ChoiceValue = AnyInt | AnyFloat | StrictBool | Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z0-9_.:/-]{1,64}$")]


class IntRange(StrictModel):
    """Integers from ``low`` to ``high`` (both included)."""

    kind: Literal["int"]
    """Parameter kind."""
    path: KeyPathText
    """The spec value to vary, as a key path: ``model.layers[0].units``, ``training.batch_size``."""
    low: AnyInt
    """Smallest value tried."""
    high: AnyInt
    """Largest value tried."""
    step: PositiveInt = 1
    """Spacing of the values tried (not with ``log``)."""
    log: StrictBool = False
    """Sample on a log scale (layer widths, batch sizes)."""

    @model_validator(mode="after")
    def _ordered(self) -> "IntRange":
        if self.low >= self.high:
            raise ValueError("low must be below high")
        if self.log and (self.low < 1 or self.step != 1):
            raise ValueError("a log range needs low >= 1 and step 1")
        if self.step > self.high - self.low:
            raise ValueError(f"step {self.step} is larger than the range {self.low}..{self.high}: only {self.low} "
                             "would ever be tried")
        return self


class FloatRange(StrictModel):
    """Real numbers from ``low`` to ``high``."""

    kind: Literal["float"]
    """Parameter kind."""
    path: KeyPathText
    """The spec value to vary, as a key path: ``training.optimizer.learning_rate``, ``compression[0].target_sparsity``."""
    low: AnyFloat
    """Smallest value tried."""
    high: AnyFloat
    """Largest value tried."""
    log: StrictBool = False
    """Sample on a log scale (learning rates)."""

    @model_validator(mode="after")
    def _ordered(self) -> "FloatRange":
        if self.low >= self.high:
            raise ValueError("low must be below high")
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low > 0")
        return self


class Choice(StrictModel):
    """One of a list of values (numbers, booleans or names such as a quantization kind)."""

    kind: Literal["choice"]
    """Parameter kind."""
    path: KeyPathText
    """The spec value to vary, as a key path: ``targets[0].quantization.kind``, ``training.batch_size``."""
    choices: Annotated[list[ChoiceValue], Field(min_length=2, max_length=64)]
    """The values tried."""

    @model_validator(mode="after")
    def _distinct(self) -> "Choice":
        if len({repr(c) for c in self.choices}) != len(self.choices):
            raise ValueError("choices must be distinct")
        return self


SearchParameter = Annotated[IntRange | FloatRange | Choice, Field(discriminator="kind")]

OBJECTIVE_METRICS = ("accuracy", "accuracy_drop", "size_kb", "latency_ms_p95", "latency_ms_p50")
"""Metrics a search can optimise: measured per target by the ``verify`` step on the test split."""

ObjectiveMetric = Literal["accuracy", "accuracy_drop", "size_kb", "latency_ms_p95", "latency_ms_p50"]


class Minimize(StrictModel):
    """Minimise one metric of one target; trials that miss the target's gates do not count as best."""

    kind: Literal["minimize"]
    """Objective kind."""
    target: DnsLabel
    """Name of the target whose metric is minimised: one whose kind is measured on the test split
    (``tflite``, ``tf_serving``, ``kserve``)."""
    metric: ObjectiveMetric = "size_kb"
    """The metric minimised: ``size_kb``, ``latency_ms_p95``, ``latency_ms_p50``, ``accuracy_drop``
    (``accuracy`` is maximised)."""


class Pareto(StrictModel):
    """The Pareto front of several metrics of one target (accuracy up, size and latency down)."""

    kind: Literal["pareto"]
    """Objective kind."""
    target: DnsLabel
    """Name of the target measured: one whose kind is measured on the test split (``tflite``,
    ``tf_serving``, ``kserve``)."""
    metrics: Annotated[list[ObjectiveMetric], Field(min_length=2, max_length=3)] = [
        "accuracy", "size_kb", "latency_ms_p95"]
    """The metrics traded off; ``accuracy`` is maximised, the others minimised. The chosen configuration is
    the smallest (first size, then latency) front member that meets the gates."""

    @model_validator(mode="after")
    def _distinct(self) -> "Pareto":
        if len(set(self.metrics)) != len(self.metrics):
            raise ValueError("metrics must be distinct")
        return self


Objective = Annotated[Minimize | Pareto, Field(discriminator="kind")]


class Budget(StrictModel):
    """When the search stops: after ``trials`` finished trials in the study or ``minutes`` of this process."""

    trials: Annotated[StrictInt, Field(ge=1, le=10_000)] = 20
    """Trials in the study (those of earlier or parallel processes count too)."""
    minutes: PositiveFloat | None = None
    """Wall time of one ``tfspec search`` process; a trial running at the limit is finished."""


class MedianPruner(StrictModel):
    """Stop a trial whose validation accuracy after an epoch is below the median of earlier trials there."""

    kind: Literal["median"]
    """Pruner kind."""
    startup_trials: Annotated[StrictInt, Field(ge=0, le=1000)] = 3
    """Trials that always run to the end before any is pruned."""
    warmup_epochs: Annotated[StrictInt, Field(ge=0, le=10_000)] = 2
    """Epochs of a trial before it may be pruned."""


class NoPruner(StrictModel):
    """Every trial runs to the end."""

    kind: Literal["none"]
    """Pruner kind."""


Pruner = Annotated[MedianPruner | NoPruner, Field(discriminator="kind")]


class Search(StrictModel):
    """What ``tfspec search`` explores: spec values by key path, the objective and a budget.

    The chosen configuration is written as an environment overlay (``tfspec build -e searched``).
    """

    parameters: Annotated[list[SearchParameter], Field(min_length=1, max_length=32)]
    """The spec values varied, each a key path with an ``int`` or ``float`` range or a ``choice``."""
    objective: Objective
    """What is optimised: ``minimize`` one target metric subject to its gates, or a ``pareto`` front."""
    budget: Budget = Budget()
    """Trials and wall time."""
    sampler: Literal["tpe", "random", "nsga2"] = "tpe"
    """Optuna sampler: ``tpe`` (Bayesian), ``random``, or ``nsga2`` (genetic, for Pareto fronts)."""
    pruner: Pruner = MedianPruner(kind="median")
    """Stopping hopeless trials early from their per-epoch validation accuracy (``median`` or ``none``)."""
    seed: Seed | None = None
    """Sampler seed (trials of parallel processes still interleave)."""
