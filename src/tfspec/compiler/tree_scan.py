"""A folder's signature from one GNU ``find`` call: every file's name and stat, listed in C.

``find`` stats each file (``fstatat``, as the Python walk does) and prints its size, mtime, ctime, inode and
path, NUL-terminated; the records are sorted (readdir order is not part of the signature) and hashed as one
block. Python does no per-file work, so 200,000 unchanged files cost what the ``stat`` calls cost.

The rule for trust is the Python walk's (:meth:`~.file_digests.StatMemo.tree_digest`): one ``stat`` per
file; a file rewritten with its size and mtime put back still changes its ctime (``%C@`` is printed to the
nanosecond), and an added, removed or renamed file changes the set of records.

Anything this scan does not match exactly makes it step aside (None) for the Python walk: no GNU find
(macOS, Windows), an error (an unreadable folder: find's exit status), and any entry that is neither a
regular file nor a folder (a symbolic link, a FIFO: find stops at the first one) — the walk follows
symlinked files, skips symlinked folders and names what is wrong.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import os
import shutil
import subprocess
import threading
import time

__all__ = ["ScannedTree", "prefetch_tree", "scan_tree"]

_CHUNK = 1 << 20
# One NUL-terminated record per entry below the root: "<size> <mtime> <ctime> <inode> <path>" for a regular
# file, "d <path>" for a folder, "?" (then find stops) for anything else. A record's first byte is ours, so
# no file name can forge one; the path is last and may hold any byte but NUL.
_OTHER = b"?"


@dataclasses.dataclass(frozen=True)
class ScannedTree:
    """What one scan found: ``entries`` files and folders below the root (the root itself not counted) and
    the signature of their names and stats; ``signature`` is None when the scan stopped past ``limit``."""

    signature: str | None
    entries: int


def scan_tree(root: str, skip_folder: str, limit: int) -> ScannedTree | None:
    """Sign every regular file below ``root`` (folders named ``skip_folder`` not entered) with one GNU find
    call; None when the Python walk must do it (see the module docstring). Stops reading once more than
    ``limit`` entries were listed (``signature`` None, ``entries`` past ``limit``): a folder too large for
    one compile costs no more than the limit's worth of listing.

    A scan :func:`prefetch_tree` started for the same folder moments ago is taken instead of a new one."""
    key = (os.path.abspath(root), skip_folder)
    scan = _PREFETCHED.pop(key, None)
    if scan is not None and (scan.limit < limit or time.monotonic() - scan.started > _PREFETCH_FRESH_S):
        scan.cancel()
        scan = None
    if scan is None:
        scan = _Scan.start(key[0], skip_folder, limit, background=False)
        if scan is None:
            return None
    scanned = scan.result()
    if scanned is not None and scanned.entries > limit:
        return ScannedTree(None, scanned.entries)
    return scanned


def prefetch_tree(root: str, skip_folder: str, limit: int) -> None:
    """Start :func:`scan_tree`'s find for ``root`` now, in the background, so that it runs while this
    process does other work (importing, parsing the spec); the next :func:`scan_tree` of that folder within
    30 seconds takes its result. A scan nobody takes is stopped when the process exits."""
    key = (os.path.abspath(root), skip_folder)
    if key in _PREFETCHED:
        return
    scan = _Scan.start(key[0], skip_folder, limit, background=True)
    if scan is not None:
        _PREFETCHED[key] = scan


# A prefetched scan is the folder as it was when the command started: older than this, it is scanned again.
_PREFETCH_FRESH_S = 30.0
_PREFETCHED: dict[tuple[str, str], _Scan] = {}


@atexit.register
def _cancel_prefetched() -> None:
    while _PREFETCHED:
        _PREFETCHED.popitem()[1].cancel()


class _Scan:
    """One find process and what it printed; read in a thread when it runs in the background (a pipe holds
    64 KiB: find would wait for a reader)."""

    def __init__(self, process: subprocess.Popen[bytes], limit: int) -> None:
        self.process = process
        self.limit = limit
        self.started = time.monotonic()
        self.chunks: list[bytes] = []
        self.entries = 0
        self.stopped = False
        self.reader: threading.Thread | None = None

    @classmethod
    def start(cls, root: str, skip_folder: str, limit: int, background: bool) -> _Scan | None:
        find = shutil.which("find") if os.name == "posix" else None
        if find is None:
            return None
        command = [find, "-H", root, "-mindepth", "1",
                   "(", "-type", "d", "-name", skip_folder, "-prune", ")", "-o",
                   "-type", "f", "-printf", r"%s %T@ %C@ %i %P\0", "-o",
                   "-type", "d", "-printf", r"d %P\0", "-o",
                   "-printf", r"?\0", "-quit"]
        environ = {**os.environ, "LC_ALL": "C"}
        environ.pop("POSIXLY_CORRECT", None)
        try:
            process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                       stderr=subprocess.DEVNULL, env=environ)
        except OSError:
            return None
        scan = cls(process, limit)
        if background:
            scan.reader = threading.Thread(target=scan._read, name="tfspec-tree-scan", daemon=True)
            scan.reader.start()
        return scan

    def _read(self) -> None:
        stdout = self.process.stdout
        assert stdout is not None
        while chunk := stdout.read(_CHUNK):
            self.chunks.append(chunk)
            self.entries += chunk.count(b"\0")
            if self.entries > self.limit:
                self.stopped = True
                self.process.kill()
                break

    def result(self) -> ScannedTree | None:
        if self.reader is None:
            self._read()
        else:
            self.reader.join()
        code = self._finish()
        if self.stopped:
            return ScannedTree(None, self.entries)
        if code != 0:
            return None  # not GNU find (no -printf), or a folder it could not read
        listing = b"".join(self.chunks)
        if listing and not listing.endswith(b"\0"):
            return None
        records = listing.split(b"\0")
        records.pop()  # after the last NUL
        if _OTHER in records[-1:]:
            return None
        records.sort()
        return ScannedTree("find:" + hashlib.sha256(b"\0".join(records)).hexdigest(), len(records))

    def cancel(self) -> None:
        self.process.kill()
        if self.reader is not None:
            self.reader.join()
        self._finish()

    def _finish(self) -> int:
        code = self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code
