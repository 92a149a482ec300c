"""tfspec.compiler: load → parse → resolve → validate → plan → render → write.

Pure functions, one type to the next. This package never imports TensorFlow.
"""

from .pipeline import PLAN_FILE, CompileResult, compile_document, compile_spec, resolve_document
from .plan import Plan, Step, build_plan
from .resolve import ResolvedSpec
from .write import MANIFEST, diff_tree, write_tree

__all__ = [
    "MANIFEST",
    "PLAN_FILE",
    "CompileResult",
    "Plan",
    "ResolvedSpec",
    "Step",
    "build_plan",
    "compile_document",
    "compile_spec",
    "diff_tree",
    "resolve_document",
    "write_tree",
]
