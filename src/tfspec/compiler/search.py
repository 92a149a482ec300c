"""The ``search`` section, compiler side: key paths, trial overlays and the checks run before any trial.

A trial's values are an environment overlay (``environments.searched``) built in memory from the base tree,
so a trial goes through exactly the merge and validation rules of ``tfspec build -e NAME``. Every bound and
choice of every parameter is applied the same way before a search starts: a value the spec would reject is
an error at the parameter's line (exit 2), not a failed trial an hour later. No TensorFlow, no Optuna.
"""

from __future__ import annotations

import copy
import difflib
import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from tfspec.base.errors import Diagnostic, SpecError, format_path
from tfspec.spec.loader import KeyPath, SourceDocument
from tfspec.spec.search import Choice, FloatRange, IntRange, Minimize, Search

from .targets import target_kinds

if TYPE_CHECKING:
    from .inputs import InputDigests
    from .resolve import ResolvedSpec

__all__ = ["SEARCHED_ENV", "SEARCHABLE_SECTIONS", "parse_key_path", "overlay_for", "trial_document",
           "study_content", "study_name", "check_search", "check_objective", "bound_values"]

SEARCHED_ENV = "searched"
"""The environment a trial runs as, and the name of the overlay a search writes."""
SEARCHABLE_SECTIONS = ("data", "model", "training", "compression", "targets")

_TOKEN = re.compile(r"([a-z_][a-z0-9_]*)|\[([0-9]+)\]|\.")

Resolver = Callable[[SourceDocument, str], Any]
"""``resolve_document(document, env)``: raises :class:`SpecError` when the overlaid spec is invalid."""


def parse_key_path(text: str) -> KeyPath:
    """``model.layers[0].units`` → ``("model", "layers", 0, "units")``."""
    path: list[str | int] = []
    for match in _TOKEN.finditer(text):
        if match.group(1) is not None:
            path.append(match.group(1))
        elif match.group(2) is not None:
            path.append(int(match.group(2)))
    return tuple(path)


def _missing_at(tree: Any, path: KeyPath) -> int | None:
    """Index of the first element of ``path`` that the tree lacks (the leaf may be unset: a default)."""
    node = tree
    for depth, key in enumerate(path):
        last = depth == len(path) - 1
        if isinstance(key, int):
            if not isinstance(node, list) or key >= len(node):
                return depth
        elif not isinstance(node, dict) or (key not in node and not last):
            return depth
        elif last:
            return None
        node = node[key]
    return None


def overlay_for(tree: Mapping[str, Any], assignments: Mapping[KeyPath, Any]) -> dict[str, Any]:
    """The environment overlay that sets each key path to its value over the base ``tree``.

    Mappings are deep-merged by the overlay rules, so only the changed keys are written, down to the first
    list: lists are replaced whole (``model.layers``), ``compression`` always is, and ``targets`` are
    matched by ``name``. A ``null`` deletes a key (how a changed ``kind`` sheds keys the new kind lacks).
    """
    overlay: dict[str, Any] = {}
    for path, value in assignments.items():
        section = path[0]
        if section == "compression":
            overlay.setdefault("compression", copy.deepcopy(tree.get("compression", [])))
            _set(overlay["compression"], path[1:], value)
        elif section == "targets":
            index = path[1]
            name = tree["targets"][index]["name"]
            targets = overlay.setdefault("targets", [])
            entry = next((t for t in targets if t["name"] == name), None)
            if entry is None:
                entry = {"name": name}
                targets.append(entry)
            _set_sparse(entry, tree["targets"][index], path[2:], value)
        else:
            _set_sparse(overlay.setdefault(section, {}), tree.get(section, {}), path[1:], value)
    return overlay


def _set(node: Any, path: KeyPath, value: Any) -> None:
    for key in path[:-1]:
        node = node[key]
    if value is None and isinstance(node, dict):
        node.pop(path[-1], None)  # inside a list replaced whole: leave the key out
    else:
        node[path[-1]] = value


def _set_sparse(overlay: dict[str, Any], base: Any, path: KeyPath, value: Any) -> None:
    """Write ``value`` at ``path`` under ``overlay``: nested mappings sparse, the first list whole."""
    key = path[0]
    if len(path) == 1:
        overlay[key] = value
        return
    child = base.get(key) if isinstance(base, dict) else None
    if isinstance(child, list):
        if not isinstance(overlay.get(key), list):
            overlay[key] = copy.deepcopy(child)
        _set(overlay[key], path[1:], value)
        return
    if not isinstance(overlay.get(key), dict):
        overlay[key] = {}
    _set_sparse(overlay[key], child if isinstance(child, dict) else {}, path[1:], value)


