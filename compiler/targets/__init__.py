"""One module per target kind (``tf_serving``, ``tflite``, ``gpu_cluster``), each registering a
:class:`~.registry.TargetKind` (its renderer, rules and plan steps); ``kubernetes`` holds the values their
manifests share and ``common`` the naming and quoting helpers.

:func:`render_targets` is stage 6 (render): every target through its kind's renderer.
"""

from __future__ import annotations

from ..resolve import ResolvedSpec
from . import gpu_cluster, tf_serving, tflite
from .registry import TARGET_KINDS, PlanContext, TargetKind, UnknownTargetKind, register, target_kind

__all__ = ["TARGET_KINDS", "PlanContext", "TargetKind", "UnknownTargetKind", "register", "render_targets", "target_kind",
           "gpu_cluster", "tf_serving", "tflite"]


def render_targets(resolved: ResolvedSpec) -> dict[str, dict[str, str]]:
    """Files of every target, keyed by target name; paths are relative to the output folder."""
    return {target.name: target_kind(target.kind).render(resolved, target) for target in resolved.spec.targets}
