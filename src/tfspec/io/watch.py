"""Watch mode: recompile the specs a change affects, keep the last good output of a broken spec.

:class:`SpecWatcher` runs in one long-lived process, so the compiler is imported once and a rebuild costs
only the compile and the write. Steps of a rebuild:

1. collect — the first file event from watchdog (inotify on Linux), with any already queued, is rebuilt at
   once (the leading edge), then events are gathered until ``debounce`` seconds pass without a new one (at
   most ``max_wait``) and what they affect is rebuilt again (the trailing edge; an unchanged text is
   skipped). An editor's save in several steps (write a temp file, rename it over the spec, touch it)
   costs one compile when its steps arrive together. The leading edge is provisional: a spec that fails
   to compile there, is missing or is not a spec is left alone, silently (tried again, as silently, when
   the next events arrive), and judged on the trailing edge once the file has been quiet for ``debounce``,
   so a save caught half-way never prints a false error.
2. affected — a changed spec; every spec that references a changed file (a distillation teacher of kind
   ``spec``, a base spec); every spec one of whose inputs changed (a data file or folder, a tfrecord glob's
   folder, a SavedModel, a weights file, a builder's modules: what the plan fingerprints, so the rebuilt
   output agrees with ``tfspec build --check``; object-store inputs cannot be watched); in folder mode, a new ``*.yaml`` file with a top-level ``api_version: tfspec/...`` line and
   the specs of a folder that appeared or vanished. A spec whose text and references did not change
   (a touch, a save without edits) is skipped.
3. compile — in this process; on problems the diagnostics are printed and the output folder is left as it
   was (the last good output).
4. write — only when the files differ from those on disk, atomically (``write_tree``), with one summary
   line: ``specs/a.yaml -> build/a: 3 changed, 0 added, 0 removed: plan.json, … (25 ms)``.

The watch never ends because of a bad spec; :meth:`SpecWatcher.stop` (Ctrl-C in the CLI) ends it cleanly.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import os
import queue
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from tfspec.base.atomic import write_tree
from tfspec.base.errors import Diagnostic, TfspecError
from tfspec.base.outputs import MANIFEST, OutputPathError, protected_paths, read_manifest, with_manifest
from tfspec.spec.files import FileProblem, read_regular_file
from tfspec.spec.loader import MAX_FILE_BYTES

from tfspec.compiler.naming import placed_files
from tfspec.compiler.project import find_project_file

from .batch import (SPEC_SUFFIXES, build_folder, build_producer, discover_specs, inside_output_folder, is_spec_text,
                    manifest_entries, output_dir_name, referenced_specs)

__all__ = ["SpecWatcher", "WatchPathError"]

# Seconds of idleness between checks for changes whose events were lost.
RESCAN_SECONDS = 2.0

Echo = Callable[[str], None]


class WatchPathError(TfspecError):
    """The path to watch does not exist."""


@dataclasses.dataclass
class _Watched:
    display: str
    text_sha256: str
    deps: dict[str, str]
    name: str | None
    out_dir: Path | None
    ok: bool
    inputs: tuple[str, ...] = ()
    """Files and folders the spec's plan digests (:func:`tfspec.compiler.inputs.input_paths`)."""


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _read(path: str) -> str | None:
    """A regular file's text (a FIFO named like a spec would block the watcher), None otherwise."""
    try:
        return read_regular_file(path, MAX_FILE_BYTES).decode("utf-8", errors="replace")
    except FileProblem:
        return None


def _display(path: str) -> str:
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


