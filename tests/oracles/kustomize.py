"""kustomize's name-reference rule, for tests of generated kustomize bases.

Source: kubernetes-sigs/kustomize @ 12f9e6391464b3ad9dd3fe8182049dc1b1772990 (kustomize/v5.8.1-80):
``api/internal/konfig/builtinpluginconsts/namereference.go`` (the default ``nameReference``
configuration) and ``api/internal/accumulator/namereferencetransformer.go``.

When ``namePrefix``/``nameSuffix`` (or a hash suffix) renames an object, kustomize rewrites a field that
names it only where a ``nameReference`` entry lists that field for the referring kind: the default
configuration lists the pod templates of built-in kinds (Pod, Deployment, ReplicaSet, DaemonSet,
StatefulSet, Job, CronJob, ...), ``roleRef``/``subjects`` of RBAC bindings and a few more. A field of any
other kind (a JobSet's, a TFJob's, a WorkflowTemplate's pod spec, an annotation) keeps the old name —
the reference dangles — unless the base's ``configurations:`` add it.

:func:`references` finds the by-name fields of an object (pod specs anywhere in it, and the few other
fields tfspec writes), :func:`needs_configuration` which of them the default configuration does not
cover, :func:`dangling` the references an overlay's output left pointing at an object's old name.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from oracles.kubernetes import pod_specs

__all__ = ["DEFAULT_POD_TEMPLATE_KINDS", "references", "needs_configuration", "configured", "dangling"]

# Referring kinds whose pod templates the default configuration covers (for PersistentVolumeClaim,
# ConfigMap, Secret and ServiceAccount alike; Pod at spec/, the others at spec/template/spec/ or
# spec/jobTemplate/spec/template/spec/).
DEFAULT_POD_TEMPLATE_KINDS = {"Pod", "PodTemplate", "Deployment", "ReplicaSet", "DaemonSet", "StatefulSet", "Job",
                              "CronJob", "ReplicationController"}

# By-name fields of a pod spec, per kind named.
_POD_FIELDS: dict[str, tuple[tuple[str, ...], ...]] = {
    "PersistentVolumeClaim": (("volumes", "persistentVolumeClaim", "claimName"),),
    "ConfigMap": (("volumes", "configMap", "name"), ("containers", "env", "valueFrom", "configMapKeyRef", "name"),
                  ("containers", "envFrom", "configMapRef", "name")),
    "Secret": (("volumes", "secret", "secretName"), ("containers", "env", "valueFrom", "secretKeyRef", "name"),
               ("containers", "envFrom", "secretRef", "name"), ("imagePullSecrets", "name")),
    "ServiceAccount": (("serviceAccountName",),),
}


# By-name fields of an Argo WorkflowSpec (its pod-level fields, and those of its templates' pods).
_WORKFLOW_FIELDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("ConfigMap", ("volumes", "configMap", "name")),
    ("ServiceAccount", ("executor", "serviceAccountName")),
    ("ServiceAccount", ("serviceAccountName",)),
    ("Secret", ("imagePullSecrets", "name")),
    ("Secret", ("templates", "container", "env", "valueFrom", "secretKeyRef", "name")),
    ("PersistentVolumeClaim", ("templates", "volumes", "persistentVolumeClaim", "claimName")),
)


def _walk(value: Any, keys: tuple[str, ...], path: str) -> Iterator[tuple[str, str]]:
    if not keys:
        if isinstance(value, str):
            yield path, value
        return
    if isinstance(value, list):
        for item in value:
            yield from _walk(item, keys, path)
    elif isinstance(value, dict) and keys[0] in value:
        yield from _walk(value[keys[0]], keys[1:], f"{path}/{keys[0]}")


def references(document: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(kind named, field path without list indexes, name) of every by-name field of ``document``: its
    pod specs' fields, a WorkflowTemplate's plan volume and executor account, an Indexed Job's subdomain,
    a token Secret's account and an account's token Secret annotation."""
    out: list[tuple[str, str, str]] = []
    kind = document.get("kind")
    for template_path, template in pod_specs(document):
        base = "/".join(p for p in template_path.split("/") if p and not p.isdigit())
        spec_path = f"{base}/spec" if base else "spec"
        for named, fields in _POD_FIELDS.items():
            for keys in fields:
                out += [(named, f"{spec_path}{path}", value) for path, value in _walk(template["spec"], keys, "")]
        if "subdomain" in template["spec"]:
            out.append(("Service", f"{spec_path}/subdomain", template["spec"]["subdomain"]))
    if kind in ("WorkflowTemplate", "Workflow"):
        for named, keys in _WORKFLOW_FIELDS:
            out += [(named, "spec" + path, value) for path, value in _walk(document["spec"], keys, "")]
    annotations = document.get("metadata", {}).get("annotations", {}) or {}
    if kind == "Secret" and "kubernetes.io/service-account.name" in annotations:
        out.append(("ServiceAccount", "metadata/annotations/kubernetes.io\\/service-account.name",
                    annotations["kubernetes.io/service-account.name"]))
    if kind == "ServiceAccount" and "workflows.argoproj.io/service-account-token.name" in annotations:
        out.append(("Secret", "metadata/annotations/workflows.argoproj.io\\/service-account-token.name",
                    annotations["workflows.argoproj.io/service-account-token.name"]))
    return out


def needs_configuration(document: dict[str, Any]) -> list[tuple[str, str]]:
    """(kind named, field path) of the by-name fields the default configuration does not cover."""
    kind = document.get("kind")
    out = []
    for named, path, _ in references(document):
        if kind in DEFAULT_POD_TEMPLATE_KINDS and named in _POD_FIELDS:
            continue
        out.append((named, path))
    return out


def configured(configuration: dict[str, Any], kind: str, named: str, path: str) -> bool:
    """Whether a base's configuration has a ``nameReference`` entry for ``path`` of ``kind`` naming ``named``."""
    for entry in configuration.get("nameReference", []):
        if entry.get("kind") != named:
            continue
        if any(spec.get("kind") == kind and spec.get("path") == path for spec in entry.get("fieldSpecs", [])):
            return True
    return False


def dangling(base: list[dict[str, Any]], output: list[dict[str, Any]]) -> list[str]:
    """References in an overlay's ``output`` that still name an object of ``base`` by its base name, though
    the overlay renamed that object (its base name no longer exists in the output)."""
    base_names = {(d["kind"], d["metadata"]["name"]) for d in base if "name" in d.get("metadata", {})}
    output_names = {(d["kind"], d["metadata"]["name"]) for d in output if "name" in d.get("metadata", {})}
    renamed = base_names - output_names
    out = []
    for document in output:
        for named, path, value in references(document):
            if (named, value) in renamed:
                out.append(f"{document['kind']} {document['metadata'].get('name')}: {path} still names "
                           f"{named} {value!r}, renamed by the overlay")
    return out
