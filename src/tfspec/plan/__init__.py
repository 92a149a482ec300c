"""tfspec.plan: the plan, the contract between the compiler and the runtime.

``plan.json`` is the complete, typed input of ``tfspec run``: the compiler writes it (``Plan.to_text``),
the runtime reads it (``Plan.from_json``) and nothing else of the spec. Imports only pydantic and the
standard library. The params of every step kind are typed all the way down: ``params`` (one model per step
kind), ``training`` (how a model is fitted), ``data`` (sources), ``architecture`` and ``layers`` (the model).
"""

from .kinds import (COMPRESSION_STEP_KINDS, MODEL_STEP_KINDS, STAGE_STEP_KIND, STEP_KIND_TABLE, STEP_KINDS, StepKind,
                    parse_params, register_step_kind, step_kind)
from .model import PLAN_SCHEMA_VERSION, Plan, PlanError, SpecInfo, Step, TargetInfo, canonical_json, fingerprint
from .architecture import *  # noqa: F403 (the params models are the contract)
from .architecture import __all__ as _architecture_all
from .data import *  # noqa: F403
from .data import __all__ as _data_all
from .layers import *  # noqa: F403
from .layers import __all__ as _layers_all
from .params import *  # noqa: F403
from .params import __all__ as _params_all
from .stages import *  # noqa: F403
from .stages import __all__ as _stages_all
from .training import *  # noqa: F403
from .training import __all__ as _training_all

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
    "register_step_kind",
    "parse_params",
    *_params_all,
    *_stages_all,
    *_training_all,
    *_data_all,
    *_layers_all,
    *_architecture_all,
]
