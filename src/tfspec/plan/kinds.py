"""The step-kind table: every step kind the plan may hold, once, with its params model (the compiler, the
runtime, the report and the validator read it from here).

The compression stages' kinds come from :mod:`.stages`; :func:`register_step_kind` adds another kind (a
test's toy technique).
"""

from typing import Any

from pydantic import BaseModel, TypeAdapter

from .common import StepKind
from .params import (BundleParams, CompareParams, DataParams, EvaluateParams, ExportParams, ReleasedParams,
                     RenderParams, TfliteParams, TrainParams, UploadParams, VerifyParams, WarmupParams)
from .stages import STAGE_KINDS

__all__ = ["StepKind", "STEP_KIND_TABLE", "STEP_KINDS", "MODEL_STEP_KINDS", "COMPRESSION_STEP_KINDS",
           "STAGE_STEP_KIND", "step_kind", "register_step_kind", "parse_params"]


def _table() -> dict[str, StepKind]:
    kinds = (StepKind("data", DataParams), StepKind("train", TrainParams, makes_model=True), *STAGE_KINDS,
             StepKind("evaluate", EvaluateParams), StepKind("export", ExportParams), StepKind("warmup", WarmupParams),
             StepKind("tflite", TfliteParams), StepKind("verify", VerifyParams), StepKind("bundle", BundleParams),
             StepKind("upload", UploadParams), StepKind("released", ReleasedParams),
             StepKind("compare", CompareParams), StepKind("render", RenderParams, runs=False))
    return {kind.name: kind for kind in kinds}


STEP_KIND_TABLE: dict[str, StepKind] = _table()

STEP_KINDS: tuple[str, ...] = tuple(STEP_KIND_TABLE)
MODEL_STEP_KINDS: tuple[str, ...] = tuple(k.name for k in STEP_KIND_TABLE.values() if k.makes_model)
COMPRESSION_STEP_KINDS: tuple[str, ...] = tuple(k.name for k in STEP_KIND_TABLE.values() if k.stage is not None)
# compression[].kind → step kind
STAGE_STEP_KIND: dict[str, str] = {k.stage: k.name for k in STEP_KIND_TABLE.values() if k.stage is not None}


def step_kind(name: str) -> StepKind:
    """The table entry of ``name``; ``KeyError`` for a kind this tfspec does not know."""
    return STEP_KIND_TABLE[name]


def register_step_kind(kind: StepKind) -> StepKind:
    """Add ``kind`` to the table (registering a name twice is a mistake and raises)."""
    if kind.name in STEP_KIND_TABLE and STEP_KIND_TABLE[kind.name] is not kind:
        raise ValueError(f"step kind {kind.name!r} is registered twice")
    STEP_KIND_TABLE[kind.name] = kind
    return kind


_ADAPTERS: dict[int, TypeAdapter[Any]] = {}  # by id of the params type


def parse_params(kind: str, value: Any) -> BaseModel:
    """``value`` (a params model or its JSON form) validated as the params of ``kind``."""
    if kind not in STEP_KIND_TABLE:
        raise ValueError(f"unknown step kind {kind!r}")
    params = STEP_KIND_TABLE[kind].params
    adapter = _ADAPTERS.get(id(params))
    if adapter is None:
        adapter = _ADAPTERS[id(params)] = TypeAdapter(params)
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json")
    return adapter.validate_python(value)
