"""The step-kind table: every step kind the plan may hold, once (the compiler, the runtime, the report and
the validator read it from here)."""

from __future__ import annotations

import dataclasses

__all__ = ["StepKind", "STEP_KIND_TABLE", "STEP_KINDS", "MODEL_STEP_KINDS", "COMPRESSION_STEP_KINDS",
           "STAGE_STEP_KIND", "step_kind"]


@dataclasses.dataclass(frozen=True)
class StepKind:
    """One step kind.

    Attributes:
        name: the kind (``prune``); the runtime module is ``tfspec.runtime.steps.<name>``.
        makes_model: its output is a Keras model (``model.keras`` / ``model.h5``).
        stage: the ``compression[].kind`` it runs, for compression steps (``quantization_aware`` for ``qat``).
        runs: False for ``render``: its files come from ``tfspec build``, nothing runs.
    """

    name: str
    makes_model: bool = False
    stage: str | None = None
    runs: bool = True


STEP_KIND_TABLE: tuple[StepKind, ...] = (
    StepKind("data"),
    StepKind("train", makes_model=True),
    StepKind("prune", makes_model=True, stage="prune"),
    StepKind("cluster", makes_model=True, stage="cluster"),
    StepKind("qat", makes_model=True, stage="quantization_aware"),
    StepKind("distill", makes_model=True, stage="distill"),
    StepKind("evaluate"),
    StepKind("export"),
    StepKind("warmup"),
    StepKind("tflite"),
    StepKind("verify"),
    StepKind("bundle"),
    StepKind("upload"),
    StepKind("released"),
    StepKind("compare"),
    StepKind("render", runs=False),
)

STEP_KINDS: tuple[str, ...] = tuple(k.name for k in STEP_KIND_TABLE)
MODEL_STEP_KINDS: tuple[str, ...] = tuple(k.name for k in STEP_KIND_TABLE if k.makes_model)
COMPRESSION_STEP_KINDS: tuple[str, ...] = tuple(k.name for k in STEP_KIND_TABLE if k.stage is not None)
# compression[].kind → step kind
STAGE_STEP_KIND: dict[str, str] = {k.stage: k.name for k in STEP_KIND_TABLE if k.stage is not None}


def step_kind(name: str) -> StepKind:
    """The table entry of ``name``; ``KeyError`` for a kind this tfspec does not know."""
    for kind in STEP_KIND_TABLE:
        if kind.name == name:
            return kind
    raise KeyError(name)