class SpecWatcher:
    """Watch one spec file or every spec below a folder, rebuilding on change.

    Args:
        target: a spec file, or a folder searched recursively.
        out: for a file, its output folder (default ``build/<name>/``); for a folder, the output root
            (default ``build/``; each spec goes to ``<root>/<name>/``).
        env: environment overlay applied to every spec.
        echo: prints a progress line (stdout in the CLI).
        echo_error: prints a diagnostic line (stderr in the CLI).
        debounce: seconds without events that end a burst.
        max_wait: the longest a burst is collected before rebuilding anyway.
        jobs: worker processes of the initial folder build.
    """

    def __init__(self, target: str | Path, out: str | Path | None, env: str | None, *, echo: Echo, echo_error: Echo,
                 debounce: float = 0.05, max_wait: float = 1.0, jobs: int | None = None) -> None:
        self.target = Path(target)
        if not self.target.exists():
            raise WatchPathError(f"{target}: no such file or folder")
        self.folder_mode = self.target.is_dir()
        self.root = os.path.abspath(self.target if self.folder_mode else self.target.parent)
        self.spec_path = os.path.abspath(self.target)
        self.out = Path(out) if out is not None else None
        self.out_root = Path(out) if (out is not None and self.folder_mode) else Path("build")
        self.env = env
        self.echo = echo
        self.echo_error = echo_error
        self.debounce = debounce
        self.max_wait = max_wait
        self.jobs = jobs
        self.rebuilds = 0
        self.watched: dict[str, _Watched] = {}
        self._dependents: dict[str, set[str]] = {}
        self._input_owners: dict[str, set[str]] = {}
        self._events: queue.Queue[tuple[str, bool, float]] = queue.Queue()
        self._stopping = False
        self._observer = None
        self._watched_dirs: set[str] = set()
        self._recursive_dirs: set[str] = set()
        # previous output trees are deleted off the event loop: unlinking is the slowest part of a write
        self._deleter = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="tfspec-discard")

    # --- lifecycle ---------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask :meth:`run` to return after the rebuild in progress (safe to call from a signal handler)."""
        self._stopping = True

    def run(self) -> None:
        """Build once, then rebuild on every change until :meth:`stop` is called."""
        from watchdog.observers import Observer

        self._initial_build()
        observer = Observer()
        self._observer = observer
        handler = _EventSink(self._events)
        observer.schedule(handler, self.root, recursive=self.folder_mode)
        self._watched_dirs.add(self.root)
        if self.folder_mode:
            self._recursive_dirs.add(self.root)
        self._handler = handler
        observer.start()
        try:
            self._watch_reference_dirs()
            # edits made between the initial build and the start of the observer
            self.rebuild([(path, False) for path in self._all_candidates()])
            count = sum(1 for w in self.watched.values())
            self.echo(f"watching {self.target} ({count} spec{'s' if count != 1 else ''}); press Ctrl-C to stop")
            last_scan = time.monotonic()
            while not self._stopping:
                batch = self._next_batch()
                if batch:
                    self._rebuild_burst(batch)
                elif time.monotonic() - last_scan >= RESCAN_SECONDS:
                    # File-system events can be lost (inotify watches are added to a moved-in folder only
                    # after it arrives): when idle, compare the watched set with the disk now and then.
                    last_scan = time.monotonic()
                    missed = self._missed_changes()
                    if missed:
                        self.rebuild(missed)
        finally:
            observer.stop()
            observer.join(timeout=5)
            self._deleter.shutdown(wait=True)

    def _missed_changes(self) -> list[tuple[str, bool]]:
        """Watched specs that vanished, and (folder mode) specs that appeared, without an event."""
        gone = [path for path in self.watched if not os.path.exists(path)]
        new = [path for path in self._all_candidates() if path not in self.watched] if self.folder_mode else []
        return [(path, False) for path in sorted(set(gone + new))]

    def _all_candidates(self) -> list[str]:
        if not self.folder_mode:
            return [self.spec_path]
        found = {os.path.abspath(p) for p in discover_specs(Path(self.root), exclude=[self.out_root])}
        return sorted(found | set(self.watched))

    def _initial_build(self) -> None:
        if not self.folder_mode:
            self._rebuild_one(self.spec_path)
            return
        result = build_folder(self.target, self.out_root, self.env, jobs=self.jobs)
        for outcome in result.outcomes:
            path = os.path.abspath(outcome.path)
            ok = outcome.status != "invalid"
            self.watched[path] = _Watched(outcome.path, outcome.text_sha256, dict(outcome.deps),
                                          outcome.name if ok else None,
                                          Path(outcome.out_dir) if ok and outcome.out_dir else None, ok,
                                          outcome.inputs)
            for diagnostic in outcome.diagnostics:
                self.echo_error(diagnostic.format_with_excerpt())
        self._index_dependents()
        self.echo(f"initial build of {self.target}: {len(result.outcomes)} specs: {result.count('built')} built, "
                  f"{result.count('cached')} unchanged, {result.count('invalid')} invalid ({result.seconds * 1000:.0f} ms)")

    # --- events ------------------------------------------------------------------------------------------

    def _next_batch(self) -> list[tuple[str, bool, float]]:
        """The first event (waiting at most 0.1 s) and every event already queued behind it."""
        try:
            batch = [self._events.get(timeout=0.1)]
        except queue.Empty:
            return []
        while True:
            try:
                batch.append(self._events.get_nowait())
            except queue.Empty:
                return batch

    def _rebuild_burst(self, first: list[tuple[str, bool, float]]) -> None:
        """Rebuild what ``first`` affects at once (provisionally), then, once no relevant event came for
        ``debounce`` seconds (or ``max_wait`` after the first), what later events affect and what the
        leading edge left for the quiet file (a failed compile, a missing file). What the leading edge left
        is tried again (provisionally) whenever further events have arrived: an editor's second step."""
        deadline = time.monotonic() + self.max_wait
        last = max(at for path, _, at in first)
        deferred = self.rebuild([(path, is_dir) for path, is_dir, _ in first], provisional=True)
        later: list[tuple[str, bool]] = []
        while True:
            try:
                path, is_dir, at = self._events.get_nowait()
            except queue.Empty:
                timeout = min(last + self.debounce, deadline) - time.monotonic()
                if timeout <= 0:
                    break
                try:
                    path, is_dir, at = self._events.get(timeout=timeout)
                except queue.Empty:
                    break
            later.append((path, is_dir))
            if self._relevant(path):  # our own output's events do not keep a burst open
                last = max(last, at)
                if deferred and self._events.empty():  # a save caught half-way may be complete now: try again
                    deferred = self._rebuild_paths(set(deferred), {p for p, f in deferred.items() if f},
                                                   provisional=True)
        if later or deferred:
            candidates, forced = self._affected(later)
            self._rebuild_paths(candidates | set(deferred), forced | {p for p, f in deferred.items() if f})

    def _relevant(self, path: str) -> bool:
        """An event on ``path`` can make a spec rebuild (a spec, a referenced file, an input)."""
        path = os.path.abspath(path)
        if path in self._dependents or not self._ignored(path):
            return True
        return any(path == root or path.startswith(root + os.sep) for root in self._input_owners)

    def _ignored(self, path: str) -> bool:
        out_root = os.path.abspath(self.out_root)
        if self.folder_mode and (path == out_root or path.startswith(out_root + os.sep)):
            return True
        relative = os.path.relpath(path, self.root)
        parts = Path(relative).parts if not relative.startswith("..") else Path(path).parts[-1:]
        return any(part.startswith(".") and part not in (".", "..") for part in parts)

    def rebuild(self, events: list[tuple[str, bool]], *, provisional: bool = False) -> dict[str, bool]:
        """Rebuild every spec affected by ``events`` (``(path, is_directory)`` pairs).

        ``provisional`` (the leading edge of a burst): a spec that does not compile, or is not there, is
        left as it was and returned (path: forced) instead of reported."""
        candidates, forced = self._affected(events)
        return self._rebuild_paths(candidates, forced, provisional=provisional)

    def _affected(self, events: list[tuple[str, bool]]) -> tuple[set[str], set[str]]:
        """The specs ``events`` may change, and those of them whose plan inputs changed (to force)."""
        candidates: set[str] = set()
        forced: set[str] = set()  # specs whose inputs changed: their text did not
        for raw, is_dir in events:
            path = os.path.abspath(raw)
            candidates.update(self._dependents.get(path, ()))
            for root, owners in self._input_owners.items():
                if path == root or path.startswith(root + os.sep):
                    forced.update(owners)
            if self._ignored(path):
                continue
            if path in self.watched:
                candidates.add(path)
            if not self.folder_mode:
                if path == self.spec_path:
                    candidates.add(path)
                continue
            if is_dir or os.path.isdir(path):
                if os.path.isdir(path):
                    candidates.update(os.path.abspath(p) for p in discover_specs(Path(path), exclude=[self.out_root]))
                prefix = path + os.sep
                candidates.update(p for p in self.watched if p.startswith(prefix))
            elif (path.endswith(SPEC_SUFFIXES) and path.startswith(self.root + os.sep)
                  and not inside_output_folder(path, self.root)):
                candidates.add(path)  # a file outside the folder (a base spec, a teacher) only rebuilds its dependents
        return candidates, forced

    def _rebuild_paths(self, candidates: set[str], forced: set[str], *, provisional: bool = False) -> dict[str, bool]:
        deferred = {path: path in forced for path in sorted(candidates | forced)
                    if not self._rebuild_one(path, force=path in forced, provisional=provisional)}
        self._watch_reference_dirs()
        return deferred

    # --- one spec ----------------------------------------------------------------------------------------

    def _index_dependents(self) -> None:
        dependents: dict[str, set[str]] = {}
        owners: dict[str, set[str]] = {}
        for path, watched in self.watched.items():
            for dep in watched.deps:
                dependents.setdefault(dep, set()).add(path)
            for root in watched.inputs:
                owners.setdefault(root, set()).add(path)
        self._dependents = dependents
        self._input_owners = owners

    def _watch_reference_dirs(self) -> None:
        """Also watch the folders of referenced files and of inputs that the observer does not see yet:
        a referenced file's or input file's folder (not below it), an input folder with all below it."""
        if self._observer is None:
            return
        wanted = [(os.path.dirname(dep), False) for dep in self._dependents]
        for root in self._input_owners:
            wanted.append((root, True) if os.path.isdir(root) else (os.path.dirname(root), False))
        for folder, recursive in wanted:
            inside = self.folder_mode and (folder == self.root or folder.startswith(self.root + os.sep))
            covered = any(folder == seen or folder.startswith(seen + os.sep) for seen in self._recursive_dirs)
            key = folder + (os.sep + "**" if recursive else "")
            if inside or covered or key in self._watched_dirs or not os.path.isdir(folder):
                continue
            self._observer.schedule(self._handler, folder, recursive=recursive)
            self._watched_dirs.add(key)
            if recursive:
                self._recursive_dirs.add(folder)

    def _discard(self, previous: Path) -> None:
        self._deleter.submit(_remove_tree, previous)

    def _deps_current(self, deps: dict[str, str]) -> bool:
        return all(_sha256(_read(dep) or "") == sha for dep, sha in deps.items())

    def _rebuild_one(self, path: str, force: bool = False, provisional: bool = False) -> bool:
        """Recompile ``path`` if its text or a referenced file changed, or always with ``force`` (an input
        of its plan changed). ``provisional``: change nothing and return False (judge it again later) when
        the file is missing, empty or not a spec, or does not compile; True otherwise."""
        from tfspec.compiler.inputs import input_paths
        from tfspec.compiler.pipeline import compile_spec

        known = self.watched.get(path)
        text = _read(path)
        if provisional and (text is None or not text.strip() or (self.folder_mode and not is_spec_text(text))):
            return False
        if known is not None and text is not None and not text.strip():
            # An editor or `>` truncates before it writes: the file is being rewritten, not removed. The
            # write that follows sends its own event (a spec emptied on purpose stays watched: no output).
            return True
        if text is None or (self.folder_mode and not is_spec_text(text)):
            if known is not None:
                del self.watched[path]
                self._index_dependents()
                left = f"; its output {known.out_dir} is left in place" if known.out_dir else ""
                self.echo(f"{known.display}: removed{left}")
            return True
        sha = _sha256(text)
        if not force and known is not None and known.text_sha256 == sha and self._deps_current(known.deps):
            return True
        started = time.perf_counter()
        display = known.display if known is not None else _display(path)
        result = compile_spec(display, env=self.env, text=text)
        self.rebuilds += 1
        if provisional and (not result.ok or result.resolved is None):
            return False
        if not result.ok or result.resolved is None:
            out_dir = known.out_dir if known is not None else None
            deps = known.deps if known is not None else {}
            inputs = known.inputs if known is not None else ()  # a restored data file must rebuild it
            self.watched[path] = _Watched(display, sha, deps, known.name if known else None, out_dir, False, inputs)
            self._index_dependents()
            for diagnostic in result.diagnostics:
                self.echo_error(diagnostic.format_with_excerpt())
            count = len(result.diagnostics)
            kept = f"keeping the last good output in {out_dir}" if out_dir else "nothing written"
            self.echo_error(f"{display}: {count} problem{'s' if count != 1 else ''}; {kept}")
            return True
        name = result.resolved.spec.name
        if not self.folder_mode and self.out is not None:
            out_dir = self.out
        else:
            out_dir = self.out_root / output_dir_name(name, self.env)
        clash = [w.display for p, w in self.watched.items() if p != path and w.out_dir == out_dir]
        if clash and provisional:
            return False
        if clash:
            line, column = result.resolved.document.position(("name",))
            self.echo_error(f"{display}:{line}:{column}: name: spec name {name!r} is also used by {clash[0]} "
                            f"(hint: each spec needs its own name: they would both write {out_dir}/)")
            self.echo_error(f"{display}: 1 problem; nothing written")
            self.watched[path] = _Watched(display, sha, {}, None, None, False)
            return True
        for warning in result.warnings:
            self.echo_error(warning.format())
        deps = {dep: _sha256(_read(dep) or "") for dep in referenced_specs(display, result.resolved)}
        self.watched[path] = _Watched(display, sha, deps, name, out_dir, True, tuple(input_paths(result.resolved)))
        self._index_dependents()
        producer = build_producer(name, self.env)
        files = with_manifest(placed_files(result.files, path, out_dir), producer)
        new = manifest_entries(files)
        old = read_manifest(out_dir) or {}
        added = sorted(set(new) - set(old))
        removed = sorted(set(old) - set(new))
        changed = sorted(p for p in set(new) & set(old) if new[p] != old[p])
        milliseconds = (time.perf_counter() - started) * 1000
        if not (added or removed or changed) and _intact(out_dir, files):
            self.echo(f"{display} -> {out_dir}: no change ({milliseconds:.0f} ms)")
            return True
        protected = protected_paths(sorted({path, *self.watched}), [find_project_file(path)])
        if self.folder_mode:
            protected.append((self.root, f"the watched folder {self.target}"))
        try:
            write_tree(out_dir, files, producer, discard=self._discard, protected=tuple(protected),
                       option="--out" if self.out is not None else "output folder")
        except OutputPathError as error:  # a user's folder is never replaced: say so, keep watching
            line, column = result.resolved.document.position(("name",))
            self.echo_error(Diagnostic(display, line, column, "name", str(error)).format())
            self.echo_error(f"{display}: 1 problem; nothing written")
            return True
        milliseconds = (time.perf_counter() - started) * 1000
        touched = changed + added + removed
        names = ", ".join(touched[:3]) + (f", … ({len(touched) - 3} more)" if len(touched) > 3 else "")
        self.echo(f"{display} -> {out_dir}: {len(changed)} changed, {len(added)} added, {len(removed)} removed"
                  + (f": {names}" if names else "") + f" ({milliseconds:.0f} ms)")
        return True


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _intact(out_dir: Path, files: dict[str, str]) -> bool:
    """``out_dir`` holds exactly ``files``."""
    if not out_dir.is_dir():
        return False
    on_disk = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()}
    if on_disk != set(files):
        return False
    return all((out_dir / rel).read_bytes() == text.encode("utf-8") for rel, text in files.items() if rel != MANIFEST) \
        and (out_dir / MANIFEST).read_text("utf-8") == files[MANIFEST]


class _EventSink:
    """watchdog handler: put ``(path, is_directory, monotonic time)`` of every event that can change a file on a queue."""

    _IGNORED = ("opened", "closed_no_write")

    def __init__(self, events: queue.Queue[tuple[str, bool, float]]) -> None:
        self.events = events

    def dispatch(self, event) -> None:  # watchdog's handler protocol
        if event.event_type in self._IGNORED:
            return
        at = time.monotonic()  # when it happened: a burst ends after ``debounce`` without a relevant one
        src = os.fsdecode(event.src_path)
        self.events.put((src, event.is_directory, at))
        dest = getattr(event, "dest_path", "")
        if dest:
            self.events.put((os.fsdecode(dest), event.is_directory, at))
