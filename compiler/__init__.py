"""tfspec.compiler: load → parse → resolve → validate → inputs → render → plan → write.

Functions from one type to the next; ``inputs`` is the one stage that reads files the spec names (their
content digests go into the plan). This package never imports TensorFlow, nor the user's code.
"""

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
