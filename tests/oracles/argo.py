"""Argo Workflows' rules for a resource template and a workflow's lifetime, for tests of generated workflows.

Sources: argoproj/argo-workflows @ f016ad89eb269d282aec06dc491c29f396a38df4 (v4.1.2 changelog, ``git
describe`` v4.1.0-rc2-80), and the selector parser it uses, kubernetes/apimachinery ``pkg/labels/selector.go``
(Argo's go.mod: k8s.io/apimachinery v0.35.4; read at eed236ceee2c19c2753a3d93ac0631dc20750454).

* ``workflow/executor/resource.go`` WaitResource: ``successCondition`` and ``failureCondition`` are parsed
  with ``labels.Parse`` (so every key must be a valid label key: letters, digits, ``-``, ``_``, ``.``, an
  optional DNS prefix and ``/``; a key such as ``status.conditions.#(type=="Failed")`` does not parse); a
  key is looked up in the object's JSON as a gjson path (``gjsonLabels``: ``.``-separated, a number
  indexes an array). ``matchConditions`` evaluates every *failure* requirement first and fails the step as
  soon as one matches (requirements of a failure condition are alternatives), then succeeds when *all*
  success requirements match; otherwise it polls again, without a time limit of its own
  (``wait.PollUntilContextCancel``): only the workflow's ``activeDeadlineSeconds`` bounds the wait.
* apimachinery ``Requirement.Matches``: ``=``/``==``/``in`` need the key to exist and equal a value;
  ``!=``/``notin`` match a missing key; ``>``/``<`` parse both sides as integers (no match otherwise);
  a bare key is ``exists``, ``!key`` ``does not exist``.
* ``workflow/controller/operator.go`` executeResource: ``setOwnerReference`` adds
  ``metav1.NewControllerRef(workflow)`` (controller and ``blockOwnerDeletion: true``) to the manifest, which
  the executor creates (``argoexec resource create``) with the executor's ServiceAccount, then reads back
  (``get``) until a condition matches.
* ``util/secrets/secret_name.go`` TokenNameForServiceAccount: the executor's token Secret is the account's
  first listed secret, else the one its ``workflows.argoproj.io/service-account-token.name`` annotation
  names, else ``<account>.service-account-token``.
* ``ttlStrategy`` (``secondsAfterCompletion``/``Success``/``Failure``): the controller deletes a finished
  workflow after that many seconds, and with it (owner references) what it created; without it, never.
"""

from __future__ import annotations

import json
import re
from typing import Any

from oracles.kubernetes import is_label_key

__all__ = ["parse_selector", "gjson_lookup", "resource_verdict", "token_secret_name", "wait_bound",
           "deleted_after", "executor_needs"]

_REQUIREMENT = re.compile(r"^\s*(?P<neg>!)?\s*(?P<key>[^\s!=<>(),]+)\s*(?:(?P<op>==|=|!=|>|<|\bin\b|\bnotin\b)\s*"
                          r"(?P<value>\([^)]*\)|[^\s,()]*))?\s*$")


def _split(selector: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return parts


def parse_selector(selector: str) -> list[tuple[str, str, list[str]]]:
    """(key, operator, values) of each requirement; ValueError for what ``labels.Parse`` rejects."""
    out = []
    for part in _split(selector):
        match = _REQUIREMENT.match(part)
        if match is None:
            raise ValueError(f"cannot parse requirement {part!r}")
        key = match["key"]
        if not is_label_key(key):
            raise ValueError(f"key {key!r} is not a valid label key")
        if match["neg"]:
            if match["op"]:
                raise ValueError(f"'!' before a binary requirement: {part!r}")
            out.append((key, "!", []))
            continue
        if not match["op"]:
            out.append((key, "exists", []))
            continue
        op, raw = match["op"], match["value"]
        values = [v.strip() for v in raw.strip("()").split(",")] if op in ("in", "notin") else [raw]
        if op in (">", "<"):
            int(values[0])  # ValueError like apimachinery's "must be an integer"
        out.append((key, op, values))
    return out


def gjson_lookup(document: Any, path: str) -> tuple[bool, str]:
    """(exists, String()) of a plain gjson path: ``.``-separated keys, a number indexing an array."""
    value = document
    for part in path.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return False, ""
    if isinstance(value, str):
        return True, value
    if isinstance(value, bool):
        return True, "true" if value else "false"
    return True, json.dumps(value, separators=(",", ":"))


def _matches(document: Any, requirement: tuple[str, str, list[str]]) -> bool:
    key, op, values = requirement
    exists, value = gjson_lookup(document, key)
    if op == "exists":
        return exists
    if op == "!":
        return not exists
    if op in ("=", "==", "in"):
        return exists and value in values
    if op in ("!=", "notin"):
        return not exists or value not in values
    if not exists:
        return False
    try:
        number = int(value)
    except ValueError:
        return False
    return number > int(values[0]) if op == ">" else number < int(values[0])


def resource_verdict(document: Any, success: str, failure: str) -> str:
    """``failed``, ``succeeded`` or ``waiting``: one poll of a resource template (matchConditions)."""
    if failure and any(_matches(document, r) for r in parse_selector(failure)):
        return "failed"
    if success and all(_matches(document, r) for r in parse_selector(success)):
        return "succeeded"
    return "waiting"


def token_secret_name(account: dict[str, Any]) -> str:
    if account.get("secrets"):
        return account["secrets"][0]["name"]
    annotations = account.get("metadata", {}).get("annotations", {})
    annotation = annotations.get("workflows.argoproj.io/service-account-token.name")
    return annotation or f"{account['metadata']['name']}.service-account-token"


def wait_bound(workflow_spec: dict[str, Any]) -> int | None:
    """Seconds after which a resource template still waiting is stopped: the workflow's deadline, or None."""
    return workflow_spec.get("activeDeadlineSeconds")


def deleted_after(workflow_spec: dict[str, Any], phase: str) -> int | None:
    """Seconds after finishing (``Succeeded`` or ``Failed``) at which the controller deletes a workflow."""
    ttl = workflow_spec.get("ttlStrategy") or {}
    specific = ttl.get("secondsAfterSuccess" if phase == "Succeeded" else "secondsAfterFailure")
    return specific if specific is not None else ttl.get("secondsAfterCompletion")


def executor_needs(manifest: dict[str, Any], set_owner_reference: bool) -> list[tuple[str, str, str]]:
    """(group, resource, verb) the executor's account needs for a ``create`` resource template that waits
    on its conditions: create it, read it back; with an owner reference, what the API server's
    OwnerReferencesPermissionEnforcement asks (see ``kubernetes.owner_reference_requirements``)."""
    from oracles.kubernetes import owner_reference_requirements

    group = manifest["apiVersion"].rpartition("/")[0]
    resource = manifest["kind"].lower() + "s"
    needed = [(group, resource, "create"), (group, resource, "get")]
    if set_owner_reference:
        needed += owner_reference_requirements(group, resource, "argoproj.io", "workflows", block_owner_deletion=True)
    return needed
