"""Data locations: relative paths (the default), absolute paths and ``file://`` URLs, ``s3://`` and ``gs://``.

Object stores are reached through fsspec (``s3fs`` for S3: TensorFlow 2.21 has no ``s3://`` file system;
``gcsfs`` for GCS: TensorFlow's own ``gs://`` file system has its endpoints compiled in, so it cannot be
pointed at an emulator or a private endpoint, see docs/data.md) with the spec's ``data.storage``: an
endpoint and the *names* of the environment variables that hold the credentials, read when a process
needs them (GCS: Application Default Credentials, e.g. ``GOOGLE_APPLICATION_CREDENTIALS`` naming a key
file); nothing secret is in a spec, a plan or a generated file.
An object-store listing is digested from each object's name, size and ETag (S3) or generation (GCS), so
``tfspec plan`` sees a changed object without downloading anything. No TensorFlow here.
"""

from __future__ import annotations

import dataclasses
import glob as globbing
import os
from pathlib import Path
from typing import Any, Protocol

__all__ = ["OBJECT_STORE_SCHEMES", "StorageAccess", "ClientCredentials", "is_object_store", "is_external", "local_path", "filesystem",
           "list_objects", "object_root"]

OBJECT_STORE_SCHEMES = ("s3://", "gs://")
_GLOB_CHARACTERS = "*?["


class StorageAccess(Protocol):
    """How an object store is reached (the plan's ``StorageParams``): an endpoint and the names of the
    environment variables holding the credentials."""

    @property
    def endpoint_url(self) -> str | None: ...

    @property
    def access_key_id_env(self) -> str: ...

    @property
    def secret_access_key_env(self) -> str: ...


@dataclasses.dataclass(frozen=True)
class ClientCredentials:
    """An object store at ``endpoint_url`` reached with the clients' own credential variables (a model store:
    AWS' names for S3, Application Default Credentials for GCS)."""

    endpoint_url: str | None
    access_key_id_env: str = "AWS_ACCESS_KEY_ID"
    secret_access_key_env: str = "AWS_SECRET_ACCESS_KEY"


def is_object_store(location: str) -> bool:
    return location.startswith(OBJECT_STORE_SCHEMES)


def is_external(location: str) -> bool:
    """Outside the spec's folder: an object store, a ``file://`` URL or an absolute path."""
    return is_object_store(location) or location.startswith(("file://", "/"))


def local_path(spec_dir: Path, location: str) -> Path:
    """A relative, absolute or ``file://`` location as a local path."""
    if location.startswith("file://"):
        return Path(location[len("file://"):])
    return Path(spec_dir) / location


def filesystem(location: str, storage: StorageAccess | None) -> Any:
    """The fsspec file system of an object-store location, credentials read from the named variables (AWS'
    own variable names when no storage is given)."""
    import fsspec

    storage = storage if storage is not None else ClientCredentials(None)
    endpoint_url = storage.endpoint_url
    if location.startswith("s3://"):
        key = os.environ.get(storage.access_key_id_env)
        secret = os.environ.get(storage.secret_access_key_env)
        options: dict[str, Any] = {"key": key, "secret": secret} if key and secret else {}
        if endpoint_url:
            options["client_kwargs"] = {"endpoint_url": endpoint_url}
        # a fresh instance: a forked or long-lived process must not reuse another's event loop
        return fsspec.filesystem("s3", skip_instance_cache=True, **options)
    # gcsfs' plain JSON-API file system: fsspec's "gcs" entry is gcsfs' experimental one, which first asks
    # a gRPC control plane for the bucket's layout (a minute's timeout against an emulator)
    from gcsfs.core import GCSFileSystem

    if endpoint_url:  # an emulator or private endpoint: no Google credentials there
        return GCSFileSystem(skip_instance_cache=True, endpoint_url=endpoint_url.rstrip("/"), token="anon")
    return GCSFileSystem(skip_instance_cache=True)


def object_root(location: str) -> str:
    """The part of a (glob) location before its first glob character, up to the last ``/``."""
    cut = min([location.index(c) for c in _GLOB_CHARACTERS if c in location] or [len(location)])
    head = location[:cut]
    return head if cut == len(location) else head[:head.rfind("/") + 1]


def list_objects(location: str, storage: StorageAccess | None, *, folder: bool = False) -> list[dict[str, Any]]:
    """``{"url", "size", "version"}`` of every object a location names: a glob's matches, a folder's
    objects (``folder``), or the one object; sorted by URL. ``version`` is the ETag or generation."""
    scheme = location[:location.index("://") + 3]
    fs = filesystem(location, storage)
    bare = location[len(scheme):]
    if folder:
        found = fs.find(bare.rstrip("/"), detail=True)
    elif any(c in bare for c in _GLOB_CHARACTERS):
        found = fs.glob(bare, detail=True)
    else:
        found = {bare: fs.info(bare)} if fs.exists(bare) else {}
    out = []
    for name, info in found.items():
        if info.get("type") == "directory":
            continue
        version = info.get("ETag") or info.get("etag") or info.get("generation") or info.get("md5Hash") or ""
        out.append({"url": scheme + name, "size": int(info.get("size") or 0), "version": str(version).strip('"')})
    return sorted(out, key=lambda entry: entry["url"])


def local_glob(spec_dir: Path, location: str) -> list[str]:
    """Local files a (relative, absolute or file://) glob matches, sorted."""
    return sorted(globbing.glob(str(local_path(spec_dir, location))))
