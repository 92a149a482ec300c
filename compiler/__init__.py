"""tfspec.compiler: load → parse → resolve → validate → inputs → render → plan → write.

Functions from one type to the next; ``inputs`` is the one stage that reads files the spec names (their
content digests go into the plan). This package never imports TensorFlow, nor the user's code.
"""

from .inputs import InputDigests, gather_inputs
from .pipeline import PLAN_FILE, CompileResult, compile_document, compile_spec, resolve_document
from .plan import Plan, Step, build_plan
from .resolve import ResolvedSpec
from .write import MANIFEST, diff_tree, write_tree

__all__ = [
    "MANIFEST",
    "PLAN_FILE",
    "CompileResult",
    "InputDigests",
    "Plan",
    "ResolvedSpec",
    "Step",
    "build_plan",
    "compile_document",
    "compile_spec",
    "diff_tree",
    "gather_inputs",
    "resolve_document",
    "write_tree",
]
