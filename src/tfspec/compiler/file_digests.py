"""Content digests of files, folders and globs, with a stat memo so unchanged files are not re-read.

The memo maps a file's path (relative to the spec's folder) and its stat — size, ``mtime_ns``, inode,
``ctime_ns`` — to the sha256 of its bytes, as git's index does. An unchanged file costs one ``stat``.
``ctime_ns`` is in the key because a rewrite that restores the old size and mtime (``os.utime``) still
moves the ctime, which no user tool can set back.

"Racy" entries (git's term): a file written within the same second as the memo, or later, might change
again without its stat changing (coarse file-system clocks). Such entries are kept but marked, and a
marked entry is re-hashed the next time it is used.

A folder (an ``image_folder``, a SavedModel) also gets one line in a second, small memo,
``.tfspec/input-trees.json``: a sha256 over every file's relative name and stat, the folder's listing
digest, and its files' count and bytes (for :class:`InputLimits`). When the folder's files, listed and
stat'ed again, give the same signature, the listing digest is taken from there without looking up each file
(nor loading the per-file memo, which for 200,000 files is a 30 MB JSON document): still one ``stat`` per
file, and a file added, removed, renamed or rewritten changes the signature. A folder holding a racy file
is not recorded. The signature is taken by one GNU ``find`` call where it can (:mod:`.tree_scan`: the stats
are listed and hashed in C, sorted), else by the Python walk; the two signatures differ, so a folder signed
one way and then the other is looked up per file once. The memo also records which folders each spec file
read, so that ``tfspec plan`` can start listing them before it compiles (:func:`prefetch_folders`).

The memos are caches: they live in ``.tfspec/`` beside the spec (the folder the runtime's
step cache lives in), are written atomically (a temporary file renamed over it: two racing processes
leave one of their files, never a torn one; the last writer wins), are rewritten only when something was
hashed, and an unreadable or unwritable memo is ignored (every file is hashed).

Bounded work: one compile looks at no more than :class:`InputLimits` files (250,000; every file and folder
visited counts) and bytes (4 GiB, the sum of the files' sizes, checked from ``stat`` before any of a folder
or glob is read): ``image_folder: /usr`` is refused in a second instead of hashing for minutes. The
environment variables ``TFSPEC_INPUT_FILES_LIMIT`` and ``TFSPEC_INPUT_BYTES_LIMIT`` raise them for data
that is really that large (they are read from the environment, not the spec: a spec cannot lift its own
bound). Only regular files are read: a FIFO, a device, a socket or a dangling link is an error naming it.
"""

from __future__ import annotations

import dataclasses
import glob
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NoReturn

from tfspec.spec.files import file_problem

from tfspec.base.processes import process_alive


__all__ = ["MEMO_DIR", "MEMO_FILE", "TREES_FILE", "InputLimits", "InputTooLarge", "MemoStats", "StatMemo", "UnreadableFile",
           "memo_path", "digest_listing", "prefetch_folders"]

MEMO_DIR = ".tfspec"
MEMO_FILE = "input-digests.json"
TREES_FILE = "input-trees.json"
_MEMO_VERSION = 1
# 2: a record also holds its files' count and bytes (the limits), and its signature may be find's
_TREES_VERSION = 2
_CHUNK = 1 << 20
_SECOND_NS = 1_000_000_000


def memo_path(spec_dir: Path) -> Path:
    """``<spec folder>/.tfspec/input-digests.json`` (the step cache is ``.tfspec/cache`` beside it)."""
    return spec_dir / MEMO_DIR / MEMO_FILE


def digest_listing(entries: Iterable[tuple[str, str]]) -> str:
    """sha256 over sorted ``(relative name, file sha256)`` pairs: the digest of a folder or a glob's matches.

    The names are part of it, so adding, removing or renaming a file changes the digest.
    """
    digest = hashlib.sha256()
    for name, sha in sorted(entries):
        digest.update(os.fsencode(name) + b"\0" + sha.encode("ascii") + b"\n")  # a name's bytes, even non-UTF-8
    return digest.hexdigest()


class UnreadableFile(Exception):
    """A file that stat says is there but that cannot be read (permissions, I/O error), or an entry that is
    not a regular file (a FIFO would block the reader)."""

    def __init__(self, key: str, error: OSError | str) -> None:
        if isinstance(error, str):  # what the entry is: "is a named pipe (FIFO), not a regular file"
            super().__init__(f"{key} {error}")
            self.hint = "inputs are regular files"
        else:
            super().__init__(f"cannot read {key}: {error.strerror or error}")
            self.hint = "make it readable, or remove it"
        self.key = key


