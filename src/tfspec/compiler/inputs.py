"""Stage 5: inputs — digest every file and folder the runtime's steps read from outside the step cache.

Runs once per compile, after ``validate`` and before ``plan``; ``plan`` itself does no I/O. What is read
(``input_sources`` is the table; paths are relative to the spec file):

* ``data.source.path``: the npz or csv file, every file below an ``image_folder``, every file a
  ``tfrecord`` glob matches (the set of matches is part of the digest: adding a shard changes it);
* ``model.path``: a ``saved_model`` folder (or a ``.keras`` / ``.h5`` file);
* ``model.weights``: an ``application`` backbone's weights file;
* ``model.builder``: every ``.py`` file of the builder's top-level package beside the spec (a folder, or
  one ``name.py``), and of every local package those files import (found by parsing their ``import``
  statements, never by importing them: the compiler does not run user code). A module that is not beside
  the spec (an installed package) has no digest; dynamic imports (``importlib``) are not followed;
* ``compression[i].teacher.path``: a ``saved_model`` teacher's folder; a ``spec`` teacher is compiled
  (once per compile) and the fingerprint of its final model step stands for it;
* ``targets[i].released``: the released model a target is compared with (:mod:`.released`): a model store's
  listing (nothing downloaded), a SavedModel folder, a ``.tflite`` file or a previous dist folder.

A file's digest is its sha256 (what ``sha256sum`` prints); a folder's or a glob's is
:func:`~.file_digests.digest_listing` of its files' relative names and sha256s. Reading is memoised by
stat (see :mod:`.file_digests`), so an unchanged tree costs one ``stat`` per file.

A missing input is an error of the spec (``file:line:col: data.source.path: ... does not exist``), as a
missing teacher already was: a plan without its inputs' digests could not say what is cached. So is an
input of the wrong kind (a folder where an npz or csv file is read, a file where an image folder is), one
that is not a regular file (a FIFO, a device: see :mod:`.file_digests`), and inputs larger than one compile
reads (:class:`~.file_digests.InputLimits`).
"""

from __future__ import annotations

import ast
import contextlib
import contextvars
import dataclasses
import os
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from tfspec.plan import Plan, Step
from tfspec.spec.compression import DistillStage
from tfspec.spec.data import CsvSource, ImageFolderSource, NpzSource, TfrecordSource
from tfspec.base.errors import Diagnostic, SpecError, cap, format_path
from tfspec.spec.loader import KeyPath
from tfspec.spec.model import ApplicationModel, BuilderModel, SavedModelModel

from tfspec.spec.files import file_problem

from .data_files import csv_facts, facts_kind, npz_facts
from .file_digests import MEMO_DIR, InputLimits, InputTooLarge, MemoStats, StatMemo, UnreadableFile, digest_listing
from tfspec.base.locations import is_object_store, list_objects, local_path, object_root
from .plan_sections import storage_params
from .released import ReleasedInputs, find_released, released_paths
from .resolve import ResolvedSpec

__all__ = ["InputSource", "InputDigests", "TeacherModel", "input_sources", "gather_inputs", "CompileTeacher",
           "input_paths"]

# How an input is read: one path (a file or a folder), one file, one folder, a glob, a builder module name,
# another spec, an object-store location.
ReadAs = Literal["path", "file", "folder", "glob", "module", "spec", "objects"]
_PATH: ReadAs = "path"
_FILE: ReadAs = "file"
_FOLDER: ReadAs = "folder"
_GLOB: ReadAs = "glob"
_MODULE: ReadAs = "module"
_SPEC: ReadAs = "spec"
_OBJECTS: ReadAs = "objects"

_COMPILING: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("tfspec_teacher_specs", default=())


@dataclasses.dataclass(frozen=True)
class InputSource:
    """One external input of a spec: its key path, how it is read and the spec's value."""

    key: KeyPath
    how: ReadAs
    value: str

    @property
    def name(self) -> str:
        """The key path as text (``data.source.path``): the key of its digest in the plan."""
        return format_path(self.key)


