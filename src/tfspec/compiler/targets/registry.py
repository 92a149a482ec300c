"""The target-kind registry: one :class:`TargetKind` per kind, declared in that kind's module.

render, validate and plan loop over the spec's targets and ask the registry; a target whose kind has no
entry is an error (never silently no files).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from tfspec.spec.errors import Diagnostic

from ..kube_names import GeneratedName
from ..resolve import ResolvedSpec

__all__ = ["TargetKind", "TARGET_KINDS", "PlanContext", "register", "target_kind", "UnknownTargetKind"]

TargetFiles = dict[str, str]
# (resolved spec, index of the target in spec.targets, the target) → problems
Rule = Callable[[ResolvedSpec, int, Any], list[Diagnostic]]


@dataclasses.dataclass(frozen=True)
class PlanContext:
    """What a target kind's ``plan_steps`` gets besides the spec.

    Attributes:
        add: ``add(step_id, kind, params, inputs, outputs, target) → step_id`` (fingerprints are computed there).
        data / final_model / evaluate / export: ids of the plan's data step, last model step, the step
            that measures every model step (the reference of every gate) and the SavedModel export.
        quantization_aware: a quantization_aware stage ran (its model converts with the learned ranges).
        metric: the quality metric every artifact is measured and gated with (``accuracy`` or ``mae``).
    """

    add: Callable[..., str]
    data: str
    final_model: str
    evaluate: str
    export: str
    quantization_aware: bool
    metric: str


class UnknownTargetKind(LookupError):
    """A target whose kind no module registered: a programming error, not a spec error (the spec parser
    only lets through kinds it has a model for)."""


@dataclasses.dataclass(frozen=True)
class TargetKind:
    """What one target kind owns.

    Attributes:
        kind: the spec's ``targets[].kind``.
        render: ``(resolved, target, served) → {relative path: text}``; ``served`` is the fingerprint of
            the content the target serves (its plan's ``<target>.bundle`` step, None before the plan is
            built or for kinds without one): image tags are derived from it.
        rules: validation rules for one target of this kind (run after the cross-section rules).
        plan_steps: ``(context, resolved, target) → None``: adds the kind's runtime steps with
            ``context.add(...)`` (see :class:`PlanContext`). None: the kind adds no runtime step (its
            rendered files are all it produces).
        defaults: ``(spec, target) → target`` with every value the kind leaves unset in the spec filled
            (image and file names, versions, ...), run by resolve's ``with_defaults``. None: nothing to fill.
        warnings: rules whose problems are build warnings (printed, the build goes on), e.g. a deprecated
            option.
        names: ``(resolved, index, target) → [GeneratedName]``: every Kubernetes name the kind's files
            hold, and every name a controller derives from them, at its longest (checked by
            ``kube_names.check`` with the other rules). None: the kind writes no Kubernetes object.
    """

    kind: str
    render: Callable[[ResolvedSpec, Any, "str | None"], TargetFiles]
    rules: tuple[Rule, ...] = ()
    plan_steps: Callable[[PlanContext, ResolvedSpec, Any], None] | None = None
    defaults: Callable[[Any, Any], Any] | None = None
    warnings: tuple[Rule, ...] = ()
    names: Callable[[ResolvedSpec, int, Any], list[GeneratedName]] | None = None


TARGET_KINDS: dict[str, TargetKind] = {}


def register(entry: TargetKind) -> TargetKind:
    """Add ``entry``; registering a kind twice is a mistake and raises."""
    if entry.kind in TARGET_KINDS and TARGET_KINDS[entry.kind] is not entry:
        raise ValueError(f"target kind {entry.kind!r} is registered twice")
    TARGET_KINDS[entry.kind] = entry
    return entry


def target_kind(kind: str) -> TargetKind:
    try:
        return TARGET_KINDS[kind]
    except KeyError:
        raise UnknownTargetKind(f"no module registered the target kind {kind!r} "
                                f"(registered: {', '.join(sorted(TARGET_KINDS))})") from None
