"""Folder builds: every spec below a folder, compiled in parallel, skipped when its inputs are unchanged.

Steps of :func:`build_folder`:

1. discover — every ``*.yaml`` / ``*.yml`` file below the folder whose text has a top-level line
   ``api_version: tfspec/...`` (at column 0) is a spec; hidden folders, the output root and any other
   tfspec output folder (one holding a tfspec ``manifest.json``) are skipped.
2. key — each spec's input key is the sha256 of its text, the environment overlay, the values of the
   ``${VAR}`` variables it mentions, the tfspec version and a fingerprint of the compiler's own source
   (so editing the compiler or a template invalidates every entry). Files a spec references that change
   its output (another spec named by a distillation ``teacher: {kind: spec}``) are recorded after the
   first compile and their sha256 checked too.
3. skip — a spec whose key matches the cache entry, and whose output folder still holds the recorded
   ``manifest.json`` and files (same size and mtime), is not compiled again. The cache lives in
   ``<out root>/.tfspec-build-cache.json``.
4. compile — the rest in worker processes (one per CPU, each killed by the kernel when the build dies), or in
   this process when only one is stale.
5. check names — two specs with the same ``name`` would write the same folder: both are errors.
6. write — each valid spec's output to ``<out root>/<name>/`` (``<name>-<env>/`` with an overlay),
   atomically: written and fsynced into a hidden staging folder beside it as soon as the spec is compiled
   (:func:`tfspec.base.atomic.stage_tree`, on writer threads, while later specs still compile), swapped in
   once every name is checked (:func:`tfspec.base.atomic.commit_tree`; the staging of a spec that is not
   kept is deleted), then the cache is saved (atomically). Staging
   folders that killed builds left anywhere under the output root are removed first, cached specs or not.
   A folder that is not an earlier output of the same spec (:func:`tfspec.base.outputs.check_replaceable`:
   a user's folder, another spec's output, a folder holding a spec or the current folder) is never
   replaced: that spec is reported invalid at its ``name``, the others are written.

``check=True`` writes nothing: a spec whose cache entry matches (step 3) and whose output folder holds
exactly the recorded files, each with the sha256 its ``manifest.json`` lists (:func:`output_intact`: a file
edited by hand is caught even with its size and mtime restored), is up to date without being compiled; every
other spec is compiled and compared with its output folder (``use_cache=False``: every spec). ``prune=True`` removes (or, with ``check``, reports) folders under the output root that are
build outputs of the same environment (their ``manifest.json`` says so and lists every file in them) but
that no spec produces any more.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import ctypes
import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from tfspec.base.atomic import commit_tree, remove_dead_staging, stage_tree, staging_prefix
from tfspec.base.errors import Diagnostic
from tfspec.base.outputs import (MANIFEST, OutputPathError, Producer, Protected, check_protected, check_replaceable,
                                 owned_output, protected_paths, resolve_protected, with_manifest)
from tfspec.base.versions import TFSPEC_VERSION
from tfspec.spec.files import FileProblem, read_regular_file
from tfspec.spec.loader import MAX_FILE_BYTES

from tfspec.compiler.naming import dist_name, placed_files
from tfspec.compiler.project import find_project_file

from .tree_diff import diff_tree

__all__ = [
    "CACHE_FILE",
    "SPEC_SUFFIXES",
    "FolderBuild",
    "SpecOutcome",
    "build_folder",
    "build_producer",
    "compiler_fingerprint",
    "discover_specs",
    "inside_output_folder",
    "is_output_folder",
    "is_spec_text",
    "files_below",
    "manifest_entries",
    "output_dir_name",
    "output_intact",
    "referenced_specs",
]

CACHE_FILE = ".tfspec-build-cache.json"
CACHE_VERSION = 1
SPEC_SUFFIXES: tuple[str, ...] = (".yaml", ".yml")
_SPEC_MARKER = re.compile(r"^api_version:[ \t]*['\"]?tfspec/", re.MULTILINE)
# Writing is bound by fsync latency, not CPU: more threads than cores keep the disk queue full.
_WRITE_THREADS = 16
_VARIABLE_NAME = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def is_spec_text(text: str) -> bool:
    """True when ``text`` has a top-level ``api_version: tfspec/...`` line (the mark of a spec)."""
    return _SPEC_MARKER.search(text) is not None


def _read_text(path: Path) -> str | None:
    """The text of a regular file (never a FIFO, which would block), at most one byte past the largest spec."""
    try:
        return read_regular_file(path, MAX_FILE_BYTES).decode("utf-8", errors="replace")
    except FileProblem:
        return None


def _is_hidden(name: str) -> bool:
    return name.startswith(".")


def discover_specs(root: Path, exclude: Iterable[Path] = ()) -> list[Path]:
    """Every spec file below ``root`` (sorted), skipping hidden folders and the folders in ``exclude``."""
    return [path for path, _ in _discover(root, exclude)]


def build_producer(name: str, env: str | None) -> Producer:
    """What a build output's ``manifest.json`` records: the ``build`` of spec ``name`` with overlay ``env``."""
    return Producer("build", name, env)