def trial_document(document: SourceDocument, overlay: Mapping[str, Any]) -> SourceDocument:
    """The spec with ``overlay`` as ``environments.searched`` (replacing one of that name) and without its
    ``search`` section: compile it with ``env="searched"``. Positions stay those of the base spec."""
    tree = {k: v for k, v in document.tree.items() if k != "search"}
    environments = dict(tree.get("environments") or {})
    environments[SEARCHED_ENV] = copy.deepcopy(dict(overlay))
    tree["environments"] = environments
    positions = {p: pos for p, pos in document.positions.items() if not p or p[0] != "search"}
    return dataclasses.replace(document, tree=tree, positions=positions)


def study_content(resolved: ResolvedSpec, inputs: InputDigests | None = None) -> dict[str, Any]:
    """What every trial's plan depends on except the values the search samples, and never the budget.

    ``resolved`` is the base spec's ``ResolvedSpec`` (variables expanded, bases merged, defaults filled),
    ``inputs`` its ``InputDigests`` (data files, builder modules, SavedModels, teacher specs by content).
    The searched key paths' own values in the base spec are left out (they are each trial's parameters),
    so are the other environments (a trial applies none of them) and ``search.budget``: raising
    ``budget.trials`` continues the study, editing ``training.epochs`` or the data starts a new one.
    """
    from tfspec.base.versions import RUNTIME_VERSIONS, TFSPEC_VERSION

    spec = resolved.spec.model_dump(mode="json")
    spec.pop("environments", None)
    search = spec.pop("search", None) or {}
    search.pop("budget", None)
    for parameter in resolved.spec.search.parameters if resolved.spec.search is not None else []:
        _drop(spec, parse_key_path(parameter.path))
    content = {"spec": spec, "search": search, "versions": {"tfspec": TFSPEC_VERSION, **RUNTIME_VERSIONS}}
    if inputs is not None:
        content["inputs"] = dict(sorted(inputs.content.items()))
        content["teachers"] = {str(i): t.fingerprint for i, t in sorted(inputs.teachers.items())}
    return content


def _drop(tree: Any, path: KeyPath) -> None:
    """Remove the value at ``path`` (nothing when the path is not there: a default the dump may lack)."""
    node = tree
    for key in path[:-1]:
        if isinstance(key, int) and isinstance(node, list) and key < len(node):
            node = node[key]
        elif isinstance(key, str) and isinstance(node, dict) and key in node:
            node = node[key]
        else:
            return
    if isinstance(node, dict):
        node.pop(path[-1], None)
    elif isinstance(node, list) and isinstance(path[-1], int) and path[-1] < len(node):
        node[path[-1]] = None


