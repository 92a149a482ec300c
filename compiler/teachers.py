"""Distillation teachers that live outside the spec: checked by ``validate``, fingerprinted by ``plan``.

A ``distill`` stage's step must re-run when its teacher changes, and the teacher is not in this spec's
DAG when it is a SavedModel folder or another spec. So the plan adds the teacher's identity to the step's
parameters (and so to its fingerprint):

* ``saved_model``: the sha256 of the folder (every file's relative path and contents, sorted), or of
  the file;
* ``spec``: the fingerprint of the other spec's final model step (its last compression stage, or
  ``train``), found by compiling it (no TensorFlow; the runtime reads that step's cache entry).

Compiling a teacher spec compiles its own teachers; a cycle of specs teaching each other is an error.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tfspec.spec.compression import DistillStage
from tfspec.spec.errors import Diagnostic

from .resolve import ResolvedSpec

__all__ = ["teacher_path", "teacher_diagnostics", "teacher_identity", "tree_sha256"]

_COMPILING: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("tfspec_teacher_specs", default=())


def teacher_path(resolved: ResolvedSpec, stage: DistillStage) -> Path | None:
    """Where a ``saved_model`` or ``spec`` teacher is (relative paths are relative to the spec file)."""
    teacher = stage.teacher
    if teacher is None or teacher.kind == "self":
        return None
    return Path(resolved.file).parent / teacher.path


def tree_sha256(path: Path) -> str:
    """sha256 of a file, or of a folder's files (relative path and contents, in sorted order)."""
    digest = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for file in files:
        digest.update(file.relative_to(path).as_posix().encode("utf-8") + b"\0" if file != path else b"")
        with open(file, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()


@contextlib.contextmanager
def _compiling(path: Path) -> Iterator[bool]:
    """Mark ``path`` as being compiled; yields False when it already is (a cycle)."""
    key = str(path.resolve())
    active = _COMPILING.get()
    if key in active:
        yield False
        return
    token = _COMPILING.set(active + (key,))
    try:
        yield True
    finally:
        _COMPILING.reset(token)


def _compile_teacher(path: Path) -> Any:
    from .pipeline import compile_spec  # the pipeline imports this module's users

    return compile_spec(path)


def teacher_diagnostics(resolved: ResolvedSpec, index: int, stage: DistillStage) -> list[Diagnostic]:
    """Problems with a stage's external teacher: missing, not compiling, or teaching itself."""
    path = teacher_path(resolved, stage)
    if path is None:
        return []
    key = ("compression", index, "teacher", "path")
    if not path.exists():
        what = "SavedModel" if stage.teacher.kind == "saved_model" else "spec file"
        return [resolved.diagnostic(key, f"teacher {what} {stage.teacher.path!r} does not exist",
                                    "paths are relative to this spec file")]
    if stage.teacher.kind == "saved_model":
        return []
    if path.resolve() == Path(resolved.file).resolve():
        return [resolved.diagnostic(key, "a spec cannot teach itself", "use teacher: {kind: self}")]
    with _compiling(Path(resolved.file)), _compiling(path) as fresh:
        if not fresh:
            return [resolved.diagnostic(key, f"teacher specs form a cycle through {stage.teacher.path!r}",
                                        "a teacher spec must not (indirectly) distill from this spec")]
        result = _compile_teacher(path)
    if not result.ok:
        first = result.diagnostics[0]
        return [resolved.diagnostic(key, f"the teacher spec has {len(result.diagnostics)} error(s), first: "
                                    f"{first.format()}", f"fix it: tfspec validate {stage.teacher.path}")]
    return []


def teacher_identity(resolved: ResolvedSpec, stage: DistillStage) -> dict[str, Any] | None:
    """What identifies the teacher's model in the plan (see the module docstring); None for ``self``."""
    from .plan import model_step_id

    path = teacher_path(resolved, stage)
    if path is None:
        return None
    if stage.teacher.kind == "saved_model":
        return {"sha256": tree_sha256(path)}
    with _compiling(Path(resolved.file)):
        result = _compile_teacher(path)
    if result.plan is None:  # validate reported it; nothing to identify
        return None
    step = result.plan.step(model_step_id(result.plan))
    return {"model_step": step.id, "fingerprint": step.fingerprint}