@dataclasses.dataclass(frozen=True)
class TeacherModel:
    """A ``spec`` teacher's final model step (last compression stage, or ``train``) in its own plan."""

    model_step: str
    fingerprint: str


@dataclasses.dataclass(frozen=True)
class InputDigests:
    """The gathered inputs of one spec.

    Attributes:
        content: key path (``data.source.path``) → sha256 of the content found there.
        teachers: compression stage index → the teacher spec's final model step.
        stats: what gathering cost (files stat'ed, read, reused from the memo); not part of any digest.
        data_facts: what a local csv or npz data file holds (``data_files.csv_facts`` / ``npz_facts``:
            header, label values, bad cells, array shapes), memoised by its sha256; None for other sources.
        released: each target's released model (``targets[].released``), or None where none was found; its
            files' digests are also in ``content`` (``targets[i].released``).
    """

    content: Mapping[str, str] = dataclasses.field(default_factory=dict)
    teachers: Mapping[int, TeacherModel] = dataclasses.field(default_factory=dict)
    stats: MemoStats = dataclasses.field(default_factory=MemoStats, compare=False)
    data_facts: Mapping[str, Any] | None = dataclasses.field(default=None, compare=False)
    released: ReleasedInputs = dataclasses.field(default_factory=ReleasedInputs)

    def under(self, prefix: str) -> dict[str, str]:
        """The digests of inputs whose key path starts with ``prefix`` (``"data."``), sorted."""
        return {k: v for k, v in sorted(self.content.items()) if k.startswith(prefix)}


class _Compiled(Protocol):
    @property
    def ok(self) -> bool: ...
    @property
    def diagnostics(self) -> tuple[Diagnostic, ...]: ...
    @property
    def plan(self) -> Plan | None: ...


CompileTeacher = Callable[[Path], _Compiled]
"""Compiles a teacher spec file (the pipeline passes its own ``compile_spec``)."""


def input_sources(resolved: ResolvedSpec) -> list[InputSource]:
    """Every file, folder, glob, module and spec this spec's steps read from outside the cache."""
    spec = resolved.spec
    out: list[InputSource] = []
    source = spec.data.source
    path = getattr(source, "path", None)
    local = path[len("file://"):] if path is not None and path.startswith("file://") else path
    if path is not None and is_object_store(path):
        out.append(InputSource(("data", "source", "path"), _OBJECTS, path))
    elif isinstance(source, TfrecordSource):
        out.append(InputSource(("data", "source", "path"), _GLOB, local))
    elif isinstance(source, (NpzSource, CsvSource)):
        out.append(InputSource(("data", "source", "path"), _FILE, local))
    elif isinstance(source, ImageFolderSource):
        out.append(InputSource(("data", "source", "path"), _FOLDER, local))
    if isinstance(spec.model, SavedModelModel):
        out.append(_model_source(("model", "path"), spec.model.path))
    elif isinstance(spec.model, ApplicationModel) and spec.model.weights is not None:
        out.append(InputSource(("model", "weights"), _FILE, spec.model.weights))
    elif isinstance(spec.model, BuilderModel):
        out.append(InputSource(("model", "builder"), _MODULE, spec.model.builder.split(":")[0]))
    for index, stage in enumerate(spec.compression):
        teacher = stage.teacher if isinstance(stage, DistillStage) else None
        if teacher is not None and teacher.kind == "saved_model":
            out.append(_model_source(("compression", index, "teacher", "path"), teacher.path))
        elif teacher is not None and teacher.kind == "spec":
            out.append(InputSource(("compression", index, "teacher", "path"), _SPEC, teacher.path))
    return out