class InputTooLarge(Exception):
    """The inputs of one compile exceed :class:`InputLimits`."""


@dataclasses.dataclass(frozen=True)
class InputLimits:
    """The most files (and folders) one compile visits, and the most bytes its input files may hold."""

    files: int = 250_000
    bytes: int = 4 * 1024**3

    FILES_VARIABLE = "TFSPEC_INPUT_FILES_LIMIT"
    BYTES_VARIABLE = "TFSPEC_INPUT_BYTES_LIMIT"

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> InputLimits:
        """The defaults, raised (or lowered) by ``TFSPEC_INPUT_FILES_LIMIT`` / ``TFSPEC_INPUT_BYTES_LIMIT``; a
        value that is not a positive whole number is ignored."""
        environ = os.environ if environ is None else environ
        values = {}
        for field, variable in (("files", cls.FILES_VARIABLE), ("bytes", cls.BYTES_VARIABLE)):
            text = environ.get(variable, "").strip()
            if text.isdigit() and int(text) > 0:
                values[field] = int(text)
        return cls(**values)


@dataclasses.dataclass
class MemoStats:
    """What digesting cost: files stat'ed, files whose bytes were read (``hashed``), memo hits (``reused``),
    and the size of every input file (``bytes``)."""

    files: int = 0
    hashed: int = 0
    reused: int = 0
    bytes: int = 0


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class StatMemo:
    """The stat → sha256 memo of one spec folder (see the module docstring)."""

    def __init__(self, spec_dir: Path, limits: InputLimits | None = None, spec_name: str | None = None) -> None:
        self.spec_dir = Path(spec_dir)
        self.spec_name = spec_name  # the spec file whose inputs these are: its folders are prefetched next time
        self.path = memo_path(self.spec_dir)
        self.stats = MemoStats()
        self.limits = limits or InputLimits()
        self._visited = 0
        self._entries: dict[str, list] = {}
        self._imports: dict[str, list[str]] = {}
        self._facts: dict[str, Any] = {}
        self._loaded = False  # the per-file memo is read on first use: an unchanged folder does not need it
        self._dirty = False
        self._trees: dict[str, list] | None = None
        self._trees_dirty = False
        self._read_by: dict[str, list[str]] = {}  # spec file name -> the folders its last compile digested
        self._folders_read: list[str] = []

    def _ensure_loaded(self) -> None:
        if not self._loaded:
            self._loaded = True
            self._load()

    def _load(self) -> None:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return  # missing, unreadable or torn: recompute everything
        if not isinstance(data, dict) or data.get("version") != _MEMO_VERSION:
            return
        entries, imports, facts = data.get("entries"), data.get("imports"), data.get("facts")
        if isinstance(entries, dict):
            self._entries = {k: v for k, v in entries.items() if isinstance(v, list) and len(v) == 6}
        if isinstance(imports, dict):
            self._imports = {k: v for k, v in imports.items() if isinstance(v, list)}
        if isinstance(facts, dict):
            self._facts = {k: v for k, v in facts.items() if isinstance(v, dict)}

    def _key(self, path: Path) -> str:
        return Path(os.path.relpath(path, self.spec_dir)).as_posix()

    def _visit(self, where: str) -> None:
        """Count one file or folder looked at; past the limit, stop (``where`` names the input)."""
        self._visited += 1
        if self._visited > self.limits.files:
            self._too_many(where)

    def _too_many(self, where: str) -> NoReturn:
        raise InputTooLarge(f"{where} holds more than {self.limits.files:,} files and folders, more than one "
                                f"compile reads (set {InputLimits.FILES_VARIABLE} to raise the limit)")

    def _add_bytes(self, size: int, where: str) -> None:
        self.stats.bytes += size
        if self.stats.bytes > self.limits.bytes:
            raise InputTooLarge(f"{where} holds more than {_size(self.limits.bytes)} of files, more than one "
                                f"compile reads (set {InputLimits.BYTES_VARIABLE} to raise the limit)")

    def _regular(self, path: str, key: str, shown: str | None = None) -> os.stat_result | None:
        """The stat of a regular file; None when nothing is there (or a folder); :class:`UnreadableFile`
        (naming ``shown``, else ``key``) for a FIFO, a device, a socket, a dangling link or a link loop."""
        try:
            info = os.stat(path)
        except OSError:
            if os.path.islink(path):
                raise UnreadableFile(shown or key, file_problem(path) or "is a broken symbolic link") from None
            return None
        if stat.S_ISREG(info.st_mode):
            return info
        if stat.S_ISDIR(info.st_mode):
            return None
        raise UnreadableFile(shown or key, file_problem(path) or "is not a regular file")

    def file_sha256(self, path: Path) -> str | None:
        """sha256 of one file's bytes: from the memo when its stat is unchanged and not racy, else read.

        None when nothing is at ``path`` or it is a folder; :class:`UnreadableFile` when it is something
        that is not a regular file.
        """
        key = self._key(path)
        self._visit(key)
        info = self._regular(os.fspath(path), key)
        if info is None:
            return None
        self._add_bytes(info.st_size, key)
        return self._sha256(os.fspath(path), key, info)

    def _sha256(self, path: str, key: str, info: os.stat_result) -> str:
        # plain strings, not pathlib: this runs once per file of a data set (pathlib tripled the cost)
        self.stats.files += 1
        self._ensure_loaded()
        signature = [info.st_size, info.st_mtime_ns, info.st_ino, info.st_ctime_ns]
        entry = self._entries.get(key)
        if entry is not None and entry[:4] == signature and not entry[5]:
            self.stats.reused += 1
            return entry[4]
        try:
            sha = _file_sha256(path)
        except OSError as error:
            raise UnreadableFile(key, error) from None
        self.stats.hashed += 1
        self._entries[key] = [*signature, sha, True]  # racy until the memo is written after this second
        self._dirty = True
        return sha

    def imports(self, path: Path, sha: str, parse: Callable[[bytes], list[str]]) -> list[str]:
        """``parse(bytes of path)``, memoised by content (a Python module's imported names)."""
        self._ensure_loaded()
        if sha not in self._imports:
            try:
                source = path.read_bytes()
            except OSError as error:
                raise UnreadableFile(self._key(path), error) from None
            self._imports[sha] = parse(source)
            self._dirty = True
        return self._imports[sha]

    def facts(self, path: Path, sha: str, kind: str, compute: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
        """``compute(path)`` memoised by content and ``kind`` (what a data file's header and labels say: a
        changed file is read again, an unchanged one costs nothing beyond its ``stat``)."""
        self._ensure_loaded()
        key = f"{sha}:{kind}"
        if key not in self._facts:
            try:
                self._facts[key] = compute(path)
            except OSError as error:
                raise UnreadableFile(self._key(path), error) from None
            self._dirty = True
        return self._facts[key]

    def tree(self, root: Path, display: str | None = None) -> list[tuple[str, str]]:
        """``(path relative to root, sha256)`` of every file below ``root`` (symlinked files followed,
        symlinked folders not; ``.tfspec`` folders skipped: they hold caches, not inputs).

        Every entry is stat'ed first (counted against the limits), then the files are read: a tree too large
        for one compile is refused before its first byte is read."""
        return [(name, self._sha256(path, key, info)) for name, path, key, info in self._tree_files(root, display)]

    def tree_digest(self, root: Path, display: str | None = None) -> str:
        """``digest_listing(self.tree(root, display))``: from the tree memo when the signature of the files'
        names and stats is the recorded one (each file still stat'ed), else from :meth:`tree`.

        The signature comes from one GNU ``find`` call where it can (:mod:`.tree_scan`: the stats are taken
        and hashed without a Python loop over the files), else from the Python walk."""
        key = self._key(root)
        where = display or key
        self._folders_read.append(key)
        if self._visited >= self.limits.files:
            self._too_many(where)  # not even the root folder fits
        from .tree_scan import scan_tree  # here: subprocess and threading only for a spec that reads a folder

        scanned = scan_tree(os.fspath(root), MEMO_DIR, self.limits.files - self._visited - 1)
        files: list[tuple[str, str, str, os.stat_result]] | None = None
        if scanned is None:
            files = self._tree_files(root, display)
            signature = _tree_signature(files)
        elif scanned.signature is None:  # more entries below the root than the limit leaves
            self._too_many(where)
        else:
            signature = scanned.signature
        record = self._tree_records().get(key)
        if record is not None and record[0] == signature:
            if files is None:  # counted against the limits as the walk counts: the root, what is below it, bytes
                self._visited += 1 + scanned.entries
                self._add_bytes(record[4], where)  # the sizes are in the signature
            self.stats.files += record[3]
            self.stats.reused += record[3]
            return record[1]
        if files is None:
            files = self._tree_files(root, display)  # a changed folder: each file looked up in the per-file memo
        digest = digest_listing([(name, self._sha256(path, rel, info)) for name, path, rel, info in files])
        newest = max((max(info.st_mtime_ns, info.st_ctime_ns) for *_, info in files), default=0)
        self._tree_records()[key] = [signature, digest, newest, len(files), sum(info.st_size for *_, info in files)]
        self._trees_dirty = True
        return digest

    def _tree_records(self) -> dict[str, list]:
        if self._trees is None:
            self._trees = {}
            try:
                data = json.loads((self.path.parent / TREES_FILE).read_text(encoding="utf-8"))
            except (OSError, ValueError):
                return self._trees
            if isinstance(data, dict) and data.get("version") == _TREES_VERSION and isinstance(data.get("trees"), dict):
                self._trees = {k: v for k, v in data["trees"].items()
                               if isinstance(v, list) and len(v) == 5 and all(isinstance(x, str) for x in v[:2])
                               and all(type(x) is int for x in v[2:])}
                self._read_by = _folders_by_spec(data)
        return self._trees

    def _tree_files(self, root: Path, display: str | None) -> list[tuple[str, str, str, os.stat_result]]:
        """``(name relative to root, path, memo key, stat)`` of every regular file below ``root``, in walk
        order (sorted names, folders depth first); every file and folder counted against the limits.

        One ``stat`` per file, made relative to its open folder (``fstatat``: the kernel does not walk the
        whole path again for each of 200,000 files); the hot loop keeps to local names for the same reason."""
        prefix = self._key(root)
        where = display or prefix
        prefix = "" if prefix == "." else prefix + "/"
        found: list[tuple[str, str, str, os.stat_result]] = []
        append = found.append
        is_regular, is_folder = stat.S_ISREG, stat.S_ISDIR
        limits, stats = self.limits, self.stats
        pending = [(os.fspath(root), "")]
        while pending:
            folder, relative = pending.pop()
            self._visit(where)
            try:
                handle = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
            except OSError:
                continue
            try:
                try:
                    with os.scandir(handle) as scan:
                        entries = sorted((entry.name, entry.is_dir(follow_symlinks=False)) for entry in scan)
                except OSError:
                    continue
                subfolders = []
                base = folder.rstrip(os.sep) + os.sep  # plain concatenation: os.path.join per file cost as much as the stat
                for name, is_dir in entries:
                    if is_dir:
                        if name != MEMO_DIR:
                            subfolders.append((base + name, relative + name + "/"))
                        continue
                    self._visited += 1
                    if self._visited > limits.files:
                        self._visit(where)  # raises
                    try:
                        info = os.stat(name, dir_fd=handle)
                    except OSError:
                        info = None
                    if info is None or not is_regular(info.st_mode):
                        if info is not None and is_folder(info.st_mode):
                            continue  # a link to a folder: not followed
                        # the rare case: say what it is
                        checked = self._regular(base + name, prefix + relative + name, f"{where}/{relative}{name}")
                        if checked is None:
                            continue
                        info = checked
                    stats.bytes += info.st_size
                    if stats.bytes > limits.bytes:
                        self._add_bytes(0, where)  # raises
                    append((relative + name, base + name, prefix + relative + name, info))
                pending.extend(reversed(subfolders))
            finally:
                os.close(handle)
        return found

    def matches(self, pattern: str) -> list[tuple[str, str]]:
        """``(path relative to the spec folder, sha256)`` of every file a glob matches (``glob.glob`` rules,
        as the runtime reads them); counted against the limits before any is read."""
        found: list[tuple[str, str, os.stat_result]] = []
        for name in glob.iglob(pattern, root_dir=self.spec_dir):  # counted while globbing: a huge match stops early
            self._visit(pattern)
            path = os.path.join(os.fspath(self.spec_dir), name)
            key = self._key(Path(path))
            info = self._regular(path, key)
            if info is not None:
                self._add_bytes(info.st_size, pattern)
                found.append((Path(name).as_posix(), key, info))
        return [(name, self._sha256(os.path.join(os.fspath(self.spec_dir), name), key, info))
                for name, key, info in sorted(found, key=lambda item: item[0])]

    def save(self) -> None:
        """Write the memos if anything was hashed; entries of files that are gone are dropped."""
        now = time.time_ns()
        second = now - now % _SECOND_NS
        if self._trees is not None and self.spec_name is not None \
                and self._read_by.get(self.spec_name) != self._folders_read:
            self._read_by[self.spec_name] = list(self._folders_read)
            self._trees_dirty = True
        if self._trees_dirty and self._trees is not None:
            # a folder with a racy file is not recorded: its files are looked up one by one next time
            trees = {key: record for key, record in self._trees.items() if record[2] < second}
            text = json.dumps({"version": _TREES_VERSION, "trees": trees, "read_by": self._read_by}, sort_keys=True)
            if self._write(TREES_FILE, text):
                self._trees_dirty = False
        if not self._dirty:
            return
        base = os.fspath(self.spec_dir)
        entries = {}
        for key, entry in self._entries.items():
            if not os.path.lexists(os.path.join(base, key)):
                continue
            # racy: changed within the second this memo is written (or later); re-hash it next time
            entries[key] = [*entry[:5], max(entry[1], entry[3]) >= second]
        shas = {entry[4] for entry in entries.values()}
        imports = {sha: names for sha, names in self._imports.items() if sha in shas}
        facts = {key: value for key, value in self._facts.items() if key.split(":", 1)[0] in shas}
        text = json.dumps({"version": _MEMO_VERSION, "written_ns": now, "entries": entries, "imports": imports,
                           "facts": facts}, sort_keys=True)
        if self._write(MEMO_FILE, text):
            self._dirty = False

    def _write(self, name: str, text: str) -> bool:
        """Replace ``.tfspec/<name>`` atomically; False when it cannot be written (a read-only checkout: the
        memo is only a cache)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._remove_orphaned_scratch(name)
            fd, scratch = tempfile.mkstemp(prefix=f".{name}.{os.getpid()}.", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(scratch, self.path.parent / name)
            except BaseException:
                os.unlink(scratch)
                raise
        except OSError:
            return False
        return True

    def _remove_orphaned_scratch(self, name: str = MEMO_FILE) -> None:
        """Delete scratch files of writers that were killed (``.input-digests.json.<pid>.<random>.tmp``)."""
        for scratch in self.path.parent.glob(f".{name}.*.tmp"):
            pid = scratch.name[len(name) + 2:].split(".", 1)[0]
            if pid.isdigit() and not process_alive(int(pid)):
                scratch.unlink(missing_ok=True)


def prefetch_folders(spec_file: Path) -> None:
    """Start listing, in the background, the folders the last compile of ``spec_file`` digested (recorded in
    ``.tfspec/input-trees.json``), so that their stats are taken while the compiler starts and parses the
    spec (:func:`~.tree_scan.prefetch_tree`). Only a head start: a folder the spec no longer reads is listed
    for nothing, one it now reads is listed when it is digested."""
    spec_dir = spec_file.parent
    try:
        data = json.loads((spec_dir / MEMO_DIR / TREES_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not isinstance(data, dict) or data.get("version") != _TREES_VERSION:
        return
    from .tree_scan import prefetch_tree

    limit = InputLimits.from_environ().files - 1
    inside = os.path.realpath(spec_dir)
    for key in _folders_by_spec(data).get(spec_file.name, [])[:_PREFETCH_MOST]:
        folder = spec_dir / key
        # only below the spec's folder: a folder outside is read only once the spec, compiled, opts in
        if os.path.commonpath([inside, os.path.realpath(folder)]) == inside and folder.is_dir():
            prefetch_tree(os.fspath(folder), MEMO_DIR, limit)


_PREFETCH_MOST = 4  # folders per spec: a few processes, not one per folder of a strange spec


def _folders_by_spec(data: dict[str, Any]) -> dict[str, list[str]]:
    read_by = data.get("read_by")
    if not isinstance(read_by, dict):
        return {}
    return {name: keys for name, keys in read_by.items()
            if isinstance(keys, list) and all(isinstance(key, str) for key in keys)}


def _tree_signature(files: list[tuple[str, str, str, os.stat_result]]) -> str:
    """sha256 over each file's name and stat (size, mtime_ns, inode, ctime_ns), in walk order."""
    text = "".join([f"{name}\0{info.st_size},{info.st_mtime_ns},{info.st_ino},{info.st_ctime_ns}\n"
                    for name, _, _, info in files])
    return hashlib.sha256(os.fsencode(text)).hexdigest()  # a name's bytes, even non-UTF-8


def _size(count: int) -> str:
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if count >= scale:
            return f"{count / scale:g} {unit}"
    return f"{count} bytes"
