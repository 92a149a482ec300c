"""distill: knowledge distillation into a student (``compress.<i>.distill``)."""

from __future__ import annotations

from typing import Any

from tfspec.plan import (DistillParams, SavedModelTeacherParams, SelfTeacherParams, SpecTeacherModelParams,
                         SpecTeacherParams, TeacherParams)
from tfspec.spec.compression import DistillStage

from ..inputs import InputDigests
from ..plan_sections import layers_params, storage_params
from ..resolve import ResolvedSpec
from .registry import NotAfter, Once, Technique, register

__all__ = ["TECHNIQUE", "teacher_params"]


def teacher_params(digests: InputDigests | None, index: int, stage: DistillStage) -> TeacherParams:
    """The stage's teacher with what identifies an external one's model (see ``teachers.py``): an external
    teacher is no step of this plan, so its identity keeps the fingerprint honest."""
    teacher = stage.teacher
    assert teacher is not None  # validated
    if teacher.kind == "self":
        return SelfTeacherParams(kind="self")
    if teacher.kind == "saved_model":
        sha = digests.content.get(f"compression[{index}].teacher.path") if digests is not None else None
        return SavedModelTeacherParams(kind="saved_model", path=teacher.path, storage=storage_params(teacher.storage),
                                       sha256=sha or None)
    model = digests.teachers.get(index) if digests is not None else None
    return SpecTeacherParams(kind="spec", path=teacher.path, final_model=SpecTeacherModelParams(
        step=model.model_step, fingerprint=model.fingerprint) if model is not None else None)


def params(resolved: ResolvedSpec, index: int, stage: DistillStage, common: dict[str, Any],
           digests: InputDigests | None) -> DistillParams:
    assert stage.student is not None  # validated
    return DistillParams(**common, teacher=teacher_params(digests, index, stage), student=layers_params(stage.student),
                         temperature=stage.temperature, alpha=stage.alpha, epochs=stage.epochs)


TECHNIQUE = register(Technique("distill", "distill", params, rules=(
    NotAfter(("prune", "cluster", "quantization_aware"), "distill must come before prune, cluster and quantization_aware",
             "move the distill stage to the top of the list: it trains a new (student) model"),
    Once("only one distill stage is supported", "keep one distill stage (compression[{first}])"),
)))
