"""tfspec.compiler: load → standards → parse → resolve → validate → inputs → render → policies → plan → write.

Functions from one type to the next; ``inputs`` is the one stage that reads files the spec names (their
content digests go into the plan). This package never imports TensorFlow, nor the user's code.
"""

from typing import TYPE_CHECKING

from tfspec.base.lazy import lazy_attributes

# Imported on first use (PEP 562): importing one light module of this package (``versions``, ``naming``)
# does not build the spec models (see the start-up section of docs/benchmarks.md).
_LAZY: dict[str, str] = {
    "InputDigests": "inputs", "gather_inputs": "inputs",
    "PLAN_FILE": "pipeline", "CompileResult": "pipeline", "compile_document": "pipeline",
    "compile_spec": "pipeline", "resolve_document": "pipeline",
    "Plan": "plan", "Step": "plan", "build_plan": "plan",
    "ResolvedSpec": "resolve",
}

if TYPE_CHECKING:
    from .inputs import InputDigests, gather_inputs
    from .pipeline import PLAN_FILE, CompileResult, compile_document, compile_spec, resolve_document
    from .plan import Plan, Step, build_plan
    from .resolve import ResolvedSpec

__all__ = [
    "PLAN_FILE",
    "CompileResult",
    "InputDigests",
    "Plan",
    "ResolvedSpec",
    "Step",
    "build_plan",
    "compile_document",
    "compile_spec",
    "gather_inputs",
    "resolve_document",
]


__getattr__ = lazy_attributes(__name__, {name: f".{module}" for name, module in _LAZY.items()})
