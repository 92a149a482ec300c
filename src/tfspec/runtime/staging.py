"""SavedModel folders in object storage, staged into a bounded local folder before TensorFlow loads them.

TensorFlow cannot load ``s3://`` at all (no S3 file system in 2.21) and its ``gs://`` file system cannot be
pointed at another endpoint (docs/data.md), so a ``model.path`` or a teacher's ``path`` in a bucket is
copied, object by object (fsspec: s3fs, gcsfs), into a temporary folder, loaded from there and deleted
when the caller is done. The copy is bounded: a folder whose listing exceeds :data:`STAGING_LIMIT` bytes
(``TFSPEC_STAGING_LIMIT`` overrides it) is refused before anything is downloaded, and each object must
arrive with the size the listing gave. Local locations (relative, absolute, ``file://``) are used in
place.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tfspec.base.locations import StorageAccess, filesystem, is_object_store, list_objects
from tfspec.plan import StorageParams

__all__ = ["STAGING_LIMIT", "StagingError", "local_location", "staged", "download"]

STAGING_LIMIT = 16 * 2 ** 30
"""Largest SavedModel folder (bytes, by its listing) staged from an object store."""


class StagingError(Exception):
    """A location that cannot be staged (missing, empty, too large, or a short download)."""


def local_location(root: Path, location: str) -> Path:
    """A relative (to ``root``), absolute or ``file://`` location as a local path."""
    if location.startswith("file://"):
        return Path(location[len("file://"):])
    return Path(root) / location


def _limit() -> int:
    value = os.environ.get("TFSPEC_STAGING_LIMIT")
    return int(value) if value and value.isdigit() else STAGING_LIMIT


@contextlib.contextmanager
def staged(root: Path, location: str, storage: StorageParams | None) -> Iterator[Path]:
    """The local folder of ``location``: in place when local, else a bounded temporary copy."""
    if not is_object_store(location):
        yield local_location(root, location)
        return
    base = location.rstrip("/")
    objects = list_objects(base, storage, folder=True)
    if not objects:
        raise StagingError(f"no object under {location}")
    folder = Path(tempfile.mkdtemp(prefix="tfspec-staged-"))
    try:
        download(location, objects, storage, folder)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def download(location: str, objects: list[dict[str, Any]], storage: StorageAccess | None, folder: Path) -> None:
    """Copy ``objects`` (a :func:`list_objects` listing of the folder ``location``) into ``folder``, each under
    its name relative to ``location``: refused before the first byte when they exceed the staging limit, and
    each object must arrive with the size the listing gave."""
    base = location.rstrip("/")
    total = sum(o["size"] for o in objects)
    if total > _limit():
        raise StagingError(f"{location} holds {total} bytes, more than the staging limit of {_limit()} "
                           "(TFSPEC_STAGING_LIMIT)")
    fs = filesystem(location, storage)
    scheme = base[:base.index("://") + 3]
    for entry in objects:
        relative = entry["url"][len(base) + 1:]
        if not relative or relative.startswith("/") or ".." in Path(relative).parts:
            raise StagingError(f"unexpected object name {entry['url']} under {location}")
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        fs.get_file(entry["url"][len(scheme):], str(target))
        if target.stat().st_size != entry["size"]:
            raise StagingError(f"{entry['url']}: {target.stat().st_size} bytes arrived, the listing says "
                               f"{entry['size']}")
