"""Argo CD's rules on pruning, sync status and ignored differences, for tests of what a GitOps sync does.

Source: argoproj/argo-cd @ 37ee0097cf851bc2dd7665fc081bbce61a7e836e (``git describe`` v0.8.0-10899, August
2026; gitops-engine is vendored in the repository):

* ``docs/user-guide/sync-options.md`` "No Prune Resources" and ``gitops-engine/pkg/sync/sync_context.go``
  isPruningDisabled: a live resource that is no longer in Git is pruned on a sync with pruning, unless
  its annotation ``argocd.argoproj.io/sync-options`` holds ``Prune=false``; "the app will be out of sync
  if Argo CD expects a resource to be pruned".
* ``docs/user-guide/compare-options.md`` and ``controller/state.go`` (the sync status loop): a resource
  that needs pruning (in the cluster, not in Git) makes the application OutOfSync unless its annotation
  ``argocd.argoproj.io/compare-options`` holds ``IgnoreExtraneous``.
* ``gitops-engine/pkg/sync/...`` resourceutil.GetAnnotationOptionValue: an option annotation is a
  ``,``-separated list of ``Key=value`` items.
* ``docs/user-guide/diffing.md``: an Application's ``spec.ignoreDifferences`` entries (group, kind, and
  optionally name and namespace) remove ``jsonPointers`` from both sides before comparing.
"""

from __future__ import annotations

from typing import Any

__all__ = ["annotation_options", "pruned", "out_of_sync_when_extraneous", "ignored"]


def annotation_options(document: dict[str, Any], annotation: str) -> dict[str, str]:
    value = (document.get("metadata", {}).get("annotations") or {}).get(annotation, "")
    out = {}
    for item in value.split(","):
        key, _, option = item.strip().partition("=")
        if key:
            out[key] = option
    return out


def pruned(live: dict[str, Any], app_prunes: bool = True) -> bool:
    """Whether a sync deletes ``live`` once it is no longer in Git."""
    option = annotation_options(live, "argocd.argoproj.io/sync-options").get("Prune")
    if option == "false":
        return False
    return app_prunes


def out_of_sync_when_extraneous(live: dict[str, Any]) -> bool:
    """Whether ``live``, kept in the cluster but no longer in Git, makes the application OutOfSync."""
    return "IgnoreExtraneous" not in annotation_options(live, "argocd.argoproj.io/compare-options")


def ignored(ignore_differences: list[dict[str, Any]], document: dict[str, Any], pointer: str) -> bool:
    """Whether an Application's ``ignoreDifferences`` removes ``pointer`` of ``document`` from the diff."""
    group = document["apiVersion"].rpartition("/")[0]
    metadata = document.get("metadata", {})
    for entry in ignore_differences:
        if entry.get("group", "") != group or entry.get("kind") != document["kind"]:
            continue
        if "name" in entry and entry["name"] != metadata.get("name"):
            continue
        if "namespace" in entry and entry["namespace"] != metadata.get("namespace"):
            continue
        if pointer in entry.get("jsonPointers", []):
            return True
    return False
