"""Stage 1b: standards — a spec's base specs merged under it, and the policy files that apply to it.

Steps of :func:`apply_standards`:

1. project — the governing ``tfspec.yaml`` (:mod:`tfspec.compiler.project`), if any: its ``bases`` come
   first, its ``policies`` apply to the spec.
2. bases — each base named by the project file or by ``extends:`` (a path, or a list of paths, relative to
   the file that names it) is loaded and its own ``extends:`` resolved first (a chain); bases are merged in
   order, then the spec itself over them, with the one merge rule of environment overlays
   (:func:`tfspec.compiler.resolve.merge_overlay`: ``targets`` by ``name``, mappings key by key, anything
   else replaced). A base may be partial (no ``model``, say): only the merged result must be a spec.
3. provenance — every position in the merged document is a ``FilePosition``: a diagnostic about a value
   set in a base points at the base's file:line:col.

A missing base or a cycle is an error at the ``extends:`` entry (or project-file line) that names it, and
so is a base outside the project (the folder of ``tfspec.yaml``, or the spec's folder without one) unless
the project file allows it, a file that is not ``.yaml``/``.yml``, or one that is not a regular file
(:func:`tfspec.compiler.standard_files.reference_problem`).
"""

from __future__ import annotations

import copy
import dataclasses
import os

from tfspec.base.errors import Diagnostic, SpecError
from tfspec.spec.loader import KeyPath, Position, SourceDocument

from .project import ProjectRef, default_scope, find_project_file, load_project
from .resolve import merge_overlay
from .standard_files import Scope, display_path, load_source, reference_problem, with_file_positions

__all__ = ["EXTENDS", "Standards", "apply_standards"]

EXTENDS = "extends"
_OVERLAY = "\x00overlay"  # a key prefix no YAML document can hold: where the overlay's positions sit while merging


@dataclasses.dataclass(frozen=True)
class Standards:
    """A spec with its bases merged under it.

    Attributes:
        document: the merged document (``extends`` removed); positions carry their files.
        layers: every file merged, in merge order (bases first, the spec last), as loaded: what
            ``tfspec explain`` walks to say which file set a value and what it overrode.
        sources: absolute paths of the project file, the bases and the policy files (sorted): a change to
            any of them changes the spec's output.
        policies: the policy files that apply, in the order named.
    """

    document: SourceDocument
    layers: tuple[SourceDocument, ...]
    sources: tuple[str, ...]
    policies: tuple[ProjectRef, ...]


def apply_standards(document: SourceDocument, *, use_project: bool = True) -> Standards:
    """Merge the spec's bases under it and find its policies (raises :class:`SpecError`)."""
    project = None
    if use_project and os.path.isfile(document.file):
        found = find_project_file(document.file)
        project = load_project(found, document.file) if found else None
    defaults: list[tuple[ProjectRef, SourceDocument]] = [(ref, project.document) for ref in project.bases] if project else []
    sources: set[str] = {project.absolute} if project else set()
    policies: tuple[ProjectRef, ...] = project.policies if project else ()
    sources.update(ref.absolute for ref in policies)
    if not defaults and not (isinstance(document.tree, dict) and EXTENDS in document.tree):
        return Standards(document, (document,), tuple(sorted(sources)), policies)  # no bases: nothing to merge
    scope = project.scope if project else default_scope(document.file)
    layers: list[SourceDocument] = []
    tree, positions = _resolve(with_file_positions(document), os.path.abspath(document.file), (), defaults, layers,
                               sources, scope)
    merged = dataclasses.replace(document, tree=tree, positions=positions)
    return Standards(merged, tuple(layers), tuple(sorted(sources)), policies)


