"""Kubernetes API rules as the API server and its controllers apply them, for tests of generated manifests.

Sources (read for this module; each function names its own):

* kubernetes/apimachinery @ eed236ceee2c19c2753a3d93ac0631dc20750454 (kubernetes-1.36.0-alpha.2-226):
  ``pkg/api/validate/content/dns.go`` (IsDNS1123Label, IsDNS1123Subdomain, IsDNS1035Label) and
  ``pkg/api/validate/content/kube.go`` (IsLabelKey, IsLabelValue).
* kubernetes/apiserver @ 24a394e516bfda066d7e2221d7d92c052de27c54: ``pkg/storage/names/generate.go``
  (generateName: the prefix cut to 58 characters, 5 random ones appended).
* kubernetes/kubernetes @ 78fc8e44052f699bf598f84b697b41e5a328c9c5: ``pkg/controller/job/indexed_job_utils.go``
  and ``job_controller.go`` (an Indexed Job's pod i gets hostname ``<job>-<i>``); @ 037091284e (file
  ``pkg/apis/batch/validation/validation.go``, validateGeneratedSelector: the pod template carries the
  ``batch.kubernetes.io/job-name`` and ``job-name`` labels whose value is the Job's name); Service names
  are DNS-1035 labels (``ValidateServiceName = NameIsDNS1035Label``; the RelaxedServiceNameValidation gate
  that allows DNS-1123 labels is alpha and off by default since 1.34).
* kubernetes/kubernetes @ 2876d1ab9b6016c0fe9d5e92ac56f3c4caf48c6c: ``plugin/pkg/admission/gc/gc_admission.go``
  (OwnerReferencesPermissionEnforcement).
* kubernetes.io docs, "Owners and Dependents" (concepts/overview/working-with-objects/owners-dependents)
  and the OwnerReference API reference: an owner must be in the dependent's namespace (or cluster-scoped);
  "cross-namespace owner references are disallowed by design", and a dependent whose namespaced owner is
  not found in its own namespace is treated as having no owner and garbage-collected.
* RBAC (kubernetes.io docs, "Using RBAC Authorization", referring to subresources): a rule names a
  subresource as ``<resource>/<subresource>``; ``*`` matches any.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

__all__ = ["is_dns1123_label", "is_dns1123_subdomain", "is_dns1035_label", "is_label_key", "is_label_value",
           "generate_name", "name_rule", "object_problems", "indexed_job_host_names", "rbac_allows",
           "owner_reference_requirements", "owner_in_reach", "pod_specs"]

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")

# generate.go: maxNameLength 63, randomLength 5, MaxGeneratedNameLength = 58
_GENERATED_PREFIX_MAX = 58
_RANDOM = "x9x9x"


def is_dns1123_label(value: str) -> bool:
    return len(value) <= 63 and bool(_DNS1123_LABEL.match(value))


def is_dns1123_subdomain(value: str) -> bool:
    return len(value) <= 253 and bool(_DNS1123_SUBDOMAIN.match(value))


def is_dns1035_label(value: str) -> bool:
    return len(value) <= 63 and bool(_DNS1035_LABEL.match(value))


def is_label_key(value: str) -> bool:
    """IsLabelKey (a "qualified name"): an optional DNS-1123 subdomain prefix and ``/``, then a name of at
    most 63 characters."""
    parts = value.split("/")
    if len(parts) > 2:
        return False
    if len(parts) == 2 and not (parts[0] and is_dns1123_subdomain(parts[0])):
        return False
    name = parts[-1]
    return 0 < len(name) <= 63 and bool(_LABEL_KEY_NAME.match(name))


def is_label_value(value: str) -> bool:
    return len(value) <= 63 and bool(_LABEL_VALUE.match(value))


def generate_name(prefix: str) -> str:
    """The name the API server makes of ``generateName: prefix`` (random part at its full length)."""
    return prefix[:_GENERATED_PREFIX_MAX] + _RANDOM


def name_rule(kind: str) -> tuple[str, Any]:
    """(what, check) for ``metadata.name`` of ``kind``: Services are DNS-1035 labels, Jobs at most 63
    characters (their name is a label value of their pods), everything else DNS-1123 subdomains."""
    if kind == "Service":
        return "DNS-1035 label", is_dns1035_label
    if kind == "Job":
        return "DNS-1123 subdomain and label value", lambda v: is_dns1123_subdomain(v) and is_label_value(v)
    if kind == "Namespace":
        return "DNS-1123 label", is_dns1123_label
    return "DNS-1123 subdomain", is_dns1123_subdomain


def pod_specs(value: Any, path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, pod template) of every pod template inside an object: a mapping with ``spec.containers``."""
    if isinstance(value, dict):
        if isinstance(value.get("spec"), dict) and "containers" in value["spec"]:
            yield path, value
        for key, item in value.items():
            yield from pod_specs(item, f"{path}/{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from pod_specs(item, f"{path}/{index}")


def _label_problems(labels: dict[str, Any], where: str) -> list[str]:
    out = []
    for key, value in (labels or {}).items():
        if not is_label_key(str(key)):
            out.append(f"{where}: label key {key!r} is not a qualified name")
        if not isinstance(value, str) or not is_label_value(value):
            out.append(f"{where}: label {key}={value!r} is not a valid label value")
    return out


def indexed_job_host_names(job_name: str, completions: int) -> list[str]:
    """Host names of an Indexed Job's pods (job_controller.go: ``<job>-<completion index>``)."""
    return [f"{job_name}-{index}" for index in range(completions)]


def object_problems(document: dict[str, Any]) -> list[str]:
    """What the API server (and the Job controller, for an Indexed Job) would reject in one object: its name
    or generateName, its labels and its pod templates' labels, an Indexed Job's pod host names."""
    kind = document.get("kind", "?")
    metadata = document.get("metadata", {})
    out: list[str] = []
    what, valid = name_rule(kind)
    if "generateName" in metadata:
        name = generate_name(metadata["generateName"])
    else:
        name = metadata.get("name", "")
    if not valid(name):
        out.append(f"{kind} name {name!r} is not a {what}")
    out += _label_problems(metadata.get("labels", {}), f"{kind} {name}")
    for path, template in pod_specs(document.get("spec", {})):
        out += _label_problems(template.get("metadata", {}).get("labels", {}), f"{kind} {name} pod template {path}")
    spec = document.get("spec", {})
    if kind == "Job" and spec.get("completionMode") == "Indexed":
        for host in indexed_job_host_names(name, int(spec.get("completions", 1))):
            if not is_dns1123_label(host):
                out.append(f"Job {name}: pod host name {host!r} is not a DNS-1123 label")
        subdomain = spec.get("template", {}).get("spec", {}).get("subdomain")
        if subdomain is not None and not is_dns1123_label(subdomain):
            out.append(f"Job {name}: subdomain {subdomain!r} is not a DNS-1123 label")
    return out


def rbac_allows(rules: list[dict[str, Any]], group: str, resource: str, verb: str) -> bool:
    """Whether a Role's rules allow ``verb`` on ``resource`` (``plural`` or ``plural/subresource``) of API
    ``group``: a rule matches when it lists the group, the resource and the verb (or ``*``)."""
    for rule in rules:
        if rule.get("resourceNames"):
            continue  # generated names are not known in advance: name-restricted rules never match them
        if (group in rule.get("apiGroups", []) or "*" in rule.get("apiGroups", [])) and \
                (resource in rule.get("resources", []) or "*" in rule.get("resources", [])) and \
                (verb in rule.get("verbs", []) or "*" in rule.get("verbs", [])):
            return True
    return False


def owner_reference_requirements(group: str, resource: str, owner_group: str, owner_resource: str,
                                 block_owner_deletion: bool) -> list[tuple[str, str, str]]:
    """(group, resource, verb) a user needs, under OwnerReferencesPermissionEnforcement, to create an object
    of ``group``/``resource`` with an owner reference: ``delete`` on the object ("cannot set an ownerRef on
    a resource you can't delete"), and with ``blockOwnerDeletion`` ``update`` on the owner's
    ``finalizers`` subresource ("cannot set blockOwnerDeletion if an ownerReference refers to a resource
    you can't set finalizers on")."""
    needed = [(group, resource, "delete")]
    if block_owner_deletion:
        needed.append((owner_group, f"{owner_resource}/finalizers", "update"))
    return needed


def owner_in_reach(owner_namespace: str, dependent_namespace: str | None, default_namespace: str) -> bool:
    """Whether a namespaced owner can own a dependent (which lands in ``default_namespace`` when it names
    none): only in its own namespace."""
    return owner_namespace == (dependent_namespace or default_namespace)