def input_paths(resolved: ResolvedSpec) -> list[str]:
    """The local files and folders whose content the plan's digests cover, as absolute paths: a data file or
    folder, a glob's folder (everything below it), a SavedModel folder, a weights file, a builder's modules
    and the local packages they import. ``tfspec watch`` watches them. Object-store inputs and teacher specs
    (the watch follows those as referenced specs) are not paths here."""
    spec_dir = Path(resolved.file).resolve().parent
    out: list[Path] = []
    for source in input_sources(resolved):
        if source.how in (_PATH, _FILE, _FOLDER):
            out.append(spec_dir / source.value)
        elif source.how == _GLOB:
            root = object_root(source.value)
            out.append(spec_dir / root if root else spec_dir)
        elif source.how == _MODULE:
            out.extend(_module_roots(spec_dir, source.value))
    out.extend(Path(path) for path in released_paths(resolved))
    return sorted({os.path.normpath(str(path)) for path in out})


def _module_roots(spec_dir: Path, module: str) -> list[Path]:
    """``<top>.py`` / ``<top>/`` of a builder module and of the local packages its files import (the same
    walk as the digest's, reading the files instead of the memo)."""
    queue, seen, roots = [module.split(".")[0]], set(), []
    while queue:
        top = queue.pop()
        if top in seen:
            continue
        seen.add(top)
        for candidate in (spec_dir / f"{top}.py", spec_dir / top):
            if candidate.exists():
                roots.append(candidate)
        for path in _package_files(spec_dir, top):
            try:
                queue.extend(_top_level_imports(path.read_bytes()))
            except OSError:
                continue
    return roots


@contextlib.contextmanager
def _compiling(path: Path) -> Iterator[bool]:
    """Mark ``path`` as being compiled; yields False when it already is (a cycle of teacher specs)."""
    key = str(path.resolve())
    active = _COMPILING.get()
    if key in active:
        yield False
        return
    token = _COMPILING.set(active + (key,))
    try:
        yield True
    finally:
        _COMPILING.reset(token)


def gather_inputs(resolved: ResolvedSpec, compile_teacher: CompileTeacher) -> InputDigests:
    """Digest every input of :func:`input_sources`; raise one :class:`SpecError` for all missing ones."""
    memo = StatMemo(Path(resolved.file).parent, InputLimits.from_environ(), spec_name=Path(resolved.file).name)
    compiled: dict[Path, _Compiled] = {}

    def compile_once(path: Path) -> _Compiled:  # one compile per teacher spec, however many stages use it
        if path not in compiled:
            compiled[path] = compile_teacher(path)
        return compiled[path]

    content: dict[str, str] = {}
    teachers: dict[int, TeacherModel] = {}
    problems: list[Diagnostic] = []
    for source in input_sources(resolved):
        try:
            found = _gather_one(source, resolved, memo, compile_once)
        except UnreadableFile as error:
            found = resolved.diagnostic(source.key, str(error), error.hint)
        except InputTooLarge as error:
            problems.append(resolved.diagnostic(source.key, str(error)))
            break  # the bound is for the whole compile: nothing more is read
        if isinstance(found, Diagnostic):
            problems.append(found)
        elif isinstance(found, TeacherModel):
            teachers[int(source.key[1])] = found
        elif found is not None:
            content[source.name] = found
    released = ReleasedInputs()
    if not problems:
        try:
            released, found_problems = find_released(resolved, memo)
        except InputTooLarge as error:
            found_problems = [resolved.diagnostic(("targets",), str(error))]
        problems.extend(found_problems)
        for index, target in enumerate(resolved.spec.targets):
            if target.name in released.found:  # the identity of what was found (or that nothing was)
                found = released.found[target.name]
                content[f"targets[{index}].released"] = digest_listing(
                    [(name, f"{digest}:{size}") for name, size, digest in found.files] if found else [])
    facts = None
    data_digest = content.get("data.source.path")
    if data_digest is not None and not problems:
        try:
            facts = _data_facts(resolved, memo, data_digest)
        except UnreadableFile as error:
            problems.append(resolved.diagnostic(("data", "source", "path"), str(error), "make it readable"))
    memo.save()
    if problems:
        raise SpecError(problems)
    return InputDigests(content, teachers, memo.stats, facts, released)


