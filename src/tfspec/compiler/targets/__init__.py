"""One module per target kind (``tf_serving``, ``tflite``, ``gpu_cluster``, ``kserve``), each registering a
:class:`~.registry.TargetKind` (its renderer, rules, plan steps, workload, image, ...); ``kubernetes`` holds
the values their manifests share, ``common`` the naming and quoting helpers and ``model_store`` what the
serving kinds' object-storage stores share.

:func:`render_targets` is stage 6 (render): every target through its kind's renderer.
"""

from __future__ import annotations

from collections.abc import Mapping

from tfspec.spec.document import Spec
from tfspec.base.errors import Diagnostic
from tfspec.spec.targets import Target

from ..kube_names import GeneratedName
from ..resolve import ResolvedSpec
from . import gpu_cluster, kserve, tf_serving, tflite
from .registry import (MEASURED_METRICS, TARGET_KINDS, ImageSource, PlanContext, TargetKind, TrainingResource,
                       UnknownTargetKind, Workload, register, target_kind, target_kinds)

__all__ = ["TARGET_KINDS", "MEASURED_METRICS", "PlanContext", "TargetKind", "UnknownTargetKind", "Workload",
           "ImageSource", "TrainingResource", "register", "render_targets", "target_kind", "target_kinds", "target_defaults",
           "target_warnings", "target_names", "target_workload", "target_image", "gpu_cluster", "kserve",
           "tf_serving", "tflite"]


def target_defaults(spec: Spec, target: Target) -> Target:
    """``target`` with its kind's defaults filled (resolve's ``with_defaults`` calls this for each target)."""
    fill = target_kind(target.kind).defaults
    return fill(spec, target) if fill is not None else target


def target_warnings(resolved: ResolvedSpec) -> list[Diagnostic]:
    """Build warnings of every target (its kind's ``warnings`` rules): printed, they do not fail the build."""
    return [warning for index, target in enumerate(resolved.spec.targets)
            for rule in target_kind(target.kind).warnings for warning in rule(resolved, index, target)]


def target_names(resolved: ResolvedSpec) -> list[GeneratedName]:
    """Every Kubernetes name the targets' files hold or make a controller derive (their kinds' ``names``)."""
    out: list[GeneratedName] = []
    for index, target in enumerate(resolved.spec.targets):
        names = target_kind(target.kind).names
        if names is not None:
            out.extend(names(resolved, index, target))
    return out


def target_workload(target: Target) -> Workload | None:
    """The pods ``target``'s manifests run (its kind's ``workload``), or None."""
    workload = target_kind(target.kind).workload
    return workload(target) if workload is not None else None


def target_image(target: Target) -> ImageSource | None:
    """The image ``target``'s build defines (its kind's ``image``), or None."""
    image = target_kind(target.kind).image
    return image(target) if image is not None else None


def render_targets(resolved: ResolvedSpec, served: Mapping[str, str] | None = None) -> dict[str, dict[str, str]]:
    """Files of every target, keyed by target name; paths are relative to the output folder.

    ``served``: per target, the fingerprint of what it serves (the plan's ``<target>.bundle`` step; image
    tags are derived from it).
    """
    served = served or {}
    return {target.name: target_kind(target.kind).render(resolved, target, served.get(target.name))
            for target in resolved.spec.targets}
