"""``tfspec explain SPEC KEY.PATH``: which file set a value, and what it overrode.

The spec's layers (bases in merge order, the spec, then the environment overlay with ``-e``) are walked for
the key path; a target can be named by its ``name`` (``targets.serving.kubernetes.replicas``) or its index
(``targets[1].kubernetes.replicas``). A value that no file sets is tfspec's default, shown from the
resolved spec.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from tfspec.base.errors import Diagnostic, SpecError, cap, format_path
from tfspec.spec.loader import KeyPath, SourceDocument, load_yaml

from .bases import apply_standards
from .resolve import VARIABLE_REFERENCE, apply_environment, expand_variables

__all__ = ["Setting", "Explanation", "explain"]

_MISSING = object()


@dataclasses.dataclass(frozen=True)
class Setting:
    """One file's value for the key path."""

    file: str
    line: int
    column: int
    value: Any
    layer: str
    """``base``, ``spec`` or ``environment <name>``."""

    def format(self) -> str:
        return f"{self.file}:{self.line}:{self.column} ({self.layer}): {_show(self.value)}"


@dataclasses.dataclass(frozen=True)
class Explanation:
    """Where a value came from: the setting in effect, and the ones it replaced (latest first)."""

    path: str
    value: Any
    set_by: Setting | None
    overridden: tuple[Setting, ...]
    default: bool
    """True when no file sets the value: it is tfspec's default (or derived from other values)."""
    written: Any = None
    """The value as the file writes it, when it holds ``${VAR}`` references (``value`` is then the expanded one)."""
    variables: tuple[str, ...] = ()
    """Where each variable's value came from: ``SEED=11 (environment)`` or ``SEED unset: default 7``."""

    def format(self) -> str:
        lines = [f"{cap(self.path)} = {_show(self.value)}"]
        if self.variables:
            lines.append(f"  from      {_show(self.written)}: {'; '.join(self.variables)}")
        if self.set_by is None:
            lines.append("  not set in any file: tfspec's default")
        else:
            lines.append(f"  set by    {self.set_by.format()}")
        lines += [f"  overrides {s.format()}" for s in self.overridden]
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {"path": self.path, "value": self.value, "default": self.default, "written": self.written,
                "variables": list(self.variables),
                "set_by": dataclasses.asdict(self.set_by) if self.set_by else None,
                "overridden": [dataclasses.asdict(s) for s in self.overridden]}


def _show(value: Any) -> str:
    """A value as JSON, cut like every echoed value (a whole section would be thousands of characters)."""
    return cap(json.dumps(value, sort_keys=True, default=str))


_KEY_PATH = re.compile(r"[A-Za-z0-9_-]+(\[[0-9]+\])*(\.[A-Za-z0-9_-]+(\[[0-9]+\])*)*")
_HOW = "write it as diagnostics do: targets[1].kubernetes.replicas, or targets.serving.kubernetes.replicas"


def _parse(text: str, tree: Any, document: SourceDocument) -> KeyPath:
    """``targets.serving.gpus`` / ``targets[1].gpus`` → a key path of ``tree``."""
    if not _KEY_PATH.fullmatch(text):
        raise SpecError([Diagnostic(document.file, 1, 1, "<root>", f"KEY.PATH {cap(text)!r} is not a key path", _HOW)])
    path: list[str | int] = []
    node = tree
    for segment in text.replace("[", ".[").split("."):
        if not segment:
            continue
        key: str | int = segment
        if segment.startswith("[") and segment.endswith("]"):
            key = int(segment[1:-1])
            if isinstance(node, list) and key >= len(node):
                raise SpecError([document.diagnostic(tuple(path), f"{format_path(tuple(path))} has {len(node)} "
                                                     f"item{'s' if len(node) != 1 else ''}: there is no [{cap(str(key), 20)}]")])
        elif isinstance(node, list):
            names = [i for i, item in enumerate(node) if isinstance(item, dict) and item.get("name") == segment]
            if not names:
                raise SpecError([document.diagnostic(tuple(path), f"no item named {cap(segment)!r} in "
                                                                  f"{format_path(tuple(path))}")])
            key = names[0]
        path.append(key)
        node = _get(node, (key,))
    return tuple(path)


def _get(tree: Any, path: KeyPath) -> Any:
    for key in path:
        if isinstance(tree, dict) and isinstance(key, str) and key in tree:
            tree = tree[key]
        elif isinstance(tree, list) and isinstance(key, int) and 0 <= key < len(tree):
            tree = tree[key]
        else:
            return _MISSING
    return tree


