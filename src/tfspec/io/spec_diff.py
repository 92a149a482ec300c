"""``tfspec diff``: what a change to a folder of specs does, between two Git revisions.

Steps of :func:`diff_revisions`:

1. revisions — the Git repository holding the given path, and the commit each revision names
   (:mod:`.git_tree`; an unknown revision or a folder outside a repository is an error, exit 2).
2. export — each revision's tracked files into its own temporary folder (removed at the end, Ctrl-C included).
3. compile — every spec below the path (found as folder builds find them, :func:`.batch.discover_specs`)
   with the compiler's own :func:`~tfspec.compiler.pipeline.compile_spec`: bases, the project file, environment
   overlays and policies applied, exactly as ``tfspec build`` would at that revision. Nothing is written but
   the compiler's stat memo inside the temporary folders.
4. pair — specs are paired by file path; a spec whose file moved is paired by its model ``name``; the rest
   are added or removed.
5. compare — per pair (:class:`SpecDiff`): the resolved specs key by key (targets by name, other lists by
   index; a section that exists on one side only is one change), the standards files (bases, project file,
   policy files) whose content changed, the generated files (sha256), the images the Kubernetes manifests
   name (repository → content tags), the plan steps whose fingerprint the base plan does not hold (they
   re-run: the step cache is keyed by fingerprint), policy and build warnings new or gone, and each side's
   errors when it is invalid; with ``report.json`` of both sides, the metrics and gates.

Paths are shown relative to the repository's root. :mod:`.diff_markdown` writes the summary.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from tfspec.compiler.naming import dist_name
from tfspec.compiler.pipeline import CompileResult, compile_spec
from tfspec.base.errors import Diagnostic, TfspecError
from tfspec.spec.loader import load_yaml

from .batch import discover_specs
from .git_tree import exported, repository_root, resolve_commit

__all__ = ["Revision", "Finding", "SpecSide", "KeyChange", "ImageChange", "SpecDiff", "DiffResult",
           "diff_revisions", "compare_sides", "diff_values", "pair_sides", "manifest_images", "split_image",
           "read_report", "REPORT_LIMIT"]

REPORT_LIMIT = 16 * 1024**2
"""A ``report.json`` larger than this is not read (a run's report is a few hundred KiB at most)."""
_MISSING: Any = object()


@dataclasses.dataclass(frozen=True)
class Revision:
    """A revision as the user named it, and the commit it resolved to."""

    name: str
    commit: str


@dataclasses.dataclass(frozen=True, order=True)
class Finding:
    """A warning or an error of one side: the one-line diagnostic, paths relative to the repository."""

    file: str
    path: str
    message: str
    line: str = dataclasses.field(compare=False)
    """The whole ``file:line:col: key.path: message`` text (a warning's hint, where its rule is, left out;
    an error keeps its hint)."""


@dataclasses.dataclass(frozen=True)
class SpecSide:
    """One spec compiled at one revision."""

    path: str
    """The spec file, relative to the repository root."""
    name: str | None
    """The model's ``name`` (None when the spec could not be read that far)."""
    version: int | None = None
    dist: str | None = None
    """Its output folder name (``<name>`` or ``<name>-<env>``)."""
    targets: tuple[tuple[str, str], ...] = ()
    """(name, kind) of each target."""
    values: Any = None
    """The resolved spec as JSON (defaults filled, bases and the overlay applied)."""
    files: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Every generated file (relative to the output folder) → sha256 of its content, the spec sha256 of its
    DO-NOT-EDIT header left out (every file's header changes with any change of the spec)."""
    raw_files: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Every generated file → sha256 of its whole text."""
    steps: tuple[tuple[str, str], ...] = ()
    """(step id, fingerprint) in plan order."""
    images: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    """Image repository → the tags (or digests) the Kubernetes manifests name."""
    warnings: tuple[Finding, ...] = ()
    errors: tuple[Finding, ...] = ()
    sources: Mapping[str, str] = dataclasses.field(default_factory=dict)
    """Project file, base specs and policy files (relative to the repository) → sha256 of their content."""
    spec_sha256: str | None = None
    report: Mapping[str, Any] | None = None
    report_place: str | None = None

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclasses.dataclass(frozen=True)
class KeyChange:
    """One key path of the resolved spec: its value on each side (``None`` for absent)."""

    path: str
    base: str | None
    head: str | None


@dataclasses.dataclass(frozen=True)
class ImageChange:
    repository: str
    base: tuple[str, ...]
    head: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class SpecDiff:
    """What the change does to one spec."""

    base: SpecSide | None
    head: SpecSide | None
    keys: tuple[KeyChange, ...] = ()
    standards: tuple[tuple[str, str], ...] = ()
    """(standards file, ``changed`` / ``added`` / ``removed``)."""
    files_changed: tuple[str, ...] = ()
    files_added: tuple[str, ...] = ()
    files_removed: tuple[str, ...] = ()
    files_header_only: tuple[str, ...] = ()
    """Files whose only difference is the spec sha256 in their header."""
    images: tuple[ImageChange, ...] = ()
    steps_rerun: tuple[str, ...] = ()
    """Head steps whose fingerprint no base step has, in plan order (new steps included)."""
    steps_new: tuple[str, ...] = ()
    steps_removed: tuple[str, ...] = ()
    warnings_new: tuple[Finding, ...] = ()
    warnings_gone: tuple[Finding, ...] = ()

    @property
    def path(self) -> str:
        side = self.head or self.base
        assert side is not None
        return side.path

    @property
    def name(self) -> str | None:
        return (self.head.name if self.head else None) or (self.base.name if self.base else None)

    @property
    def status(self) -> str:
        """``added``, ``removed``, ``invalid`` (at head), ``fixed`` (invalid at base only), ``changed``,
        ``moved`` (the file moved, nothing else changed) or ``unchanged``."""
        if self.base is None:
            return "added"
        if self.head is None:
            return "removed"
        if not self.head.ok:
            return "invalid"
        if not self.base.ok:
            return "fixed"
        if self.changed:
            return "changed"
        return "moved" if self.moved_from else "unchanged"

    @property
    def moved_from(self) -> str | None:
        if self.base is not None and self.head is not None and self.base.path != self.head.path:
            return self.base.path
        return None

    @property
    def changed(self) -> bool:
        """Whether anything but the spec file's path changed."""
        return bool(self.keys or self.standards or self.files_changed or self.files_added or self.files_removed
                    or self.images or self.steps_rerun or self.steps_removed or self.warnings_new
                    or self.warnings_gone)


@dataclasses.dataclass(frozen=True)
class DiffResult:
    folder: str
    """The compared path, relative to the repository root (``.`` for the root)."""
    base: Revision
    head: Revision
    environment: str | None
    specs: tuple[SpecDiff, ...]

    def count(self, status: str) -> int:
        return sum(1 for spec in self.specs if spec.status == status)


# --- reading one side ---------------------------------------------------------------------------------


def _relative(text: str, root: Path) -> str:
    """``text`` with the temporary folder's absolute path taken out of every file name it mentions."""
    return text.replace(str(root) + os.sep, "")


def _findings(diagnostics: tuple[Diagnostic, ...], root: Path, hints: bool = True) -> tuple[Finding, ...]:
    return tuple(sorted(Finding(_relative(d.file, root), d.path, _relative(d.message, root),
                                _relative((d if hints else dataclasses.replace(d, hint=None)).format(), root))
                        for d in diagnostics))


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _sha256_of(path: str) -> str:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return "-"


def _walk_images(node: Any, found: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "image" and isinstance(value, str):
                found.add(value)
            elif key == "manifest" and isinstance(value, str):  # an Argo resource template's object
                try:
                    _walk_images(yaml.safe_load(value), found)
                except yaml.YAMLError:
                    pass
            else:
                _walk_images(value, found)
    elif isinstance(node, list):
        for value in node:
            _walk_images(value, found)


def split_image(reference: str) -> tuple[str, str]:
    """``registry/repo:tag`` → (``registry/repo``, ``tag``); a digest (``@sha256:...``) counts as the tag."""
    if "@" in reference:
        repository, _, digest = reference.partition("@")
        return repository, "@" + digest
    slash = reference.rfind("/")
    colon = reference.rfind(":")
    if colon > slash:
        return reference[:colon], reference[colon + 1:]
    return reference, "latest"


def manifest_images(files: Mapping[str, str]) -> dict[str, tuple[str, ...]]:
    """Image repository → tags, as the generated Kubernetes objects name them (``<target>/kubernetes/``,
    ``workflow/``, and the training object inside a workflow's resource template)."""
    found: set[str] = set()
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    for path in sorted(files):
        if not path.endswith(".yaml") or not ("/kubernetes/" in path or path.startswith("workflow/")):
            continue
        try:
            for document in yaml.load_all(files[path], Loader=loader):
                _walk_images(document, found)
        except yaml.YAMLError:
            continue
    images: dict[str, set[str]] = {}
    for reference in found:
        repository, tag = split_image(reference)
        images.setdefault(repository, set()).add(tag)
    return {repository: tuple(sorted(tags)) for repository, tags in sorted(images.items())}


def _raw_name(spec: Path) -> str | None:
    try:
        tree = load_yaml(spec).tree
    except TfspecError:
        return None
    name = tree.get("name") if isinstance(tree, dict) else None
    return name if isinstance(name, str) else None


def read_report(path: Path) -> dict[str, Any] | None:
    """A run's ``report.json`` (None when missing, too large or not a report)."""
    try:
        if path.stat().st_size > REPORT_LIMIT:
            return None
        data = json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):  # RecursionError: a file nested thousands deep
        return None
    return data if isinstance(data, dict) and isinstance(data.get("targets"), dict) else None


def _side(root: Path, spec: Path, env: str | None, dists: list[Path]) -> SpecSide:
    """Compile ``spec`` (inside the exported folder ``root``) and keep what the comparison needs.
    ``dists``: the run output roots to look for ``<dist>/report.json`` in, first found wins."""
    relative = spec.relative_to(root).as_posix()
    result: CompileResult = compile_spec(spec, env=env)
    warnings = _findings(tuple(result.warnings), root, hints=False)
    if not result.ok or result.resolved is None or result.plan is None:
        return SpecSide(relative, _raw_name(spec), errors=_findings(result.diagnostics, root), warnings=warnings)
    resolved = result.resolved
    folder = dist_name(resolved.spec.name, env)
    report, place = None, None
    for dist in dists:
        report = read_report(dist / folder / "report.json")
        if report is not None:
            found = str(dist / folder / "report.json")
            place = _relative(found, root) if found.startswith(str(root) + os.sep) else os.path.relpath(found)
            break
    header = f"spec content sha256 {resolved.spec_sha256}"  # render.header_lines: in every file's first line
    files = {path: _sha256(text.replace(header, "spec content sha256")) for path, text in result.files.items()}
    raw_files = {path: _sha256(text) for path, text in result.files.items()}
    sources = {_relative(source, root): _sha256_of(source) for source in resolved.sources}
    return SpecSide(
        path=relative, name=resolved.spec.name, version=resolved.spec.version, dist=folder,
        targets=tuple((t.name, t.kind) for t in resolved.spec.targets),
        values=resolved.spec.model_dump(mode="json", exclude_none=True),
        files=files, raw_files=raw_files, steps=tuple((s.id, s.fingerprint) for s in result.plan.steps),
        images=manifest_images(result.files), warnings=warnings, sources=sources,
        spec_sha256=resolved.spec_sha256, report=report, report_place=place)


def _sides(root: Path, relative: str, env: str | None, dist: Path | None, cwd_relative: str | None) -> list[SpecSide]:
    """Every spec below ``relative`` in the exported folder ``root``, compiled."""
    start = root / relative
    if start.is_file():
        specs = [start]
    elif start.is_dir():
        specs = discover_specs(start)
    else:
        specs = []
    sides = []
    for spec in specs:
        if dist is not None:
            dists = [dist]
        else:  # where `tfspec run` writes when the report is committed: dist/ beside the spec, then here
            dists = [spec.parent / "dist"] + ([root / cwd_relative / "dist"] if cwd_relative is not None else [])
        sides.append(_side(root, spec, env, dists))
    return sides


# --- comparing ----------------------------------------------------------------------------------------


def _show(value: Any) -> str | None:
    """A value as JSON; a section's ``kind`` and ``name`` first (an added target reads ``{"kind": "tflite",
    "name": "android", ...}`` even when the text is cut)."""
    if value is _MISSING:
        return None
    if isinstance(value, dict):
        first = [key for key in ("kind", "name") if key in value]
        value = {**{key: value[key] for key in first}, **{key: value[key] for key in sorted(value) if key not in first}}
        return json.dumps(value, ensure_ascii=False)
    return json.dumps(value, sort_keys=True, ensure_ascii=False)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _by_name(items: list[Any]) -> dict[str, Any] | None:
    """A list of mappings that each have a unique ``name``, keyed by it (targets); None otherwise."""
    names = [item.get("name") if isinstance(item, dict) else None for item in items]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        return None
    return dict(zip(names, items))


def diff_values(base: Any, head: Any, path: str = "") -> Iterator[KeyChange]:
    """Key paths whose value differs; a mapping or list item present on one side only is one change."""
    if base is _MISSING or head is _MISSING:
        yield KeyChange(path or "<root>", _show(base), _show(head))
        return
    if isinstance(base, dict) and isinstance(head, dict):
        for key in sorted(set(base) | set(head)):
            yield from diff_values(base.get(key, _MISSING), head.get(key, _MISSING), _join(path, key))
        return
    if isinstance(base, list) and isinstance(head, list) and base != head \
            and any(isinstance(item, dict) for item in base + head):
        named_base, named_head = _by_name(base), _by_name(head)
        if path == "targets" and named_base is not None and named_head is not None:
            for name in sorted(set(named_base) | set(named_head)):
                yield from diff_values(named_base.get(name, _MISSING), named_head.get(name, _MISSING), _join(path, name))
            return
        for index in range(max(len(base), len(head))):
            yield from diff_values(base[index] if index < len(base) else _MISSING,
                                   head[index] if index < len(head) else _MISSING, _join(path, index))
        return
    if base != head:
        yield KeyChange(path or "<root>", _show(base), _show(head))


def _by_key(findings: tuple[Finding, ...]) -> dict[tuple[str, str, str], Finding]:
    """Warnings keyed without their line and column: an edit above a warning's line does not make it new."""
    return {(f.file, f.path, f.message): f for f in findings}


def compare_sides(base: SpecSide | None, head: SpecSide | None) -> SpecDiff:
    """What changed from ``base`` to ``head`` (either may be None: added or removed)."""
    if base is None or head is None or not base.ok or not head.ok:
        before = _by_key(base.warnings) if base else {}
        after = _by_key(head.warnings) if head else {}
        return SpecDiff(base, head,
                        warnings_new=tuple(after[k] for k in sorted(set(after) - set(before))),
                        warnings_gone=tuple(before[k] for k in sorted(set(before) - set(after))))
    keys = tuple(diff_values(base.values, head.values))
    standards = []
    for source in sorted(set(base.sources) | set(head.sources)):
        if source not in head.sources:
            standards.append((source, "removed"))
        elif source not in base.sources:
            standards.append((source, "added"))
        elif base.sources[source] != head.sources[source]:
            standards.append((source, "changed"))
    images = tuple(ImageChange(repository, base.images.get(repository, ()), head.images.get(repository, ()))
                   for repository in sorted(set(base.images) | set(head.images))
                   if base.images.get(repository) != head.images.get(repository))
    base_fingerprints = {fingerprint for _, fingerprint in base.steps}
    base_ids, head_ids = [s for s, _ in base.steps], [s for s, _ in head.steps]
    before, after = _by_key(base.warnings), _by_key(head.warnings)
    return SpecDiff(
        base, head, keys=keys, standards=tuple(standards),
        files_changed=tuple(sorted(p for p in set(base.files) & set(head.files) if base.files[p] != head.files[p])),
        files_added=tuple(sorted(set(head.files) - set(base.files))),
        files_removed=tuple(sorted(set(base.files) - set(head.files))),
        files_header_only=tuple(sorted(p for p in set(base.files) & set(head.files)
                                       if base.files[p] == head.files[p] and base.raw_files[p] != head.raw_files[p])),
        images=images,
        steps_rerun=tuple(step for step, fingerprint in head.steps if fingerprint not in base_fingerprints),
        steps_new=tuple(step for step in head_ids if step not in base_ids),
        steps_removed=tuple(step for step in base_ids if step not in head_ids),
        warnings_new=tuple(after[k] for k in sorted(set(after) - set(before))),
        warnings_gone=tuple(before[k] for k in sorted(set(before) - set(after))))


def pair_sides(base: list[SpecSide], head: list[SpecSide]) -> list[tuple[SpecSide | None, SpecSide | None]]:
    """Pairs by file path, then by model name for the files that moved; the rest added or removed."""
    base_by_path = {side.path: side for side in base}
    head_by_path = {side.path: side for side in head}
    pairs: list[tuple[SpecSide | None, SpecSide | None]] = [
        (base_by_path[p], head_by_path[p]) for p in sorted(set(base_by_path) & set(head_by_path))]
    left_base = [s for p, s in sorted(base_by_path.items()) if p not in head_by_path]
    left_head = [s for p, s in sorted(head_by_path.items()) if p not in base_by_path]
    base_names = [s.name for s in left_base]
    head_names = [s.name for s in left_head]
    moved = {name for name in set(base_names) & set(head_names)
             if name is not None and base_names.count(name) == 1 and head_names.count(name) == 1}
    for name in sorted(moved):
        pairs.append((next(s for s in left_base if s.name == name), next(s for s in left_head if s.name == name)))
    pairs += [(s, None) for s in left_base if s.name not in moved]
    pairs += [(None, s) for s in left_head if s.name not in moved]
    return sorted(pairs, key=lambda pair: (pair[1] or pair[0]).path)  # type: ignore[union-attr]


def diff_revisions(path: Path, base: str, head: str = "HEAD", env: str | None = None,
                   base_dist: Path | None = None, head_dist: Path | None = None) -> DiffResult:
    """Compare the specs at ``path`` (a folder or one spec file, inside a Git working tree) between the
    revisions ``base`` and ``head``. Raises :class:`TfspecError` (exit 2) on a bad path or revision, or when
    neither revision has a spec there."""
    absolute = Path(os.path.realpath(path))
    existing = absolute
    while not existing.exists() and existing.parent != existing:
        existing = existing.parent
    root = repository_root(existing)
    relative = os.path.relpath(absolute, root)
    if relative == ".." or relative.startswith(".." + os.sep):
        raise TfspecError(f"{path}: outside the Git repository at {root}")
    relative = Path(relative).as_posix()
    base_revision = Revision(base, resolve_commit(root, base))
    head_revision = Revision(head, resolve_commit(root, head))
    cwd = os.path.relpath(os.path.realpath(os.getcwd()), root)
    cwd_relative = None if cwd == ".." or cwd.startswith(".." + os.sep) else cwd
    base_dist_abs = base_dist.absolute() if base_dist is not None else None
    head_dist_abs = head_dist.absolute() if head_dist is not None else None
    with exported(root, base_revision.commit, "base") as base_root:
        base_sides = _sides(base_root, relative, env, base_dist_abs, cwd_relative)
    with exported(root, head_revision.commit, "head") as head_root:
        head_sides = _sides(head_root, relative, env, head_dist_abs, cwd_relative)
    if not base_sides and not head_sides:
        raise TfspecError(f"{path}: no specs there at {base} ({base_revision.commit[:12]}) or at {head} "
                          f"({head_revision.commit[:12]}) (a spec is a *.yaml file with a top-level "
                          "'api_version: tfspec/...' line)")
    specs = tuple(compare_sides(b, h) for b, h in pair_sides(base_sides, head_sides))
    return DiffResult(relative, base_revision, head_revision, env, specs)
