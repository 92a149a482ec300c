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

import dataclasses
import hashlib
import os
import shutil
import subprocess

__all__ = ["ScannedTree", "scan_tree"]

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
    one compile costs no more than the limit's worth of listing."""
    find = shutil.which("find") if os.name == "posix" else None
    if find is None:
        return None
    command = [find, "-H", os.path.abspath(root), "-mindepth", "1",
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
    chunks: list[bytes] = []
    entries = 0
    with process:
        assert process.stdout is not None
        while chunk := process.stdout.read(_CHUNK):
            chunks.append(chunk)
            entries += chunk.count(b"\0")
            if entries > limit:
                process.kill()
                process.wait()
                return ScannedTree(None, entries)
        if process.wait() != 0:
            return None  # not GNU find (no -printf), or a folder it could not read
    listing = b"".join(chunks)
    if not listing.endswith(b"\0") and listing:
        return None
    records = listing.split(b"\0")
    records.pop()  # after the last NUL
    if _OTHER in records[-1:]:
        return None
    records.sort()
    return ScannedTree("find:" + hashlib.sha256(b"\0".join(records)).hexdigest(), len(records))
