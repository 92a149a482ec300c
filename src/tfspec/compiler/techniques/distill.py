"""distill: knowledge distillation into a student (``compress.<i>.distill``)."""

from __future__ import annotations

from typing import Any

from tfspec.plan import (DistillParams, SavedModelTeacherParams, SelfTeacherParams, SpecTeacherModelParams,
                         SpecTeacherParams, TeacherParams)
from tfspec.base.errors import Diagnostic
from tfspec.spec.compression import DistillStage
from tfspec.spec.model import DenseLayer

from ..inputs import InputDigests
from ..plan_sections import layers_params, storage_params
from ..resolve import ResolvedSpec
from ..teachers import teacher_diagnostics
from .registry import Checks, NotAfter, Once, Technique, register

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


def _teacher_and_student(r: ResolvedSpec, index: int, stage: DistillStage) -> list[Diagnostic]:
    out = []
    if stage.teacher is None:
        out.append(r.diagnostic(("compression", index), "distill needs a teacher",
                                "add teacher: {kind: self} (the model trained here), {kind: saved_model, path: ...} "
                                "or {kind: spec, path: ...}"))
    if stage.student is None:
        out.append(r.diagnostic(("compression", index), "distill needs a student",
                                "add student: [layers...] (the smaller model)"))
    elif r.num_classes is not None:
        last = stage.student[-1]
        if not isinstance(last, DenseLayer) or last.units != r.num_classes:
            out.append(r.diagnostic(("compression", index, "student", len(stage.student) - 1),
                                    f"the student's last layer must be dense with {r.num_classes} units",
                                    f"end the student with {{type: dense, units: {r.num_classes}, "
                                    "activation: softmax}"))
    return out


def _classification_loss(r: ResolvedSpec, index: int, stage: DistillStage) -> list[Diagnostic]:
    loss = r.spec.training.loss_spec.kind
    if loss in ("sparse_categorical_crossentropy", "categorical_crossentropy"):
        return []
    return [r.diagnostic(("compression", index, "kind"),
                         f"distill matches softened class probabilities and needs a categorical loss, not {loss}",
                         "use training.loss: sparse_categorical_crossentropy, or remove the distill stage")]


TECHNIQUE = register(Technique("distill", "distill", params, rules=(
    NotAfter(("prune", "cluster", "quantization_aware"), "distill must come before prune, cluster and quantization_aware",
             "move the distill stage to the top of the list: it trains a new (student) model"),
    Once("only one distill stage is supported", "keep one distill stage (compression[{first}])"),
    Checks(_teacher_and_student),
    Checks(_classification_loss),
    Checks(teacher_diagnostics),  # the teacher's model is there and fits (``teachers.py``)
), new_model=lambda stage: stage.student))  # the stages after it work on the student
