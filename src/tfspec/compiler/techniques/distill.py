"""distill: knowledge distillation into a student (``compress.<i>.distill``)."""

from __future__ import annotations

from typing import Any

from tfspec.plan import DistillParams, TeacherParams
from tfspec.spec.compression import DistillStage

from ..resolve import ResolvedSpec
from ..inputs import InputDigests
from .registry import NotAfter, Once, Technique, register

__all__ = ["TECHNIQUE"]


def teacher_identity(digests: InputDigests | None, index: int, stage: DistillStage) -> dict[str, Any] | None:
    """What identifies an external teacher's model (see ``teachers.py``); None for ``self``."""
    teacher = stage.teacher
    if teacher is None or teacher.kind == "self" or digests is None:
        return None
    if teacher.kind == "saved_model":
        sha = digests.content.get(f"compression[{index}].teacher.path")
        return {"sha256": sha} if sha else None
    model = digests.teachers.get(index)
    return {"model_step": model.model_step, "fingerprint": model.fingerprint} if model else None


def params(resolved: ResolvedSpec, index: int, stage: DistillStage, common: dict[str, Any],
           digests: InputDigests | None) -> DistillParams:
    assert stage.teacher is not None and stage.student is not None  # validated
    # An external teacher is not a step of this plan: its identity keeps the fingerprint honest.
    storage = getattr(stage.teacher, "storage", None)
    return DistillParams(**common, teacher=TeacherParams(kind=stage.teacher.kind,
                                                         path=getattr(stage.teacher, "path", None),
                                                         storage=storage.model_dump(mode="json") if storage else None),
                         teacher_identity=teacher_identity(digests, index, stage),
                         student=[layer.model_dump(mode="json") for layer in stage.student],
                         temperature=stage.temperature, alpha=stage.alpha, epochs=stage.epochs)


TECHNIQUE = register(Technique("distill", "distill", params, rules=(
    NotAfter(("prune", "cluster", "quantization_aware"), "distill must come before prune, cluster and quantization_aware",
             "move the distill stage to the top of the list: it trains a new (student) model"),
    Once("only one distill stage is supported", "keep one distill stage (compression[{first}])"),
)))
