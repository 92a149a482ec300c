"""The project file ``tfspec.yaml``: default base specs and policy files for every spec below its folder.

Found like ``pyproject.toml``: the first ``tfspec.yaml`` in the spec's folder or one of its parents, up to
the repository root (a folder holding ``.git``) or the filesystem root. It is not a spec (no
``api_version`` line, so folder builds never compile it)::

    bases: [standards/base.yaml]          # merged under every spec, before the spec's own `extends:`
    policies: [standards/policies.yaml]   # CEL rules every spec must pass

Paths are relative to the project file's folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path

from tfspec.spec.errors import SpecError
from tfspec.spec.loader import KeyPath, SourceDocument

from .standard_files import display_path, load_source

__all__ = ["PROJECT_FILE", "ProjectFile", "ProjectRef", "find_project_file", "load_project"]

PROJECT_FILE = "tfspec.yaml"
_KEYS = ("bases", "policies")


@dataclasses.dataclass(frozen=True)
class ProjectRef:
    """One path named by a project file (or an ``extends:`` entry): where it points and where it is written."""

    display: str
    """The file as shown in messages (relative to the spec's display path)."""
    absolute: str
    """The file on disk."""
    key_path: KeyPath
    """Where the reference is written in its own document (for positions)."""


@dataclasses.dataclass(frozen=True)
class ProjectFile:
    """A loaded ``tfspec.yaml``."""

    document: SourceDocument
    absolute: str
    bases: tuple[ProjectRef, ...]
    policies: tuple[ProjectRef, ...]


def find_project_file(spec_path: str | Path) -> str | None:
    """Absolute path of the ``tfspec.yaml`` that governs ``spec_path``, or None."""
    folder = os.path.dirname(os.path.abspath(spec_path))
    while True:
        candidate = os.path.join(folder, PROJECT_FILE)
        if os.path.isfile(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder or os.path.exists(os.path.join(folder, ".git")):
            return None
        folder = parent


def load_project(absolute: str, spec_display: str) -> ProjectFile:
    """Read and check a project file; its paths are resolved against its folder (raises :class:`SpecError`)."""
    spec_folder = os.path.dirname(os.path.abspath(spec_display))
    display = display_path(spec_display, os.path.relpath(absolute, spec_folder))
    document = load_source(absolute, display)
    tree = document.tree
    if not isinstance(tree, dict):
        raise SpecError([document.diagnostic((), "a project file must be a mapping with 'bases' and/or 'policies'")])
    problems = []
    for key in tree:
        if key not in _KEYS:
            close = difflib.get_close_matches(str(key), _KEYS, n=1)
            problems.append(document.diagnostic((key,), f"unknown key {key!r} in the project file",
                                                f"did you mean {close[0]!r}?" if close else "allowed: bases, policies"))
    refs: dict[str, tuple[ProjectRef, ...]] = {}
    for key in _KEYS:
        value = tree.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            problems.append(document.diagnostic((key,), f"'{key}' must be a list of file paths"))
            continue
        refs[key] = tuple(ProjectRef(display_path(display, v), os.path.normpath(os.path.join(os.path.dirname(absolute), v)),
                                     (key, i)) for i, v in enumerate(value))
    if problems:
        raise SpecError(problems)
    return ProjectFile(document, absolute, refs["bases"], refs["policies"])
