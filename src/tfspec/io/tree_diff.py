"""What ``tfspec build --check`` shows: the unified diff between an output folder and what a build would write."""

from __future__ import annotations

import difflib
from pathlib import Path

from tfspec.base.outputs import MANIFEST, Producer, with_manifest

__all__ = ["diff_tree"]


def diff_tree(out_dir: Path, files: dict[str, str], producer: Producer) -> str:
    """Unified diff between what is on disk and what a build would write ('' when current)."""
    out_dir = Path(out_dir)
    complete = files if MANIFEST in files else with_manifest(files, producer)
    on_disk: set[str] = set()
    if out_dir.is_dir():
        on_disk = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*") if p.is_file()}
    chunks: list[str] = []
    for path in sorted(on_disk | set(complete)):
        old = (out_dir / path).read_text("utf-8", errors="replace") if path in on_disk else ""
        new = complete.get(path, "")
        if path in on_disk and path in complete and old == new:
            continue
        chunks.extend(difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True),
            fromfile=f"a/{path}" if path in on_disk else "/dev/null",
            tofile=f"b/{path}" if path in complete else "/dev/null",
        ))
        if chunks and not chunks[-1].endswith("\n"):
            chunks[-1] += "\n"
    return "".join(chunks)
