"""tfspec.plan: the plan, the contract between the compiler and the runtime.

``plan.json`` is the complete, typed input of ``tfspec run``: the compiler writes it (``Plan.to_text``),
the runtime reads it (``Plan.from_json``) and nothing else of the spec. Imports only pydantic and the
standard library.
"""

from .kinds import (COMPRESSION_STEP_KINDS, MODEL_STEP_KINDS, STAGE_STEP_KIND, STEP_KIND_TABLE, STEP_KINDS, StepKind,
                    step_kind)
from .model import PLAN_SCHEMA_VERSION, Plan, PlanError, SpecInfo, Step, TargetInfo, canonical_json, fingerprint
from .params import *  # noqa: F403 (the params models are the contract)
from .params import __all__ as _params_all

PLAN_FILE = "plan.json"

__all__ = [
    "COMPRESSION_STEP_KINDS",
    "MODEL_STEP_KINDS",
    "PLAN_FILE",
    "PLAN_SCHEMA_VERSION",
    "STAGE_STEP_KIND",
    "STEP_KINDS",
    "STEP_KIND_TABLE",
    "Plan",
    "PlanError",
    "SpecInfo",
    "TargetInfo",
    "Step",
    "StepKind",
    "canonical_json",
    "fingerprint",
    "step_kind",
    *_params_all,
]