def _data_facts(resolved: ResolvedSpec, memo: StatMemo, sha: str) -> dict[str, Any] | None:
    """What a local csv or npz data file holds (``data_files``), memoised by its content."""
    source = resolved.spec.data.source
    if not isinstance(source, (CsvSource, NpzSource)) or is_object_store(source.path):
        return None
    path = local_path(Path(resolved.file).parent, source.path)
    if not path.is_file():
        return None
    if isinstance(source, CsvSource):
        return memo.facts(path, sha, facts_kind(source),
                          lambda p: csv_facts(p, source.delimiter, source.label_column))
    return memo.facts(path, sha, facts_kind(source), lambda p: npz_facts(p, source.labels))


def _model_source(key: tuple[str | int, ...], path: str) -> InputSource:
    """A SavedModel folder: an object-store folder by its listing, a local one by its files."""
    if is_object_store(path):
        return InputSource(key, _OBJECTS, path)
    return InputSource(key, _PATH, path[len("file://"):] if path.startswith("file://") else path)


def _location_options(key: tuple[str | int, ...], resolved: ResolvedSpec) -> tuple[Any, bool, str]:
    """``(storage, folder?, spec key of the storage)`` of an object-store input."""
    spec = resolved.spec
    if key[0] == "model":
        return getattr(spec.model, "storage", None), True, "model.storage"
    if key[0] == "compression":
        teacher = getattr(spec.compression[int(key[1])], "teacher", None)
        return getattr(teacher, "storage", None), True, f"compression[{key[1]}].teacher.storage"
    return spec.data.storage, isinstance(spec.data.source, ImageFolderSource), "data.storage"


def _gather_one(source: InputSource, resolved: ResolvedSpec, memo: StatMemo,
                compile_once: CompileTeacher) -> str | TeacherModel | Diagnostic | None:
    """One input's sha256 (None for a builder module that is not beside the spec), a teacher spec's
    model step, or the problem that stops it."""
    spec_file = Path(resolved.file)
    spec_dir = spec_file.parent
    where = spec_dir / source.value
    if source.how == _SPEC:
        with _compiling(spec_file), _compiling(where) as fresh:
            if not fresh:
                return resolved.diagnostic(source.key, f"teacher specs form a cycle through {cap(source.value)!r}",
                                           "a teacher spec must not (indirectly) distill from this spec")
            result = compile_once(where)
        if not result.ok:
            first = result.diagnostics[0]
            return resolved.diagnostic(
                source.key, f"the teacher spec has {len(result.diagnostics)} error(s), first: {first.format()}",
                f"fix it: tfspec validate {cap(source.value)}")
        step = _final_model_step(result.plan)
        return TeacherModel(step.id, step.fingerprint)
    if source.how == _OBJECTS:
        return _objects_digest(source, resolved)
    if source.how == _MODULE:
        files = _module_files(memo, spec_dir, source.value)
        return digest_listing(files) if files else None
    if source.how == _GLOB:
        files = memo.matches(source.value)
        if not files:
            return resolved.diagnostic(source.key, f"no file matches {cap(source.value)} (looked in {spec_dir})",
                                       "paths and globs are relative to the spec file")
        return digest_listing(files)
    if source.how == _FILE and where.is_dir():
        return resolved.diagnostic(source.key, f"{cap(source.value)} is a folder, not a file", "name the file itself")
    if source.how == _FOLDER and where.exists() and not where.is_dir():
        return resolved.diagnostic(source.key, f"{cap(source.value)} is a file, not a folder",
                                   "an image_folder source names the folder of its class sub-folders")
    problem = file_problem(where)
    if problem is not None and problem != "not found" and not where.is_dir():  # a FIFO, a device, a broken link
        return resolved.diagnostic(source.key, f"{cap(source.value)} {problem}", "inputs are regular files")
    digest = _path_digest(memo, where, source.value)
    if digest is None:
        return resolved.diagnostic(source.key, f"{cap(source.value)} does not exist (looked in {spec_dir})",
                                   "paths are relative to the spec file")
    if source.key == ("model", "path") and not _keras_loadable(where, resolved):
        # tf_keras cannot load it: fail here, before training (today: AttributeError in `train`)
        return resolved.diagnostic(source.key, f"{cap(source.value)} is not a Keras SavedModel (no keras_metadata.pb): "
                                   "it cannot be trained or compressed",
                                   "deploy it unchanged with serve_as_is: true (and trainable unset, no compression)")
    return digest