def is_output_folder(folder: str | Path) -> bool:
    """True when ``folder`` holds a tfspec ``manifest.json``: it is build output (which may contain resolved
    copies of specs, e.g. ``<target>/spec/<name>.yaml`` of a training image), not a place to find specs."""
    try:
        with open(os.path.join(folder, MANIFEST), "rb") as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return False
    return isinstance(data, dict) and "manifest_version" in data


def inside_output_folder(path: str | Path, root: str | Path) -> bool:
    """True when a folder between ``path`` and ``root`` (``root`` included) is a tfspec output folder."""
    root = os.path.abspath(root)
    folder = os.path.dirname(os.path.abspath(path))
    while folder == root or folder.startswith(root + os.sep):
        if is_output_folder(folder):
            return True
        if folder == root:
            break
        folder = os.path.dirname(folder)
    return False


def _discover(root: Path, exclude: Iterable[Path] = ()) -> list[tuple[Path, str]]:
    """Spec files below ``root`` with their text (read once: the text compiled is the text hashed)."""
    root = Path(root)
    excluded = {os.path.abspath(p) for p in exclude}
    found: list[tuple[Path, str]] = []
    if is_output_folder(root):
        return found
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not _is_hidden(d) and os.path.abspath(os.path.join(folder, d)) not in excluded
                         and not is_output_folder(os.path.join(folder, d)))
        for name in sorted(files):
            if _is_hidden(name) or not name.endswith(SPEC_SUFFIXES):
                continue
            path = Path(folder) / name
            text = _read_text(path)
            if text is not None and is_spec_text(text):
                found.append((path, text))
    return found


output_dir_name = dist_name  # the folder a spec's output goes to under the output root


@functools.cache
def compiler_fingerprint() -> str:
    """sha256 over the source of ``tfspec.spec``, ``tfspec.plan``, ``tfspec.compiler`` and ``tfspec.templates``
    (+ version): what a compiled output depends on besides the spec."""
    digest = hashlib.sha256(TFSPEC_VERSION.encode())
    for package in ("tfspec.spec", "tfspec.plan", "tfspec.compiler", "tfspec.templates"):
        base = _package_folder(package)
        for path in sorted(base.rglob("*")):
            if path.suffix in (".py", ".j2") and path.is_file() and "__pycache__" not in path.parts:
                digest.update(path.relative_to(base).as_posix().encode())
                digest.update(path.read_bytes())
    return digest.hexdigest()


