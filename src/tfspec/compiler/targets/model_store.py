"""Model store: the plan's ``upload`` step of a target that serves from object storage.

The runtime (``tfspec.runtime.steps.upload``) does the upload; this module only says what to upload
where, and which versions the store must hold (those a policy or a label names) before anything is
pushed: a label on a version the store lacks would crash-loop every serving pod.
"""

from __future__ import annotations

from tfspec.plan import UploadParams
from tfspec.spec.targets import KserveTarget, TfServingTarget

from ..resolve import ResolvedSpec

__all__ = ["upload_params", "required_versions"]


def required_versions(resolved: ResolvedSpec, target: TfServingTarget | KserveTarget) -> list[int]:
    """Versions the store must hold once this spec's version is uploaded: the policy's specific versions,
    the labels' versions (unless labels may name unavailable versions) and this spec's version, sorted."""
    versions = {resolved.spec.version}
    if isinstance(target, TfServingTarget):
        labelled = set(target.version_labels.values())
        if target.version_policy.kind == "specific":
            versions.update(target.version_policy.versions)
        versions.update(labelled)
        if target.allow_unavailable_version_labels:
            # The server may label a version before it is there: labelled versions are not required.
            versions -= labelled - {resolved.spec.version}
    return sorted(versions)


def upload_params(resolved: ResolvedSpec, target: TfServingTarget | KserveTarget, model_dir: str) -> UploadParams:
    """Parameters of the ``upload`` step (no credentials: the runtime's client finds those itself)."""
    store = target.model_store
    assert store is not None
    return UploadParams(
        base_path=store.base_path,
        endpoint_url=store.endpoint_url,
        region=store.region,
        keep_versions=store.keep_versions,
        version=resolved.spec.version,
        model_dir=model_dir,
        required_versions=required_versions(resolved, target),
        key_path=["targets", resolved.spec.targets.index(target), "model_store"],
        pinned=isinstance(target, KserveTarget),
    )
