"""The compression-technique registry: one :class:`Technique` per ``compression[].kind``, declared in that
technique's module: its plan params, its step's inputs and outputs, and its place in the ordering rules (as
data). ``compiler/plan.py`` asks the registry and names no technique."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from tfspec.plan import Params
from tfspec.base.errors import Diagnostic
from tfspec.spec.model import FunctionalModel, SequentialModel

from ..resolve import ResolvedSpec

__all__ = ["Technique", "TECHNIQUES", "NotAfter", "Once", "Needs", "Check", "Checks", "StageRule", "StagePlan", "MODEL_OUTPUTS",
           "previous_model_and_data", "register", "technique", "stage_model_layers"]

MODEL_OUTPUTS: tuple[str, ...] = ("model.keras", "history.json", "metrics.json")
"""What a model step writes into its cache entry (the train step's and most stages')."""

Seen = dict[str, int]  # stage kind → index of its first stage so far


@dataclasses.dataclass(frozen=True)
class NotAfter:
    """This stage may not follow a stage of any of ``kinds`` (``unless`` the stage says how it keeps their effect)."""

    kinds: tuple[str, ...]
    message: str
    hint: str
    key: str = "kind"
    unless: Callable[[Any], bool] | None = None

    def check(self, r: ResolvedSpec, index: int, stage: Any, seen: Seen) -> Diagnostic | None:
        if any(k in seen for k in self.kinds) and not (self.unless and self.unless(stage)):
            return r.diagnostic(("compression", index, self.key), self.message, self.hint)
        return None


@dataclasses.dataclass(frozen=True)
class Once:
    """At most one stage of this kind (``{first}`` in the hint is the index of the first)."""

    message: str
    hint: str

    def check(self, r: ResolvedSpec, index: int, stage: Any, seen: Seen) -> Diagnostic | None:
        if stage.kind in seen:
            return r.diagnostic(("compression", index, "kind"), self.message, self.hint.format(first=seen[stage.kind]))
        return None


@dataclasses.dataclass(frozen=True)
class Needs:
    """A setting of this stage (``when`` true) that needs an earlier stage of kind ``earlier``."""

    when: Callable[[Any], bool]
    earlier: str
    key: str
    message: str
    hint: str

    def check(self, r: ResolvedSpec, index: int, stage: Any, seen: Seen) -> Diagnostic | None:
        if self.when(stage) and self.earlier not in seen:
            return r.diagnostic(("compression", index, self.key), self.message, self.hint)
        return None


@dataclasses.dataclass(frozen=True)
class Check:
    """Any other rule of one stage against the stages before it."""

    function: Callable[[ResolvedSpec, int, Any, Seen], Diagnostic | None]

    def check(self, r: ResolvedSpec, index: int, stage: Any, seen: Seen) -> Diagnostic | None:
        return self.function(r, index, stage, seen)


@dataclasses.dataclass(frozen=True)
class Checks:
    """A rule of the stage alone (its settings against the rest of the spec), giving any number of problems."""

    function: Callable[[ResolvedSpec, int, Any], list[Diagnostic]]

    def check(self, r: ResolvedSpec, index: int, stage: Any, seen: Seen) -> list[Diagnostic]:
        return self.function(r, index, stage)


StageRule = NotAfter | Once | Needs | Check | Checks


@dataclasses.dataclass(frozen=True)
class StagePlan:
    """The steps a stage's step may read, by id: the model step before it, the train step and the data step."""

    previous_model: str
    train: str
    data: str


def previous_model_and_data(steps: StagePlan) -> list[str]:
    """A stage works on the model of the step before it, with the data."""
    return [steps.previous_model, steps.data]


@dataclasses.dataclass(frozen=True)
class Technique:
    """What one compression technique owns in the compiler.

    Attributes:
        kind: ``compression[].kind``.
        step_kind: the plan step kind that runs it (``tfspec.plan.stages``; runtime module of that name).
        params: ``(resolved, index, stage, common, digests) → params``; ``common`` holds the fields every
            stage's params share (:class:`tfspec.plan.StageParams`: index, fit, the resolved learning rate,
            tensors), ``digests`` the gathered inputs.
        rules: its rules, checked in this order: against earlier stages (ordering) and of the stage alone.
        inputs: ``(StagePlan) → step ids`` its step reads (the model before it and the data by default).
        outputs: what its step writes into its cache entry.
        quantization_aware: its model carries learned quantization ranges (the tflite step converts with them).
        new_model: ``(stage) → layers`` of the new model it leaves to the stages after it (distill: its
            student); None: they work on the model it was given.
    """

    kind: str
    step_kind: str
    params: Callable[..., Params]
    rules: tuple[StageRule, ...] = ()
    inputs: Callable[[StagePlan], list[str]] = previous_model_and_data
    outputs: tuple[str, ...] = MODEL_OUTPUTS
    quantization_aware: bool = False
    new_model: Callable[[Any], list[Any] | None] | None = None


TECHNIQUES: dict[str, Technique] = {}


def register(entry: Technique) -> Technique:
    if entry.kind in TECHNIQUES and TECHNIQUES[entry.kind] is not entry:
        raise ValueError(f"compression technique {entry.kind!r} is registered twice")
    TECHNIQUES[entry.kind] = entry
    return entry


def technique(kind: str) -> Technique:
    try:
        return TECHNIQUES[kind]
    except KeyError:
        raise LookupError(f"no module registered the compression technique {kind!r} "
                          f"(registered: {', '.join(sorted(TECHNIQUES))})") from None


def stage_model_layers(r: ResolvedSpec, index: int) -> tuple[list[Any], tuple[str | int, ...]]:
    """The layers of the model stage ``index`` works on, and the key path declaring them: the spec model's
    (none for a builder, SavedModel or application), or the new model of the last stage before it that made one."""
    model = r.spec.model
    layers: list[Any] = list(model.layers) if isinstance(model, (SequentialModel, FunctionalModel)) else []
    where: tuple[str | int, ...] = ("model", "layers")
    for earlier, stage in enumerate(r.spec.compression[:index]):
        made = technique(stage.kind).new_model
        new_layers = made(stage) if made is not None else None
        if new_layers is not None:
            layers, where = list(new_layers), ("compression", earlier, "student")
    return layers, where
