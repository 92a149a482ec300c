"""Content-addressed step cache: ``<cache>/<fingerprint>/`` holds one step's outputs.

An entry appears only when its step finished: outputs are written to a temporary folder beside the
cache and renamed into place, so a failed or killed step never leaves a partial entry. The cache folder
carries a ``CACHEDIR.TAG`` (backup tools skip it; ``--cache-dir`` accepts a tagged folder, see
:func:`tfspec.base.outputs.check_cache_folder`). This module does not import TensorFlow (``tfspec plan`` uses
it to show cache state).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from tfspec.base.outputs import CACHE_TAG, CACHE_TAG_TEXT
from tfspec.base.atomic import remove_dead_staging, staging_prefix

__all__ = ["StepCache", "default_cache_dir", "COMPLETE_MARKER"]

COMPLETE_MARKER = ".complete.json"


def default_cache_dir(spec_path: Path) -> Path:
    """``.tfspec/cache`` beside the spec file (or inside the folder given)."""
    base = spec_path if spec_path.is_dir() else spec_path.parent
    return base / ".tfspec" / "cache"


class StepCache:
    """A folder of finished step outputs keyed by step fingerprint."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, fingerprint: str) -> Path:
        return self.root / fingerprint

    def has(self, fingerprint: str) -> bool:
        return (self.path(fingerprint) / COMPLETE_MARKER).is_file()

    def _tag(self) -> None:
        tag = self.root / CACHE_TAG
        if not tag.exists():
            with contextlib.suppress(OSError):
                tag.write_text(CACHE_TAG_TEXT, encoding="utf-8")

    def sweep(self) -> list[str]:
        """Delete scratch folders left by killed runs (their process is gone); returns their names.

        A scratch folder is named ``.<fingerprint[:12]>.<pid>-<start>.<random>.tmp``; one whose process
        still runs belongs to a run in progress and is kept (see :func:`tfspec.base.processes.owner_alive`).
        """
        return remove_dead_staging(self.root)

    @contextlib.contextmanager
    def writing(self, fingerprint: str, step_id: str) -> Iterator[Path]:
        """Yield a scratch folder; on success it becomes the entry, on any error it is deleted."""
        self.root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=staging_prefix(fingerprint[:12]), suffix=".tmp", dir=self.root))
        try:
            yield scratch
            (scratch / COMPLETE_MARKER).write_text(
                json.dumps({"step": step_id, "fingerprint": fingerprint}, sort_keys=True) + "\n", encoding="utf-8")
            final = self.path(fingerprint)
            if final.exists():
                shutil.rmtree(final)
            os.rename(scratch, final)
            self._tag()  # with its first entry: a failed step leaves the folder as it found it
        except BaseException:
            shutil.rmtree(scratch, ignore_errors=True)
            raise
