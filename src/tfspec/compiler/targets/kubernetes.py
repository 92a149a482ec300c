"""Kubernetes values shared by the tf_serving and gpu_cluster manifests.

Everything a manifest needs is computed here as plain data (dicts and lists in a fixed order); the
templates only lay it out. GPU scheduling follows the NVIDIA device plugin's conventions: the
``nvidia.com/gpu`` extended resource, the ``nvidia.com/gpu.present`` node label that GPU feature discovery
(and the GPU operator) sets (required only when a spec opts in), and the ``nvidia.com/gpu`` taint that GPU node pools commonly carry.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tfspec.spec.targets import Resources, Toleration, TopologySpread

from ..resolve import ResolvedSpec

__all__ = [
    "GPU_RESOURCE",
    "GPU_NODE_LABEL",
    "GPU_TOLERATION",
    "labels",
    "selector_labels",
    "resources",
    "node_selector",
    "tolerations",
    "topology_spread",
    "pod_security_context",
    "container_security_context",
    "annotations",
    "POD_NAME_REFERENCES",
    "NameReference",
    "pod_name_references",
    "kustomize_name_references",
    "annotation_path",
    "KEEP_ON_SYNC",
]

GPU_RESOURCE = "nvidia.com/gpu"
GPU_NODE_LABEL = ("nvidia.com/gpu.present", "true")
GPU_TOLERATION: dict[str, str] = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
# Annotations of a ConfigMap named by its content: a new content is a new ConfigMap, and what used the
# previous one still does (a Deployment's previous ReplicaSet, which `kubectl rollout undo` brings back; a
# workflow still running). Argo CD must neither prune it on a later sync (sync option Prune=false) nor
# report the application OutOfSync for keeping it (compare option IgnoreExtraneous). Delete old ones by hand.
KEEP_ON_SYNC: dict[str, str] = {"argocd.argoproj.io/compare-options": "IgnoreExtraneous",
                                "argocd.argoproj.io/sync-options": "Prune=false"}


def selector_labels(resolved: ResolvedSpec, instance: str, component: str) -> dict[str, str]:
    """The immutable labels a selector matches (no version: a new model version keeps the selector)."""
    return {
        "app.kubernetes.io/name": resolved.spec.name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
    }


def labels(resolved: ResolvedSpec, instance: str, component: str) -> dict[str, str]:
    """Recommended labels (app.kubernetes.io/*) of every object of a target."""
    return {
        **selector_labels(resolved, instance, component),
        "app.kubernetes.io/version": str(resolved.spec.version),
        "app.kubernetes.io/part-of": resolved.spec.name,
        "app.kubernetes.io/managed-by": "tfspec",
    }


def annotations(resolved: ResolvedSpec) -> dict[str, str]:
    """Object annotations: the spec's description (``kubernetes.io/description``) when it has one."""
    return {"kubernetes.io/description": resolved.spec.description} if resolved.spec.description else {}


def resources(spec: Resources, gpus: int) -> dict[str, dict[str, Any]]:
    """``resources`` of a container; GPUs go to limits (Kubernetes sets the request equal to it)."""
    limits: dict[str, Any] = {"cpu": spec.limits.cpu, "memory": spec.limits.memory}
    if gpus > 0:
        limits[GPU_RESOURCE] = gpus
    return {"requests": {"cpu": spec.requests.cpu, "memory": spec.requests.memory}, "limits": limits}


def node_selector(user: dict[str, str], gpus: int, gpu_feature_discovery: bool = False) -> dict[str, str]:
    """The spec's node selector, plus the GPU node label when GPUs are asked for and the spec opts in.

    Only GPU Feature Discovery sets ``nvidia.com/gpu.present``: on a cluster with just the device plugin
    a pod that requires it stays Pending, while the ``nvidia.com/gpu`` limit alone already schedules.
    """
    out = dict(sorted(user.items()))
    if gpus > 0 and gpu_feature_discovery and GPU_NODE_LABEL[0] not in out:
        out = {GPU_NODE_LABEL[0]: GPU_NODE_LABEL[1], **out}
    return out


def tolerations(user: list[Toleration], gpus: int) -> list[dict[str, str]]:
    """Tolerations as plain dicts: the GPU taint first (when GPUs are asked for), then the spec's."""
    out: list[dict[str, str]] = []
    for toleration in user:
        item = {"key": toleration.key, "operator": toleration.operator}
        if toleration.value is not None:
            item["value"] = toleration.value
        item["effect"] = toleration.effect
        out.append(item)
    if gpus > 0 and not any(t["key"] == GPU_TOLERATION["key"] for t in out):
        out.insert(0, dict(GPU_TOLERATION))
    return out


def topology_spread(spread: TopologySpread, selector: dict[str, str]) -> list[dict[str, Any]]:
    """One ``topologySpreadConstraints`` entry per topology key. ``matchLabelKeys: [pod-template-hash]``
    counts only the pods of one Deployment revision, so a rollout spreads its new pods too."""
    return [{
        "maxSkew": spread.max_skew,
        "topologyKey": key,
        "whenUnsatisfiable": spread.when_unsatisfiable,
        "labelSelector": {"matchLabels": dict(selector)},
        "matchLabelKeys": ["pod-template-hash"],
    } for key in spread.topology_keys]


def pod_security_context(uid: int, fs_group: bool = False) -> dict[str, Any]:
    """Pod-level part of the ``restricted`` Pod Security Standard, with a fixed non-root UID/GID."""
    context: dict[str, Any] = {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": uid}
    if fs_group:
        context["fsGroup"] = uid
    context["seccompProfile"] = {"type": "RuntimeDefault"}
    return context


def container_security_context() -> dict[str, Any]:
    """Container-level part of the ``restricted`` standard, plus a read-only root filesystem."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


# The fields of a pod spec that name another object, by the kind they name: those kustomize's default
# nameReference configuration lists for the pod templates of Deployments and Jobs
# (kubernetes-sigs/kustomize api/internal/konfig/builtinpluginconsts/namereference.go). A training object
# of a kind kustomize does not know (JobSet, TFJob) needs them listed in a configuration of the base, or a
# namePrefix/nameSuffix renames the claim, ConfigMap or Secret but not the references to it.
POD_NAME_REFERENCES: dict[str, tuple[str, ...]] = {
    "PersistentVolumeClaim": ("volumes/persistentVolumeClaim/claimName",),
    "ConfigMap": ("volumes/configMap/name", "volumes/projected/sources/configMap/name",
                  "containers/env/valueFrom/configMapKeyRef/name", "initContainers/env/valueFrom/configMapKeyRef/name",
                  "containers/envFrom/configMapRef/name", "initContainers/envFrom/configMapRef/name"),
    "Secret": ("volumes/secret/secretName", "volumes/projected/sources/secret/name",
               "containers/env/valueFrom/secretKeyRef/name", "initContainers/env/valueFrom/secretKeyRef/name",
               "containers/envFrom/secretRef/name", "initContainers/envFrom/secretRef/name", "imagePullSecrets/name"),
    "ServiceAccount": ("serviceAccountName",),
}

# (kind named, referring kind, its API group, path of the field in the referring object)
NameReference = tuple[str, str, str, str]


def pod_name_references(kind: str, group: str, pod_spec: str) -> list[NameReference]:
    """Every by-name field of the pod spec at ``pod_spec`` (a kustomize path) inside objects of ``kind``."""
    return [(named, kind, group, f"{pod_spec}/{field}") for named, fields in POD_NAME_REFERENCES.items()
            for field in fields]


def annotation_path(key: str) -> str:
    """The kustomize field path of an annotation (``/`` in the key escaped, as kustomize reads it)."""
    return "metadata/annotations/" + key.replace("/", "\\/")


_CORE_KINDS = {"PersistentVolumeClaim", "ConfigMap", "Secret", "ServiceAccount", "Service"}


def kustomize_name_references(references: Iterable[NameReference]) -> list[dict[str, Any]]:
    """A kustomize ``nameReference`` configuration: one entry per named kind (core ``v1`` kinds), each
    listing the fields that name it, in the order given."""
    by_kind: dict[str, list[dict[str, str]]] = {}
    for named, kind, group, path in references:
        assert named in _CORE_KINDS, named
        by_kind.setdefault(named, []).append({"kind": kind, "group": group, "path": path} if group
                                             else {"kind": kind, "path": path})
    return [{"kind": named, "version": "v1", "fieldSpecs": specs} for named, specs in by_kind.items()]
