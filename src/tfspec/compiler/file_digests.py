"""Content digests of files, folders and globs, with a stat memo so unchanged files are not re-read.

The memo maps a file's path (relative to the spec's folder) and its stat — size, ``mtime_ns``, inode,
``ctime_ns`` — to the sha256 of its bytes, as git's index does. An unchanged file costs one ``stat``.
``ctime_ns`` is in the key because a rewrite that restores the old size and mtime (``os.utime``) still
moves the ctime, which no user tool can set back.

"Racy" entries (git's term): a file written within the same second as the memo, or later, might change
again without its stat changing (coarse file-system clocks). Such entries are kept but marked, and a
marked entry is re-hashed the next time it is used.

The memo is a cache: it lives in ``.tfspec/input-digests.json`` beside the spec (the folder the runtime's
step cache lives in), is written atomically (a temporary file renamed over it: two racing processes
leave one of their files, never a torn one; the last writer wins), is rewritten only when something was
hashed, and an unreadable or unwritable memo is ignored (every file is hashed).
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
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from .processes import process_alive

__all__ = ["MEMO_DIR", "MEMO_FILE", "MemoStats", "StatMemo", "UnreadableFile", "memo_path", "digest_listing"]

MEMO_DIR = ".tfspec"
MEMO_FILE = "input-digests.json"
_MEMO_VERSION = 1
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
    """A file that stat says is there but that cannot be read (permissions, I/O error)."""

    def __init__(self, key: str, error: OSError) -> None:
        super().__init__(f"cannot read {key}: {error.strerror or error}")
        self.key = key


@dataclasses.dataclass
class MemoStats:
    """What digesting cost: files stat'ed, files whose bytes were read (``hashed``), memo hits (``reused``)."""

    files: int = 0
    hashed: int = 0
    reused: int = 0


def _file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


class StatMemo:
    """The stat → sha256 memo of one spec folder (see the module docstring)."""

    def __init__(self, spec_dir: Path) -> None:
        self.spec_dir = Path(spec_dir)
        self.path = memo_path(self.spec_dir)
        self.stats = MemoStats()
        self._entries: dict[str, list] = {}
        self._imports: dict[str, list[str]] = {}
        self._facts: dict[str, Any] = {}
        self._load()
        self._dirty = False

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

    def file_sha256(self, path: Path) -> str | None:
        """sha256 of one file's bytes: from the memo when its stat is unchanged and not racy, else read.

        None when ``path`` is not a regular file (a folder, a broken link, gone).
        """
        return self._sha256(os.fspath(path), self._key(path))

    def _sha256(self, path: str, key: str) -> str | None:
        # plain strings, not pathlib: this runs once per file of a data set (pathlib tripled the cost)
        try:
            info = os.stat(path)
        except OSError:
            return None
        if not stat.S_ISREG(info.st_mode):
            return None
        self.stats.files += 1
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
        key = f"{sha}:{kind}"
        if key not in self._facts:
            try:
                self._facts[key] = compute(path)
            except OSError as error:
                raise UnreadableFile(self._key(path), error) from None
            self._dirty = True
        return self._facts[key]

    def tree(self, root: Path) -> list[tuple[str, str]]:
        """``(path relative to root, sha256)`` of every file below ``root`` (symlinked files followed,
        symlinked folders not; ``.tfspec`` folders skipped: they hold caches, not inputs)."""
        prefix = self._key(root)
        prefix = "" if prefix == "." else prefix + "/"
        out = []
        pending = [(os.fspath(root), "")]
        while pending:
            folder, relative = pending.pop()
            try:
                with os.scandir(folder) as scan:
                    entries = sorted(scan, key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                name = relative + entry.name
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != MEMO_DIR:
                        pending.append((entry.path, name + "/"))
                    continue
                sha = self._sha256(entry.path, prefix + name)
                if sha is not None:
                    out.append((name, sha))
        return out

    def matches(self, pattern: str) -> list[tuple[str, str]]:
        """``(path relative to the spec folder, sha256)`` of every file a glob matches (``glob.glob`` rules,
        as the runtime reads them)."""
        out = []
        for name in sorted(glob.glob(pattern, root_dir=self.spec_dir)):
            sha = self.file_sha256(self.spec_dir / name)
            if sha is not None:
                out.append((Path(name).as_posix(), sha))
        return out

    def save(self) -> None:
        """Write the memo if anything was hashed; entries of files that are gone are dropped."""
        if not self._dirty:
            return
        now = time.time_ns()
        second = now - now % _SECOND_NS
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
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._remove_orphaned_scratch()
            fd, scratch = tempfile.mkstemp(prefix=f".{MEMO_FILE}.{os.getpid()}.", suffix=".tmp", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as handle:
                    handle.write(text)
                os.replace(scratch, self.path)
            except BaseException:
                os.unlink(scratch)
                raise
        except OSError:
            return  # a read-only checkout: the memo is only a cache
        self._dirty = False

    def _remove_orphaned_scratch(self) -> None:
        """Delete scratch files of writers that were killed (``.input-digests.json.<pid>.<random>.tmp``)."""
        for scratch in self.path.parent.glob(f".{MEMO_FILE}.*.tmp"):
            pid = scratch.name[len(MEMO_FILE) + 2:].split(".", 1)[0]
            if pid.isdigit() and not process_alive(int(pid)):
                scratch.unlink(missing_ok=True)
