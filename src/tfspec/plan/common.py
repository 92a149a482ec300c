"""What every plan params model shares: the frozen, strict base class, a named model input, and the entry
of a step kind in the step-kind table (:mod:`.kinds`)."""

import dataclasses
from typing import Any

from pydantic import BaseModel, ConfigDict, JsonValue

__all__ = ["Params", "InputParams", "JsonValue", "StepKind"]


class Params(BaseModel):
    """Base of every params model: frozen, unknown keys rejected and no field left to a default (a plan from
    another tfspec fails loudly; the runtime never fills in a value the compiler did not decide).

    Validators are built on first use (``defer_build``): a build needs only the kinds its plan has."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class InputParams(Params):
    """One named model input of a model with several (``model.inputs``)."""

    name: str
    shape: list[int]
    dtype: str


@dataclasses.dataclass(frozen=True)
class StepKind:
    """One step kind.

    Attributes:
        name: the kind (``prune``); the runtime module is ``tfspec.runtime.steps.<name>``.
        params: its params model (or a discriminated union of models, as ``verify``'s).
        makes_model: its output is a Keras model (``model.keras`` / ``model.h5``).
        stage: the ``compression[].kind`` it runs, for compression steps (``quantization_aware`` for ``qat``).
        runs: False for ``render``: its files come from ``tfspec build``, nothing runs.
    """

    name: str
    params: Any
    makes_model: bool = False
    stage: str | None = None
    runs: bool = True
