"""The project file ``tfspec.yaml``: default base specs and policy files for every spec below its folder.

Found like ``pyproject.toml``: the first ``tfspec.yaml`` in the spec's folder or one of its parents, up to
the repository root (a folder holding ``.git``) or the filesystem root. It is not a spec (no
``api_version`` line, so folder builds never compile it)::

    bases: [standards/base.yaml]          # merged under every spec, before the spec's own `extends:`
    policies: [standards/policies.yaml]   # CEL rules every spec must pass
    external_locations: false             # true: bases and policy files may lie outside this folder

Paths are relative to the project file's folder, and must stay inside it (the project root) unless
``external_locations: true``. A ``tfspec.yaml`` that is not a readable regular file (a folder, a FIFO, a
dangling link) is an error, not "no project file": the policies it names would otherwise be skipped.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path

from tfspec.base.errors import Diagnostic, SpecError, cap
from tfspec.spec.files import file_problem
from tfspec.spec.loader import KeyPath, SourceDocument

from .standard_files import Scope, display_path, load_source, reference_problem

__all__ = ["PROJECT_FILE", "ProjectFile", "ProjectRef", "find_project_file", "load_project", "default_scope"]

PROJECT_FILE = "tfspec.yaml"
_KEYS = ("bases", "policies", "external_locations")
_WHAT = {"bases": "base spec", "policies": "policy file"}


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
    external_locations: bool = False

    @property
    def scope(self) -> Scope:
        """Where the bases and policy files of specs governed by this file may be read from."""
        return Scope(os.path.dirname(self.absolute), self.external_locations, kind="the folder of tfspec.yaml")


def find_project_file(spec_path: str | Path) -> str | None:
    """Absolute path of the ``tfspec.yaml`` that governs ``spec_path``, or None. Anything of that name counts
    (a folder, a broken link): :func:`load_project` then says what is wrong with it."""
    folder = os.path.dirname(os.path.abspath(spec_path))
    while True:
        candidate = os.path.join(folder, PROJECT_FILE)
        if os.path.lexists(candidate):
            return candidate
        parent = os.path.dirname(folder)
        if parent == folder or os.path.exists(os.path.join(folder, ".git")):
            return None
        folder = parent


def default_scope(spec_path: str | Path) -> Scope:
    """Where a spec without a project file may read base specs from: its repository (the nearest folder
    above it holding ``.git``), else its own folder."""
    folder = os.path.dirname(os.path.abspath(spec_path))
    candidate = folder
    while True:
        if os.path.exists(os.path.join(candidate, ".git")):
            return Scope(candidate, kind="the repository root")
        parent = os.path.dirname(candidate)
        if parent == candidate:
            return Scope(folder, kind="the spec's folder")
        candidate = parent


def load_project(absolute: str, spec_display: str) -> ProjectFile:
    """Read and check a project file; its paths are resolved against its folder (raises :class:`SpecError`)."""
    spec_folder = os.path.dirname(os.path.abspath(spec_display))
    display = display_path(spec_display, os.path.relpath(absolute, spec_folder))
    problem = file_problem(absolute)
    if problem is not None:  # not "no project file": the bases and policies it names would be skipped
        raise SpecError([Diagnostic(display, 1, 1, "<root>", f"the project file {problem}",
                                    "tfspec.yaml names the bases and policies of every spec below its folder: "
                                    "make it a YAML file, or remove it")])
    document = load_source(absolute, display)
    tree = document.tree
    if not isinstance(tree, dict):
        raise SpecError([document.diagnostic((), "a project file must be a mapping with 'bases' and/or 'policies'")])
    problems = []
    for key in tree:
        if key not in _KEYS:
            close = difflib.get_close_matches(str(key), _KEYS, n=1)
            problems.append(document.diagnostic((key,), f"unknown key {cap(str(key))!r} in the project file",
                                                f"did you mean {close[0]!r}?" if close else
                                                "allowed: " + ", ".join(_KEYS)))
    external = tree.get("external_locations", False)
    if not isinstance(external, bool):
        problems.append(document.diagnostic(("external_locations",), "'external_locations' must be true or false"))
        external = False
    scope = Scope(os.path.dirname(absolute), external, kind="the folder of tfspec.yaml")
    refs: dict[str, tuple[ProjectRef, ...]] = {}
    for key in ("bases", "policies"):
        value = tree.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            problems.append(document.diagnostic((key,), f"'{key}' must be a list of file paths"))
            continue
        refs[key] = tuple(ProjectRef(display_path(display, v), os.path.normpath(os.path.join(os.path.dirname(absolute), v)),
                                     (key, i)) for i, v in enumerate(value))
        for ref in refs[key]:
            problem = reference_problem(ref.absolute, ref.display, _WHAT[key], scope)
            if problem is not None:
                problems.append(document.diagnostic(ref.key_path, *problem))
    if problems:
        raise SpecError(problems)
    return ProjectFile(document, absolute, refs["bases"], refs["policies"], external)