def _package_folder(package: str) -> Path:
    """The folder of ``package``, found without importing it: importing tfspec.plan would build its models,
    and the up-to-date fast path of ``tfspec build`` runs before anything of the compiler is imported."""
    found = importlib.util.find_spec(package)
    assert found is not None and found.submodule_search_locations, package
    return Path(list(found.submodule_search_locations)[0])


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def input_key(text: str, env: str | None, environ: Mapping[str, str]) -> str:
    """The cache key of one spec's own inputs (referenced files are checked separately)."""
    variables = {name: environ.get(name) for name in sorted(set(_VARIABLE_NAME.findall(text)))}
    payload = json.dumps({"spec": _sha256(text), "env": env, "variables": variables,
                          "tfspec": TFSPEC_VERSION, "compiler": compiler_fingerprint()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def referenced_specs(spec_path: str | Path, resolved: Any) -> tuple[str, ...]:
    """Other files whose content a spec's compile depends on: distillation teachers of kind ``spec``, the
    project file, base specs and policy files."""
    out: list[str] = []
    for stage in resolved.spec.compression:
        teacher = getattr(stage, "teacher", None)
        if teacher is not None and getattr(teacher, "kind", None) == "spec":
            out.append(os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(spec_path)), teacher.path)))
    out.extend(getattr(resolved, "sources", ()))  # project file, base specs, policy files
    return tuple(sorted(set(out)))


@dataclasses.dataclass(frozen=True)
class SpecOutcome:
    """What a folder build did with one spec.

    Attributes:
        path: the spec file (as found below the folder).
        status: ``built``, ``cached`` (inputs unchanged, not compiled), ``current`` / ``stale`` (``check``),
            or ``invalid``.
        name: the spec's ``name`` (None when it could not be read).
        out_dir: its output folder (None when invalid and unnamed).
        files: number of files in the output (``manifest.json`` included).
        diagnostics: every problem (status ``invalid``).
        diff: unified diff of a stale output (``check``).
        text_sha256: sha256 of the spec text that was built.
        deps: referenced files and their sha256 at build time.
        warnings: policy warnings of a spec compiled by this build (a cached spec is not judged again).
        inputs: the local data files, SavedModels, builder modules, ... the plan's digests cover (absolute
            paths of files and folders; ``tfspec watch`` rebuilds the spec when one changes).
    """

    path: str
    status: str
    name: str | None = None
    out_dir: str | None = None
    files: int = 0
    diagnostics: tuple[Diagnostic, ...] = ()
    diff: str = ""
    text_sha256: str = ""
    deps: tuple[tuple[str, str], ...] = ()
    warnings: tuple[Diagnostic, ...] = ()
    inputs: tuple[str, ...] = ()


@dataclasses.dataclass(frozen=True)
class FolderBuild:
    """The result of :func:`build_folder`."""

    root: str
    out_root: str
    outcomes: tuple[SpecOutcome, ...]
    compiled: int
    orphans: tuple[str, ...]
    seconds: float
    check: bool = False
    processes: int = 0
    """Distinct processes that compiled specs (1 when compiled here, up to ``jobs`` with workers)."""

    def count(self, status: str) -> int:
        return sum(1 for o in self.outcomes if o.status == status)

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return [d for o in self.outcomes for d in o.diagnostics]

    @property
    def exit_code(self) -> int:
        """2 when a spec is invalid, 1 when an output is stale (``check``), else 0."""
        if self.count("invalid"):
            return 2
        if self.check and (self.count("stale") or self.orphans):
            return 1
        return 0


@dataclasses.dataclass(frozen=True)
class _Compiled:
    path: str
    name: str | None
    name_position: tuple[int, int]
    files: dict[str, str]
    diagnostics: tuple[Diagnostic, ...]
    deps: tuple[str, ...]
    pid: int
    cacheable: bool = True
    """False when the plan holds digests of data, models or teachers: their files are not deps here."""
    warnings: tuple[Diagnostic, ...] = ()
    inputs: tuple[str, ...] = ()


_Job = tuple[str, str | None, str, dict[str, str]]


def _compile(job: _Job) -> _Compiled:
    """Worker: compile one spec from its text and variables (read once by the parent, as the cache key)."""
    from tfspec.compiler.inputs import input_paths
    from tfspec.compiler.pipeline import compile_spec

    path, env, text, variables = job
    result = compile_spec(path, env=env, text=text, environ=variables)
    if not result.ok or result.resolved is None:
        return _Compiled(path, None, (1, 1), {}, result.diagnostics, (), os.getpid())
    name_position = result.resolved.document.position(("name",))
    external = result.inputs is not None and bool(result.inputs.content or result.inputs.teachers)
    return _Compiled(path, result.resolved.spec.name, name_position, dict(result.files), (),
                     referenced_specs(path, result.resolved), os.getpid(), cacheable=not external,
                     warnings=result.warnings, inputs=tuple(input_paths(result.resolved)))


