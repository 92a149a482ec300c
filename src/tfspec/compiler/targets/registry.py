"""The target-kind registry: one :class:`TargetKind` per kind, declared in that kind's module.

Everything that differs between kinds is an entry's attribute: render, validate, plan, resolve's defaults,
the build warnings, ``tfspec fleet``, ``tfspec images``, the workflow and the search objective loop over
the spec's targets and ask the registry; a target whose kind has no entry is an error (never silently no
files).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from tfspec.base.errors import Diagnostic
from tfspec.spec.loader import KeyPath
from tfspec.spec.search import OBJECTIVE_METRICS
from tfspec.spec.targets import Resources, Toleration

from ..kube_names import GeneratedName
from ..resolve import ResolvedSpec

__all__ = ["TargetKind", "TARGET_KINDS", "PlanContext", "Workload", "ImageSource", "TrainingResource", "register",
           "target_kind", "target_kinds", "UnknownTargetKind", "MEASURED_METRICS"]

TargetFiles = dict[str, str]
# (resolved spec, index of the target in spec.targets, the target) → problems
Rule = Callable[[ResolvedSpec, int, Any], list[Diagnostic]]


# What a ``verify`` step measures of an artifact on the test split (report.json's target metrics), by the
# names a search objective uses.
MEASURED_METRICS: tuple[str, ...] = OBJECTIVE_METRICS


@dataclasses.dataclass(frozen=True)
class PlanContext:
    """What a target kind's ``plan_steps`` gets besides the spec.

    Attributes:
        add: ``add(step_id, kind, params, inputs, outputs, target) → step_id`` (fingerprints are computed there).
        data / final_model / evaluate / export: ids of the plan's data step, last model step, the step
            that measures every model step (the reference of every gate) and the SavedModel export (None
            when no target of the spec has a kind that ``reads_saved_model``: the plan has no export step).
        quantization_aware: a quantization_aware stage ran (its model converts with the learned ranges).
        metric: the quality metric every artifact is measured and gated with (``accuracy`` or ``mae``).
        released: target name → its released model in the plan (``compiler/released.PlannedRelease``) for the
            targets that name one: their ``released`` steps come right after ``data``, so a released model that
            cannot be compared is refused before anything trains; the kind adds the ``compare`` step
            (``released.plan_comparison``).
        gate_steps: the steps whose results gate a release: ``evaluate`` (the naive baseline), every target's
            ``verify`` and ``compare``; filled while the targets are planned, complete when ``release_steps`` run.
    """

    add: Callable[..., str]
    data: str
    final_model: str
    evaluate: str
    export: str | None
    quantization_aware: bool
    metric: str
    released: dict[str, Any] = dataclasses.field(default_factory=dict)
    gate_steps: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass(frozen=True)
class Workload:
    """The pods a target's Kubernetes manifests run, as the cross-section rules, the renderer and
    ``tfspec fleet`` read them (each kind computes it once, in its ``workload``).

    Attributes:
        key: the key path, relative to the target, of the section holding ``resources`` and ``tolerations``.
        resources: the container's requests and limits.
        tolerations: the spec's tolerations (the GPU taint's is added by the renderer).
        gpus: GPUs per pod.
        replicas: pods at the start: the autoscaler's minimum when it scales, else the replica or worker count.
        max_replicas: the most pods (the autoscaler's maximum; ``replicas`` without autoscaling).
        unit: what one pod is, for people: ``replica`` or ``worker``.
    """

    key: KeyPath
    resources: Resources
    tolerations: tuple[Toleration, ...]
    gpus: int
    replicas: int
    max_replicas: int
    unit: str = "replica"


@dataclasses.dataclass(frozen=True)
class ImageSource:
    """An image a target's build defines (its rendered ``<target>/Dockerfile`` is the build context).

    Attributes:
        key: the key path, relative to the target, of the field naming its repository (reported when two
            targets push to one repository).
        explicit: that field's value (None: ``[<registry>/]<spec>-<target>`` is derived).
        wheel: the build context needs tfspec's wheel (the image runs tfspec).
        saved_model: the context needs the SavedModel version of the target's ``<target>.bundle`` step.
    """

    key: KeyPath
    explicit: str | None
    wheel: bool = False
    saved_model: bool = False


@dataclasses.dataclass(frozen=True)
class TrainingResource:
    """A multi-worker training object a workflow creates and waits on (an Argo resource template).

    Attributes:
        manifest: the object, as the target's kustomize base writes it (``metadata.namespace`` set when the
            target has one).
        success / failure: Argo's success and failure conditions on the object's status.
        namespace: the namespace the target names (None: the workflow's).
        claim / mount_path: the PersistentVolumeClaim the workers keep their step cache on, and where they
            mount it (the workflow uploads the trained entry from there).
    """

    manifest: dict[str, Any]
    success: str
    failure: str
    namespace: str | None
    claim: str
    mount_path: str


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
        release_steps: ``(context, resolved, target) → None``: adds the steps that change something outside
            the run (the model store's ``upload``), after every target's ``plan_steps``: they depend on
            ``context.gate_steps``, so a run that misses any gate releases nothing. None: the kind has none.
        metrics: what the kind's ``verify`` step measures on the test split, by the names a search
            objective uses (``accuracy``, ``size_kb``, ...); empty: nothing is measured, so no search
            objective can name a target of this kind.
        workload: ``target → Workload | None``: the pods its manifests run (None: none, e.g. a
            tf_serving target without ``kubernetes``). Requests within limits, tolerations and the
            fleet's GPU column are checked and shown from it.
        image: ``target → ImageSource | None``: the image its build defines (None: it builds none).
        shipped: ``(resolved, target) → str``: what ``tfspec fleet`` lists for a target that builds no
            image (a ``.tflite`` file name, a model store folder). None: ``-``.
        training_resource: ``(resolved, target) → TrainingResource``: the multi-worker training object a
            workflow's ``training_target`` creates. None: the kind does not train.
        reads_saved_model: the kind's steps read the ``export`` step's SavedModel (``context.export``); the
            plan holds an export step only when a target's kind does (seconds of a run otherwise spent on
            a SavedModel nothing ships).
    """

    kind: str
    render: Callable[[ResolvedSpec, Any, "str | None"], TargetFiles]
    rules: tuple[Rule, ...] = ()
    plan_steps: Callable[[PlanContext, ResolvedSpec, Any], None] | None = None
    defaults: Callable[[Any, Any], Any] | None = None
    warnings: tuple[Rule, ...] = ()
    names: Callable[[ResolvedSpec, int, Any], list[GeneratedName]] | None = None
    release_steps: Callable[[PlanContext, ResolvedSpec, Any], None] | None = None
    metrics: tuple[str, ...] = ()
    workload: Callable[[Any], Workload | None] | None = None
    image: Callable[[Any], ImageSource | None] | None = None
    shipped: Callable[[ResolvedSpec, Any], str] | None = None
    training_resource: Callable[[ResolvedSpec, Any], TrainingResource] | None = None
    reads_saved_model: bool = False


TARGET_KINDS: dict[str, TargetKind] = {}


def register(entry: TargetKind) -> TargetKind:
    """Add ``entry``; registering a kind twice is a mistake and raises."""
    if entry.kind in TARGET_KINDS and TARGET_KINDS[entry.kind] is not entry:
        raise ValueError(f"target kind {entry.kind!r} is registered twice")
    TARGET_KINDS[entry.kind] = entry
    return entry


def target_kinds() -> tuple[TargetKind, ...]:
    """Every registered kind, by name (what a rule that names kinds lists)."""
    return tuple(entry for _, entry in sorted(TARGET_KINDS.items()))


def target_kind(kind: str) -> TargetKind:
    """The entry of ``kind``; raises :class:`UnknownTargetKind` when no module registered it."""
    try:
        return TARGET_KINDS[kind]
    except KeyError:
        raise UnknownTargetKind(f"no module registered the target kind {kind!r} "
                                f"(registered: {', '.join(sorted(TARGET_KINDS))})") from None