def _extends(document: SourceDocument) -> list[tuple[ProjectRef, SourceDocument]]:
    tree = document.tree
    if not isinstance(tree, dict) or EXTENDS not in tree:
        return []
    value = tree[EXTENDS]
    entries = [value] if isinstance(value, str) else value
    if not isinstance(entries, list) or not all(isinstance(e, str) and e for e in entries):
        raise SpecError([document.diagnostic((EXTENDS,), "'extends' must be a path or a list of paths to base specs")])
    folder = os.path.dirname(os.path.abspath(document.file))
    key_paths: list[KeyPath] = [(EXTENDS,)] if isinstance(value, str) else [(EXTENDS, i) for i in range(len(entries))]
    return [(ProjectRef(display_path(document.file, entry), os.path.normpath(os.path.join(folder, entry)), key_path),
             document) for entry, key_path in zip(entries, key_paths)]


def _resolve(document: SourceDocument, absolute: str, stack: tuple[str, ...],
             defaults: list[tuple[ProjectRef, SourceDocument]], layers: list[SourceDocument],
             sources: set[str], scope: Scope) -> tuple[dict, dict[KeyPath, Position]]:
    """The tree of ``document`` with its bases merged under it, and its positions."""
    if not isinstance(document.tree, dict):
        return document.tree, dict(document.positions)  # the parse stage reports a spec that is not a mapping
    stack = stack + (absolute,)
    tree: dict = {}
    positions: dict[KeyPath, Position] = {}
    for ref, referrer in defaults + _extends(document):
        if ref.absolute in stack:
            chain = " -> ".join(os.path.basename(p) for p in stack[stack.index(ref.absolute):] + (ref.absolute,))
            raise SpecError([referrer.diagnostic(ref.key_path, f"base spec cycle: {chain}",
                                                 "a base cannot extend a spec that extends it")])
        problem = reference_problem(ref.absolute, ref.display, "base spec", scope)
        if problem is not None:
            raise SpecError([referrer.diagnostic(ref.key_path, *problem)])
        base = load_source(ref.absolute, ref.display)
        if not isinstance(base.tree, dict):
            raise SpecError([base.diagnostic((), "a base spec must be a mapping of spec sections")])
        sources.add(ref.absolute)
        base_tree, base_positions = _resolve(base, ref.absolute, stack, [], layers, sources, scope)
        tree, positions = _merge(tree, positions, base_tree, base_positions, base)
    own = {k: v for k, v in document.tree.items() if k != EXTENDS}
    own_positions = {p: v for p, v in document.positions.items() if p[:1] != (EXTENDS,)}
    layers.append(document)
    return _merge(tree, positions, own, own_positions, document)


def _merge(tree: dict, positions: dict[KeyPath, Position], overlay: dict, overlay_positions: dict[KeyPath, Position],
           overlay_document: SourceDocument) -> tuple[dict, dict[KeyPath, Position]]:
    """``overlay`` merged over ``tree``. ``tree`` and ``positions`` (built by earlier merges, never a loaded
    document's) are changed in place; ``overlay`` is copied where it is merged in, so a remembered base
    document is never changed.

    Sections the tree does not have yet are set directly (what the merge rule does with them), so the
    rule's position bookkeeping only sees the sections both sides set.
    """
    shared = {key: value for key, value in overlay.items() if key in tree}
    for key, value in overlay.items():
        if key not in shared:
            tree[key] = copy.deepcopy(value)
    fresh: dict[KeyPath, Position] = {}
    combined = positions
    for path, position in overlay_positions.items():
        if not path:
            continue
        if path[0] in shared:
            combined[(_OVERLAY,) + path] = position
        else:
            fresh[path] = position
    scratch = dataclasses.replace(overlay_document, tree=tree, positions=combined)
    problems: list[Diagnostic] = []
    merge_overlay(tree, shared, (_OVERLAY,), combined, scratch, problems)
    if problems:
        raise SpecError([dataclasses.replace(d, path=d.path.removeprefix(_OVERLAY + ".")) for d in problems])
    out = {path: position for path, position in combined.items() if path[:1] != (_OVERLAY,)}
    out.update(fresh)
    out[()] = overlay_positions.get((), positions.get((), (1, 1)))
    return tree, out
