"""What ``tfspec run`` hands the runtime: a plan, its root, the rendered files and where spec keys are.

Two ways in: a spec compiled now (:func:`run_inputs_from_compiled`), or a ``plan.json`` that ``tfspec build``
wrote (:func:`run_inputs_from_plan_file`), which needs nothing but the build folder and the plan's root.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tfspec.compiler.pipeline import CompileResult
from tfspec.plan import PLAN_FILE, Plan, PlanError
from tfspec.runtime.errors import KeyPath, Locator
from tfspec.runtime.executor import RunInputs
from tfspec.base.errors import SpecError, TfspecError
from tfspec.spec.loader import SourceDocument, load_yaml

__all__ = ["PlanFileError", "run_inputs_from_compiled", "run_inputs_from_plan_file"]


class PlanFileError(TfspecError):
    """A plan.json (or the build folder around it) that cannot be run: one line, exit 2."""

    exit_code = 2


def _document_locator(document: SourceDocument) -> Locator:
    def locate(path: KeyPath) -> str:
        line, column = document.position(path)
        return f"{document.file}:{line}:{column}"

    return locate


def run_inputs_from_compiled(result: CompileResult) -> RunInputs:
    """A successfully compiled spec: its plan, the spec's folder as root, its rendered files."""
    if result.plan is None or result.resolved is None:
        raise ValueError("a successful CompileResult is needed")
    # the files the plan's render steps list: what `run --plan` reads too (not plan.json, not workflow/)
    listed = {path for step in result.plan.steps if step.kind == "render" for path in step.params.files}
    rendered = {path: text for path, text in result.files.items() if path in listed}
    return RunInputs(result.plan, Path(result.path).absolute().parent, rendered,
                     _document_locator(result.resolved.document))


def run_inputs_from_plan_file(plan_file: str | Path, root: str | Path | None = None, *,
                              rendered_files: bool = True) -> RunInputs:
    """``plan.json`` and the rendered files beside it (checked against the sha256 the plan recorded).

    ``root`` overrides the plan's recorded root (a pod mounting the data elsewhere). Without
    ``rendered_files`` the plan alone is read (a workflow pod: the rendered files stay in the build
    folder, the published dist holds what the steps made).
    """
    plan_file = Path(plan_file)
    try:
        plan = Plan.from_json(plan_file.read_bytes())
    except OSError as error:
        raise PlanFileError(f"{plan_file}: cannot read the plan: {error.strerror}") from None
    except PlanError as error:
        raise PlanFileError(f"{plan_file}: {error}") from None
    if root is None:
        recorded = plan.root_dir(plan_file)
        if recorded is None:
            raise PlanFileError(f"{plan_file}: the plan records no root (it was compiled without an output folder); "
                                "pass --root with the spec's folder")
        root = recorded
    root = Path(os.path.normpath(Path(root).absolute()))
    rendered: dict[str, str] = {}
    for step in plan.steps:
        if step.kind != "render" or not rendered_files:
            continue
        for path, sha256 in step.params.files.items():
            file = plan_file.parent / path
            try:
                data = file.read_bytes()
            except OSError:
                raise PlanFileError(f"{file}: listed in the plan ({step.id}) but missing: rebuild with tfspec build"
                                    ) from None
            if hashlib.sha256(data).hexdigest() != sha256:
                raise PlanFileError(f"{file}: changed since tfspec build wrote the plan: rebuild with tfspec build")
            rendered[path] = data.decode("utf-8")
    return RunInputs(plan, root, rendered, _spec_locator(plan, root))


def _spec_locator(plan: Plan, root: Path) -> Locator | None:
    """Positions from the spec file the plan names, when it is there (an overlay's keys where the overlay says)."""
    if plan.spec.file is None:
        return None
    spec_file = root / plan.spec.file
    try:
        document = load_yaml(spec_file)
        if plan.spec.environment is not None:
            from tfspec.compiler.resolve import apply_environment

            document = apply_environment(document, plan.spec.environment)
    except (OSError, SpecError):
        return None
    return _document_locator(document)