def _in_layer(tree: Any, path: KeyPath, merged: Any) -> KeyPath | None:
    """``path`` of the merged tree as it is written in one layer (targets found by ``name``)."""
    out: list[str | int] = []
    node, merged_node = tree, merged
    for key in path:
        if isinstance(key, int) and isinstance(merged_node, list) and out == ["targets"]:
            if not 0 <= key < len(merged_node):
                return None
            name = merged_node[key].get("name") if isinstance(merged_node[key], dict) else None
            matches = [i for i, item in enumerate(node) if isinstance(item, dict) and item.get("name") == name] \
                if isinstance(node, list) else []
            if not matches:
                return None
            out.append(matches[0])
            node = node[matches[0]]
        else:
            node = _get(node, (key,))
            if node is _MISSING:
                return None
            out.append(key)
        merged_node = _get(merged_node, (key,))
    return tuple(out)


def explain(spec: str, key_path: str, env: str | None = None) -> Explanation:
    """Explain where ``key_path`` of ``spec`` comes from (raises :class:`SpecError`)."""
    document = load_yaml(spec)
    standards = apply_standards(document)
    merged = apply_environment(standards.document, env) if env is not None else standards.document
    path = _parse(key_path, merged.tree, merged)
    layers: list[tuple[str, SourceDocument, KeyPath]] = []
    for index, layer in enumerate(standards.layers):
        layers.append(("spec" if index == len(standards.layers) - 1 else "base", layer, ()))
    if env is not None:
        layers.append((f"environment {env}", standards.document, ("environments", env)))
    settings: list[Setting] = []
    for label, layer, prefix in layers:
        tree = _get(layer.tree, prefix)
        if tree is _MISSING:
            continue
        found = _in_layer(tree, path, merged.tree)
        if found is None:
            continue
        line, column = layer.position(prefix + found)
        settings.append(Setting(layer.file_of(prefix + found), line, column, _get(tree, found), label))
    value = _get(merged.tree, path)
    if value is _MISSING:
        resolved = _resolved_tree(spec, env)
        value = _get(resolved, path)
        if value is _MISSING:
            raise SpecError([Diagnostic(spec, 1, 1, format_path(path), "no such key in the spec, its bases or tfspec's "
                                        "defaults", _did_you_mean(resolved, path))])
        return Explanation(format_path(path), value, None, (), True)
    expanded, variables = _expanded(value, os.environ)
    return Explanation(format_path(path), expanded, settings[-1] if settings else None,
                       tuple(reversed(settings[:-1])), not settings,
                       written=value if variables else None, variables=variables)


def _expanded(value: Any, environ: Mapping[str, str]) -> tuple[Any, tuple[str, ...]]:
    """``value`` with its ``${VAR}`` / ``${VAR:-default}`` references expanded as ``tfspec build`` does
    (:func:`~.resolve.expand_variables`), and where each variable's value came from."""
    if not isinstance(value, str) or "${" not in value:
        return value, ()
    origins = []
    for match in VARIABLE_REFERENCE.finditer(value):
        name, default = match.group(1), match.group(2)
        if name is None:
            continue
        if name in environ:
            origins.append(f"{name}={environ[name]!r} (environment)")
        elif default is not None:
            origins.append(f"{name} unset: default {default!r}")
        else:
            origins.append(f"{name} unset and no default: tfspec build fails")
    document = SourceDocument(file="<explain>", text="", sha256="", tree={"value": value}, positions={})
    try:
        expanded = expand_variables(document, environ).tree["value"]
    except SpecError:
        expanded = value
    return expanded, tuple(origins)


def _did_you_mean(tree: Any, path: KeyPath) -> str | None:
    """The closest existing key at the first segment of ``path`` that does not exist."""
    node = tree
    for index, key in enumerate(path):
        if isinstance(node, dict) and isinstance(key, str) and key not in node:
            close = difflib.get_close_matches(key, [k for k in node if isinstance(k, str)], n=1, cutoff=0.6)
            if not close:
                return None
            return "did you mean " + format_path(tuple(path[:index]) + (close[0],)) + "?"
        node = _get(node, (key,))
        if node is _MISSING:
            return None
    return None

def _resolved_tree(spec: str, env: str | None) -> Any:
    from .pipeline import compile_spec

    result = compile_spec(spec, env=env)
    if result.resolved is None:
        raise SpecError(list(result.diagnostics))
    return result.resolved.spec.model_dump(mode="json")
