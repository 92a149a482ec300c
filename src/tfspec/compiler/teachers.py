"""Distillation teachers that live outside the spec: the cheap checks ``validate`` runs.

A ``distill`` stage's step must re-run when its teacher changes, and the teacher is not in this spec's
DAG when it is a SavedModel folder or another spec. The ``inputs`` stage (``inputs.py``) digests a
``saved_model`` teacher's folder and compiles a ``spec`` teacher (once per compile; a cycle of specs
teaching each other is an error there); ``plan`` puts the result in the distill step's ``teacher`` params
(``techniques/distill.py``):

* ``saved_model``: ``sha256`` of the folder (every file's relative path and contents), or of the file;
* ``spec``: ``final_model``, the ``step`` and ``fingerprint`` of the other spec's final model step (its last
  compression stage, or ``train``); the runtime reads that step's cache entry.
"""

from __future__ import annotations

from pathlib import Path

from tfspec.spec.compression import DistillStage
from tfspec.base.errors import Diagnostic, cap

from tfspec.base.locations import is_object_store, local_path
from .resolve import ResolvedSpec

__all__ = ["teacher_path", "teacher_diagnostics"]


def teacher_path(resolved: ResolvedSpec, stage: DistillStage) -> Path | None:
    """Where a ``saved_model`` or ``spec`` teacher is (relative paths are relative to the spec file)."""
    teacher = stage.teacher
    if teacher is None or teacher.kind == "self" or is_object_store(teacher.path):
        return None  # a bucket's SavedModel: the inputs stage lists it
    return local_path(Path(resolved.file).parent, teacher.path)


def teacher_diagnostics(resolved: ResolvedSpec, index: int, stage: DistillStage) -> list[Diagnostic]:
    """Problems with a stage's external teacher found without reading it: missing, or teaching itself."""
    path = teacher_path(resolved, stage)
    if path is None:
        return []
    key = ("compression", index, "teacher", "path")
    if not path.exists():
        what = "SavedModel" if stage.teacher.kind == "saved_model" else "spec file"
        return [resolved.diagnostic(key, f"teacher {what} {cap(stage.teacher.path)!r} does not exist",
                                    "paths are relative to this spec file")]
    if stage.teacher.kind == "spec" and path.resolve() == Path(resolved.file).resolve():
        return [resolved.diagnostic(key, "a spec cannot teach itself", "use teacher: {kind: self}")]
    return []