def study_name(spec_name: str, content: Mapping[str, Any]) -> str:
    """``<spec name>-<12 hex of content>`` (``content`` from :func:`study_content`): the same content
    (a restarted search, a second process, a raised budget) joins the study already there."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=str)
    return f"{spec_name}-{hashlib.sha256(text.encode('utf-8')).hexdigest()[:12]}"


def bound_values(parameter: IntRange | FloatRange | Choice) -> list[tuple[KeyPath, Any]]:
    """``(key path under the parameter, value)`` of every bound or choice, as a trial would set it."""
    if isinstance(parameter, Choice):
        return [(("choices", i), value) for i, value in enumerate(parameter.choices)]
    if isinstance(parameter, FloatRange):
        return [(("low",), float(parameter.low)), (("high",), float(parameter.high))]
    return [(("low",), parameter.low), (("high",), parameter.high)]


def resolve_overlaid(document: SourceDocument, assignments: Mapping[KeyPath, Any],
                     resolve: Resolver) -> tuple[Any, dict[str, Any]]:
    """Resolve the spec with ``assignments`` applied; a changed ``kind`` drops sibling keys the new kind
    does not take (``int8``'s ``representative_samples`` when a trial picks ``dynamic``).

    Returns the resolved spec and the overlay used; raises :class:`SpecError` if the spec rejects a value.
    """
    assignments = dict(assignments)
    for _ in range(8):
        overlay = overlay_for(document.tree, assignments)
        try:
            return resolve(trial_document(document, overlay), SEARCHED_ENV), overlay
        except SpecError as error:
            dropped = _unknown_siblings(error, assignments)
            if not dropped:
                raise
            assignments.update({path: None for path in dropped})
    raise AssertionError("unreachable: each retry drops at least one key")


def _unknown_siblings(error: SpecError, assignments: Mapping[KeyPath, Any]) -> list[KeyPath]:
    kinds = [path[:-1] for path, value in assignments.items() if path[-1] == "kind" and value is not None]
    dropped = []
    for diagnostic in error.diagnostics:
        for parent in kinds:
            match = re.fullmatch(re.escape(format_path(parent)) + r"\.([a-z_][a-z0-9_]*)", diagnostic.path)
            if match and diagnostic.message.startswith("unknown key") and parent + (match.group(1),) not in assignments:
                dropped.append(parent + (match.group(1),))
    return dropped


def check_search(document: SourceDocument, search: Search, resolved_targets: list[Any],
                 resolve: Resolver) -> list[Diagnostic]:
    """Every problem of the ``search`` section: key paths, bounds and choices the spec rejects, the objective.

    ``document`` has variables expanded; ``resolve`` is the pipeline's ``resolve_document``.
    """
    problems: list[Diagnostic] = []
    seen: dict[KeyPath, int] = {}
    for index, parameter in enumerate(search.parameters):
        here: KeyPath = ("search", "parameters", index)
        path = parse_key_path(parameter.path)
        if path[0] not in SEARCHABLE_SECTIONS:
            problems.append(document.diagnostic(here + ("path",), f"{parameter.path!r} cannot be searched",
                                                "search values under " + ", ".join(SEARCHABLE_SECTIONS)))
            continue
        if len(path) < (3 if path[0] == "targets" else 2):
            problems.append(document.diagnostic(here + ("path",), f"{parameter.path!r} names a whole section or "
                                                "target, not one value", "name a value inside it, e.g. "
                                                "targets[0].quantization.kind"))
            continue
        if path in seen:
            problems.append(document.diagnostic(here + ("path",), f"{parameter.path!r} is already searched by "
                                                f"search.parameters[{seen[path]}]"))
            continue
        seen[path] = index
        missing = _missing_at(document.tree, path)
        if missing is not None:
            known = format_path(path[:missing]) or "the spec"
            problems.append(document.diagnostic(here + ("path",), f"{parameter.path!r} does not exist in the spec",
                                                f"{known} has no {format_path(path[missing:missing + 1])!r}"))
            continue
        for where, value in bound_values(parameter):
            try:
                resolve_overlaid(document, {path: value}, resolve)
            except SpecError as error:
                first = error.diagnostics[0]
                if first.path == format_path(path) and first.message.startswith("unknown key"):
                    problems.append(document.diagnostic(here + ("path",), f"{parameter.path!r} does not exist in "
                                                        "the spec", first.hint))
                    break
                problems.append(document.diagnostic(here + where, f"{parameter.path} = {json.dumps(value)} is not "
                                                    f"a valid spec: {first.path}: {first.message}", first.hint))
                break  # one line per parameter: its other bound usually fails the same way
    problems.extend(check_objective(document, search, resolved_targets))
    return problems


def check_objective(document: SourceDocument, search: Search, targets: list[Any]) -> list[Diagnostic]:
    """The objective names a target whose kind measures the objective's metrics (``TargetKind.metrics``)."""
    objective = search.objective
    where: KeyPath = ("search", "objective", "target")
    wanted = [objective.metric] if isinstance(objective, Minimize) else list(objective.metrics)
    measuring = [entry.kind for entry in target_kinds() if set(wanted) <= set(entry.metrics)]
    measured = {t.name: t for t in targets if t.kind in measuring}
    if objective.target not in measured:
        others = [t.name for t in targets if t.name == objective.target]
        kinds = ", ".join(measuring[:-1]) + " and " + measuring[-1] if len(measuring) > 1 else "".join(measuring)
        message = (f"target {objective.target!r} is not measured (only {kinds} targets are)" if others
                   else f"no target named {objective.target!r}")
        close = difflib.get_close_matches(objective.target, sorted(measured), n=1)
        hint = (f"did you mean {close[0]!r}?" if close else ("measured targets: " + ", ".join(sorted(measured)))
                if measured else f"add a {' or '.join(measuring)} target")
        return [document.diagnostic(where, message, hint)]
    return []