def _keras_loadable(path: Path, resolved: ResolvedSpec) -> bool:
    """False for a SavedModel folder tf_keras cannot load (TF1, ``tf.Module``) unless it is served as it is."""
    if getattr(resolved.spec.model, "serve_as_is", False) or not path.is_dir():
        return True
    return (path / "keras_metadata.pb").is_file() or not (path / "saved_model.pb").is_file()


def _objects_digest(source: InputSource, resolved: ResolvedSpec) -> str | Diagnostic:
    """An object-store location by its listing (name, size, ETag or generation): nothing is downloaded."""
    storage, folder, storage_key = _location_options(source.key, resolved)
    try:
        objects = list_objects(source.value, storage_params(storage), folder=folder)
    except Exception as error:  # fsspec and its back ends raise many kinds: say which location failed
        first = (str(error).splitlines() or [type(error).__name__])[0]
        return resolved.diagnostic(source.key, f"cannot list {cap(source.value)}: {cap(first)}",
                                   f"check {storage_key} (endpoint, credential variables) and the bucket")
    if not objects:
        return resolved.diagnostic(source.key, f"no object matches {cap(source.value)}")
    return digest_listing([(o["url"], f"{o['version']}:{o['size']}") for o in objects])


def _final_model_step(plan: Plan) -> Step:
    return plan.step(plan.model_step_id())


def _path_digest(memo: StatMemo, path: Path, display: str) -> str | None:
    """A file's sha256, or the listing digest of a folder's files; None when nothing is there."""
    if path.is_dir():
        return memo.tree_digest(path, display)
    return memo.file_sha256(path)


def _module_files(memo: StatMemo, spec_dir: Path, module: str) -> list[tuple[str, str]]:
    """``(path relative to the spec folder, sha256)`` of the local packages ``module`` comes from and imports."""
    queue = [module.split(".")[0]]
    seen: set[str] = set()
    files: dict[str, str] = {}
    while queue:
        top = queue.pop()
        if top in seen:
            continue
        seen.add(top)
        for path in _package_files(spec_dir, top):
            name = path.relative_to(spec_dir).as_posix()
            sha = memo.file_sha256(path)
            if sha is None or name in files:
                continue
            files[name] = sha
            queue.extend(memo.imports(path, sha, _top_level_imports))
    return sorted(files.items())


def _package_files(spec_dir: Path, top: str) -> list[Path]:
    """The ``.py`` files Python would find for top-level name ``top`` on a path entry ``spec_dir``."""
    out = []
    module = spec_dir / f"{top}.py"
    if module.is_file():
        out.append(module)
    package = spec_dir / top
    if package.is_dir():
        out.extend(sorted(p for p in package.rglob("*.py")
                          if "__pycache__" not in p.parts and MEMO_DIR not in p.parts and p.is_file()))
    return out


def _top_level_imports(source: bytes) -> list[str]:
    """Top-level names of the absolute imports in a module's source (anywhere in it); [] if it does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []  # the runtime reports it when it imports the builder
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module.split(".")[0])
    return sorted(set(names))