_PR_SET_PDEATHSIG = 1


def _init_worker(parent: int) -> None:
    """Pool worker start-up: Ctrl-C is the parent's to handle, and the worker dies with its parent.

    A SIGKILLed build cannot shut its pool down: without this its workers live on, reparented to init,
    holding the build's stdout/stderr open (whoever reads them to the end waits forever). Linux delivers
    SIGKILL to the worker when the parent dies (``PR_SET_PDEATHSIG``); the parent-pid check covers a parent
    that died before that was set. Where there is no ``prctl`` a thread polls the parent's pid.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:  # the process's own symbols include libc's (no find_library: it runs ldconfig in every worker)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: a thread watches the parent instead
        threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()
    if os.getppid() != parent:
        os._exit(1)


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


def _compile_all(jobs: list[_Job], workers: int, on_result: Callable[[_Compiled], None]) -> list[_Compiled]:
    """Compile ``jobs``; ``on_result`` sees each result as it arrives (in job order)."""
    if workers <= 1 or len(jobs) <= 1:
        return [_seen(_compile(job), on_result) for job in jobs]
    import multiprocessing  # here, not at the top: a build of one spec (or one changed spec) never forks

    from tfspec.compiler import pipeline  # noqa: F401  (imported before forking, so workers start warm)

    method = "fork" if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods() else "spawn"
    workers = min(workers, len(jobs))
    chunk = max(1, len(jobs) // (workers * 4))
    executor = concurrent.futures.ProcessPoolExecutor(
        max_workers=workers, mp_context=multiprocessing.get_context(method), initializer=_init_worker,
        initargs=(os.getpid(),))
    try:
        results = [_seen(result, on_result) for result in executor.map(_compile, jobs, chunksize=chunk)]
    except BaseException:
        executor.shutdown(wait=False, cancel_futures=True)
        raise
    executor.shutdown(wait=True)
    return results


def _seen(result: _Compiled, on_result: Callable[[_Compiled], None]) -> _Compiled:
    on_result(result)
    return result


class _Stager:
    """Stages each valid spec's output (written beside its folder and fsynced, :func:`stage_tree`) on writer
    threads while the other specs still compile; :meth:`commit` swaps the ones the build keeps in once every
    name is known, :meth:`close` deletes the others (a duplicate or refused name, an interrupted build)."""

    def __init__(self, out_root: Path, env: str | None, write: bool) -> None:
        self.out_root, self.env = out_root, env
        self.writer = concurrent.futures.ThreadPoolExecutor(max_workers=_WRITE_THREADS) if write else None
        self.placed: dict[str, tuple[Path, Producer, dict[str, str]]] = {}
        self.staged: dict[str, concurrent.futures.Future[Path]] = {}

    def place(self, result: _Compiled) -> None:
        if result.diagnostics or result.name is None:
            return
        out_dir = self.out_root / output_dir_name(result.name, self.env)
        producer = build_producer(result.name, self.env)
        files = with_manifest(placed_files(result.files, result.path, out_dir), producer)
        self.placed[result.path] = (out_dir, producer, files)
        if self.writer is not None:
            self.staged[result.path] = self.writer.submit(stage_tree, out_dir, files, producer)

    def commit(self, writes: list[tuple[str, Path, dict[str, str], Producer]], protected: list[Protected]) -> None:
        """Swap in the staged outputs of ``writes`` (each folder checked again just before its swap)."""
        assert self.writer is not None
        commits = [self.writer.submit(commit_tree, self.staged.pop(path).result(), out_dir, producer,
                                      protected=tuple(protected)) for path, out_dir, _, producer in writes]
        for future in commits:
            future.result()

    def close(self) -> None:
        if self.writer is None:
            return
        self.writer.shutdown(wait=True)
        for future in self.staged.values():
            if future.exception() is None:
                shutil.rmtree(future.result(), ignore_errors=True)
        self.staged.clear()


# --- the cache -------------------------------------------------------------------------------------------


def _load_cache(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict) or data.get("version") != CACHE_VERSION or not isinstance(data.get("entries"), dict):
        return {}
    return data["entries"]


def _save_cache(path: Path, entries: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    # named like staging folders (``.<name>.<owner>.<random>.tmp``), so the next build removes one a kill left
    handle, temp = tempfile.mkstemp(prefix=staging_prefix(path.name[1:]), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            # compact: with ``indent`` the json module falls back to its pure-Python encoder (5x slower here)
            stream.write(json.dumps({"version": CACHE_VERSION, "entries": entries}, sort_keys=True,
                                    separators=(",", ":")))
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _output_stats(out_dir: Path, files: Iterable[str]) -> dict[str, list[int]] | None:
    """``{file: [size, mtime_ns]}`` of an output folder (plain string paths: this runs for every file of
    every spec on each folder build, where pathlib's object creation was most of the cost)."""
    base = os.fspath(out_dir)
    stats: dict[str, list[int]] = {}
    for rel in files:
        try:
            st = os.stat(os.path.join(base, rel))
        except OSError:
            return None
        stats[rel] = [st.st_size, st.st_mtime_ns]
    return stats


def files_below(folder: str | Path) -> set[str]:
    """Every file below ``folder`` (relative, '/'-separated): an extra file makes an output stale too."""
    found: set[str] = set()
    for parent, _, names in os.walk(folder):
        relative = os.path.relpath(parent, folder)
        found.update(name if relative == "." else f"{relative}/{name}".replace(os.sep, "/") for name in names)
    return found


def output_intact(out_dir: str | Path, entry: Mapping[str, Any]) -> bool:
    """``out_dir`` holds exactly the files of the cache ``entry`` (no file missing or added) and each has the
    sha256 that its ``manifest.json`` (itself the recorded one) lists: the bytes on disk are the bytes the
    recorded build wrote, whatever their sizes and mtimes say. What ``--check`` needs to call an output up to
    date without compiling its spec; anything it cannot prove is False (the spec is then compiled and diffed)."""
    base = os.fspath(out_dir)
    try:
        with open(os.path.join(base, MANIFEST), "rb") as handle:
            manifest = handle.read()
        if hashlib.sha256(manifest).hexdigest() != entry["manifest_sha256"]:
            return False
        listed = json.loads(manifest)["files"]
        if not isinstance(listed, dict) or set(listed) | {MANIFEST} != set(entry["stats"]):
            return False
        if files_below(base) != set(entry["stats"]):
            return False
        for rel, sha in listed.items():
            path = os.path.join(base, rel)
            if os.path.islink(path):  # a build writes regular files only
                return False
            with open(path, "rb") as handle:
                if hashlib.sha256(handle.read()).hexdigest() != sha:
                    return False
    except (OSError, ValueError, KeyError, TypeError):
        return False
    return True


def _deps_current(deps: Mapping[str, str]) -> bool:
    for dep, sha in deps.items():
        text = _read_text(Path(dep))
        if text is None or _sha256(text) != sha:
            return False
    return True


def _dep_variables(deps: Iterable[str], environ: Mapping[str, str]) -> dict[str, str | None]:
    """The ``${VAR}`` values the spec's other files (base specs, project file) read, by name."""
    names: set[str] = set()
    for dep in deps:
        names.update(_VARIABLE_NAME.findall(_read_text(Path(dep)) or ""))
    return {name: environ.get(name) for name in sorted(names)}


def _cache_hit(entry: Any, key: str, out_root: Path, spec_path: str, environ: Mapping[str, str]) -> bool:
    """The entry matches the inputs and its output folder is exactly as that build left it.

    Besides the spec's own text and the files it depended on, the project file the spec would find now must
    be the one it found then (a ``tfspec.yaml`` created above it changes its bases and policies), and the
    variables its bases read must hold the same values.
    """
    if not isinstance(entry, dict) or entry.get("key") != key:
        return False
    try:
        out_dir = out_root / entry["out"]
        if find_project_file(spec_path) != entry["project"]:
            return False
        if not _deps_current(entry["deps"]):
            return False
        if _dep_variables(entry["deps"], environ) != entry["variables"]:
            return False
        manifest = (out_dir / MANIFEST).read_text("utf-8")
        if _sha256(manifest) != entry["manifest_sha256"]:
            return False
        return _output_stats(out_dir, entry["stats"]) == entry["stats"]
    except (KeyError, TypeError, OSError):
        return False


# --- the build -------------------------------------------------------------------------------------------


def _duplicate_names(named: dict[str, tuple[str, tuple[int, int]]], env: str | None,
                     out_root: Path) -> dict[str, Diagnostic]:
    """``named``: spec path → (name, position of ``name``). Returns a diagnostic for each clashing spec."""
    by_out: dict[str, list[str]] = {}
    for path, (name, _) in named.items():
        by_out.setdefault(output_dir_name(name, env), []).append(path)
    problems: dict[str, Diagnostic] = {}
    for out, paths in by_out.items():
        if len(paths) < 2:
            continue
        for path in paths:
            others = ", ".join(p for p in paths if p != path)
            name, (line, column) = named[path]
            problems[path] = Diagnostic(path, line, column, "name", f"spec name {name!r} is also used by {others}",
                                        f"each spec needs its own name: they would both write {out_root / out}/")
    return problems


def _owned_output_folders(out_root: Path, env: str | None, protected: list[Protected]) -> set[str]:
    """Folders directly under ``out_root`` that are build outputs for the environment ``env`` (their
    manifest.json says so and lists every file they hold; a manifest from before tfspec recorded the
    producer counts for every environment) and hold no protected path."""
    owned: set[str] = set()
    if not out_root.is_dir():
        return owned
    for entry in os.scandir(out_root):
        if not entry.is_dir(follow_symlinks=False) or _is_hidden(entry.name):
            continue
        producer = owned_output(entry.path, "build")
        if producer is None or (producer.spec and producer.environment != env):
            continue
        try:
            check_protected(Path(entry.path), protected, "output folder")
        except OutputPathError:
            continue
        owned.add(entry.name)
    return owned


def build_folder(root: str | Path, out_root: str | Path, env: str | None = None, *, check: bool = False,
                 jobs: int | None = None, use_cache: bool = True, prune: bool = False,
                 environ: Mapping[str, str] | None = None) -> FolderBuild:
    """Build (or, with ``check``, verify) every spec below ``root`` into ``out_root/<name>/``."""
    started = time.perf_counter()
    root, out_root = Path(root), Path(out_root)
    environ = os.environ if environ is None else environ
    workers = jobs if jobs is not None else (os.cpu_count() or 1)
    discovered = _discover(root, exclude=[out_root])
    specs = [path for path, _ in discovered]
    cache_path = out_root / CACHE_FILE
    cache = _load_cache(cache_path) if use_cache else {}
    if not check:
        # What killed builds left, whichever outputs this build writes: a spec skipped as cached below never
        # reaches stage_tree, so its staging folders would otherwise outlive every later build.
        remove_dead_staging(out_root)
    # no output folder may be, or hold, the current folder, the folder built, a spec or a project root
    protected = resolve_protected(protected_paths(specs, {find_project_file(spec) for spec in specs})
                                  + [(root, f"the spec folder {root}")])

    texts: dict[str, str] = {}
    keys: dict[str, str] = {}
    outcomes: dict[str, SpecOutcome] = {}
    named: dict[str, tuple[str, tuple[int, int]]] = {}
    to_compile: list[_Job] = []
    for spec, text in discovered:
        path = str(spec)
        texts[path] = text
        keys[path] = input_key(text, env, environ)
        entry = cache.get(os.path.abspath(path))
        # --check trusts the entry only when the output's bytes are proven to be what that build wrote
        if use_cache and _cache_hit(entry, keys[path], out_root, path, environ) \
                and (not check or output_intact(out_root / entry["out"], entry)):
            named[path] = (entry["name"], tuple(entry["name_position"]))
            outcomes[path] = SpecOutcome(path, "current" if check else "cached", entry["name"], str(out_root / entry["out"]),
                                         len(entry["stats"]), text_sha256=_sha256(text),
                                         deps=tuple(sorted(entry["deps"].items())))
        else:
            # the whole environment: base specs the spec extends may read ${VAR}s its own text does not name
            to_compile.append((path, env, text, dict(environ)))

    stager = _Stager(out_root, env, write=not check)
    try:
        compiled = {c.path: c for c in _compile_all(to_compile, workers, stager.place)}
    except BaseException:
        stager.close()
        raise
    for path, result in compiled.items():
        if result.diagnostics:
            outcomes[path] = SpecOutcome(path, "invalid", diagnostics=result.diagnostics, text_sha256=_sha256(texts[path]))
        else:
            assert result.name is not None
            named[path] = (result.name, result.name_position)
    for path, problem in _duplicate_names(named, env, out_root).items():
        outcomes[path] = SpecOutcome(path, "invalid", named[path][0], diagnostics=(problem,),
                                     text_sha256=_sha256(texts[path]))

    writes: list[tuple[str, Path, dict[str, str], Producer]] = []
    for path, result in compiled.items():
        if path in outcomes:
            continue
        assert result.name is not None
        out_dir, producer, files = stager.placed[path]
        deps = tuple((dep, _sha256(_read_text(Path(dep)) or "")) for dep in result.deps)
        if not check:
            try:
                check_replaceable(out_dir, producer, protected)
            except OutputPathError as error:  # the spec's name picks the folder: the problem is reported there
                line, column = result.name_position
                outcomes[path] = SpecOutcome(path, "invalid", result.name, diagnostics=(
                    Diagnostic(path, line, column, "name", str(error)),), text_sha256=_sha256(texts[path]))
                continue
        if check:
            diff = diff_tree(out_dir, files, producer)
            outcomes[path] = SpecOutcome(path, "stale" if diff else "current", result.name, str(out_dir), len(files),
                                         diff=diff, text_sha256=_sha256(texts[path]), deps=deps,
                                         warnings=result.warnings, inputs=result.inputs)
        else:
            writes.append((path, out_dir, files, producer))
            outcomes[path] = SpecOutcome(path, "built", result.name, str(out_dir), len(files),
                                         text_sha256=_sha256(texts[path]), deps=deps, warnings=result.warnings,
                                         inputs=result.inputs)

    try:
        if writes:
            stager.commit(writes, protected)
    finally:
        stager.close()  # what was staged and not kept

    orphans: tuple[str, ...] = ()
    all_named = not any(o.status == "invalid" and o.name is None for o in outcomes.values())
    if prune and all_named:
        produced = {output_dir_name(name, env) for name, _ in named.values()}
        orphans = tuple(sorted(_owned_output_folders(out_root, env, protected) - produced))
        if not check:
            for orphan in orphans:
                shutil.rmtree(out_root / orphan)

    if not check and use_cache:
        entries = {k: v for k, v in cache.items() if isinstance(v, dict) and Path(k).exists()}
        for path, out_dir, files, _ in writes:
            stats = _output_stats(out_dir, files)
            if stats is None or not compiled[path].cacheable:
                continue
            entries[os.path.abspath(path)] = {
                "key": keys[path],
                "name": compiled[path].name,
                "name_position": list(compiled[path].name_position),
                "out": out_dir.name,
                "deps": dict(outcomes[path].deps),
                "project": find_project_file(path),
                "variables": _dep_variables(dict(outcomes[path].deps), environ),
                "manifest_sha256": _sha256(files[MANIFEST]),
                "stats": stats,
            }
        for path, outcome in outcomes.items():
            if outcome.status == "invalid":
                entries.pop(os.path.abspath(path), None)
        if writes or entries != cache:
            _save_cache(cache_path, entries)

    ordered = tuple(outcomes[str(spec)] for spec in specs)
    return FolderBuild(str(root), str(out_root), ordered, len(to_compile), orphans,
                       time.perf_counter() - started, check, len({c.pid for c in compiled.values()}))


def manifest_entries(files: Mapping[str, str]) -> dict[str, str]:
    """{path: sha256} as ``manifest.json`` lists them (the manifest itself excluded)."""
    return {path: _sha256(text) for path, text in sorted(files.items()) if path != MANIFEST}
