"""Object storage holding a model's served versions (``<base_path>/<version>/``): list, upload, prune.

What TF Serving polls: its file-system source lists the children of ``base_path`` every
``--file_system_poll_wait_seconds`` (1 s by default), takes every child whose name is a number as a
version, and loads the SavedModel in it (``saved_model.pb`` first, then ``variables/``). On S3 a "folder"
is only a key prefix and there is no rename, so a version becomes visible with its first object.
:func:`upload_version` therefore

1. uploads every file under a temporary prefix that is not a number (``.tfspec-upload-<version>-<id>/``,
   which TF Serving ignores),
2. copies them server-side into ``<version>/`` with ``saved_model.pb`` last — the file a loader reads
   first is there only when everything it then reads is — and
3. deletes the temporary prefix.

A version already in the store is never overwritten (a loaded version is not reloaded, so servers
would disagree): the same content is a no-op, other content an error. GCS has no rename either, and the
same steps apply. Credentials come from each client's standard chain (S3: ``AWS_ACCESS_KEY_ID``/
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance role; GCS: application default credentials,
``GOOGLE_APPLICATION_CREDENTIALS``); only ``endpoint_url`` and ``region`` come from the spec.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

__all__ = ["S3Store", "GcsStore", "PinnedVersions", "Store", "open_store", "split_base_path", "upload_version", "prune_versions", "StoreError",
           "MARKER", "LAST_FILE"]

# Written into every uploaded version: which bundle it holds (to tell a re-upload from a conflict).
MARKER = "assets.extra/tfspec_upload.json"
# Copied last: a loader reads it first.
LAST_FILE = "saved_model.pb"
_TEMPORARY = ".tfspec-upload-"


class StoreError(Exception):
    """The store cannot take this upload (a message for the user; the step adds the spec key)."""


def split_base_path(base_path: str) -> tuple[str, str, str]:
    """``s3://bucket/a/b`` → ``("s3", "bucket", "a/b")``."""
    scheme, _, rest = base_path.partition("://")
    bucket, _, prefix = rest.partition("/")
    return scheme, bucket, prefix.strip("/")


@dataclasses.dataclass
class S3Store:
    """One ``s3://bucket/prefix`` through boto3 (any S3-compatible endpoint)."""

    bucket: str
    prefix: str
    client: Any

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def children(self) -> list[str]:
        """Names of the "folders" directly under the prefix."""
        names: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        base = self.key("")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=base, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(base):].rstrip("/"))
        return names

    def keys(self, relative_folder: str) -> list[str]:
        """Every object key under ``<prefix>/<relative_folder>/``, relative to that folder."""
        base = self.key(relative_folder.strip("/") + "/")
        out: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=base):
            out.extend(item["Key"][len(base):] for item in page.get("Contents", []))
        return sorted(out)

    def exists(self, relative: str) -> bool:
        return bool(self.client.list_objects_v2(Bucket=self.bucket, Prefix=self.key(relative), MaxKeys=1).get("KeyCount"))

    def read(self, relative: str) -> bytes:
        return self.client.get_object(Bucket=self.bucket, Key=self.key(relative))["Body"].read()

    def put_file(self, relative: str, path: Path) -> None:
        self.client.upload_file(str(path), self.bucket, self.key(relative))

    def copy(self, source: str, destination: str) -> None:
        self.client.copy_object(Bucket=self.bucket, Key=self.key(destination),
                                CopySource={"Bucket": self.bucket, "Key": self.key(source)})

    def delete(self, relatives: Iterable[str]) -> None:
        # One request per key: S3-compatible stores differ in their support of batch deletes.
        for relative in relatives:
            self.client.delete_object(Bucket=self.bucket, Key=self.key(relative))


@dataclasses.dataclass
class GcsStore:
    """One ``gs://bucket/prefix`` through google-cloud-storage (the same operations as :class:`S3Store`)."""

    bucket: Any
    prefix: str

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def children(self) -> list[str]:
        base = self.key("")
        blobs = self.bucket.client.list_blobs(self.bucket, prefix=base, delimiter="/")
        for _ in blobs:  # the prefixes are known once the listing is consumed
            pass
        return [name[len(base):].rstrip("/") for name in sorted(blobs.prefixes)]

    def keys(self, relative_folder: str) -> list[str]:
        base = self.key(relative_folder.strip("/") + "/")
        return sorted(blob.name[len(base):] for blob in self.bucket.client.list_blobs(self.bucket, prefix=base))

    def exists(self, relative: str) -> bool:
        return any(True for _ in self.bucket.client.list_blobs(self.bucket, prefix=self.key(relative), max_results=1))

    def read(self, relative: str) -> bytes:
        return self.bucket.blob(self.key(relative)).download_as_bytes()

    def put_file(self, relative: str, path: Path) -> None:
        self.bucket.blob(self.key(relative)).upload_from_filename(str(path))

    def copy(self, source: str, destination: str) -> None:
        self.bucket.copy_blob(self.bucket.blob(self.key(source)), self.bucket, self.key(destination))

    def delete(self, relatives: Iterable[str]) -> None:
        for relative in relatives:
            self.bucket.blob(self.key(relative)).delete()


@dataclasses.dataclass
class PinnedVersions:
    """A store whose version ``N`` lives under ``<prefix>/N/N/``: ``<prefix>/N/`` then holds that version alone,
    the folder a KServe ``storageUri`` names (its storage initializer downloads a folder's contents into
    ``/mnt/models``, where TF Serving looks for version folders). Paths whose first part is a version
    number are mapped; the temporary upload prefix is not a number and stays as it is."""

    inner: Any

    @staticmethod
    def _map(relative: str) -> str:
        first, _, rest = relative.partition("/")
        return f"{first}/{first}/{rest}" if first.isdigit() else relative

    def children(self) -> list[str]:
        return self.inner.children()

    def keys(self, relative_folder: str) -> list[str]:
        return self.inner.keys(self._map(relative_folder.strip("/") + "/"))

    def exists(self, relative: str) -> bool:
        return self.inner.exists(self._map(relative))

    def read(self, relative: str) -> bytes:
        return self.inner.read(self._map(relative))

    def put_file(self, relative: str, path: Path) -> None:
        self.inner.put_file(self._map(relative), path)

    def copy(self, source: str, destination: str) -> None:
        self.inner.copy(self._map(source), self._map(destination))

    def delete(self, relatives: Iterable[str]) -> None:
        self.inner.delete([self._map(r) for r in relatives])


Store = S3Store | GcsStore | PinnedVersions


def _open_gcs(bucket: str, prefix: str) -> GcsStore:
    try:
        from google.cloud import storage
    except ImportError:
        raise StoreError("uploading to gs:// needs google-cloud-storage (pip install 'tfspec[runtime]')") from None
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        # A local emulator takes no credentials (the client reads the variable itself).
        from google.auth.credentials import AnonymousCredentials

        client = storage.Client(project="emulator", credentials=AnonymousCredentials())
    else:
        client = storage.Client()  # application default credentials
    return GcsStore(client.bucket(bucket), prefix)


def open_store(base_path: str, endpoint_url: str | None = None, region: str | None = None) -> Store:
    """A client for ``base_path``: ``s3://`` (any S3-compatible endpoint) or ``gs://``."""
    scheme, bucket, prefix = split_base_path(base_path)
    if scheme == "gs":
        return _open_gcs(bucket, prefix)
    if scheme != "s3":
        raise StoreError(f"uploading to {scheme}:// is not supported")
    try:
        import boto3
    except ImportError:
        raise StoreError("uploading to s3:// needs boto3 (pip install 'tfspec[runtime]')") from None
    client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
    return S3Store(bucket, prefix, client)


def versions_in(store: Store) -> list[int]:
    """Complete versions in the store (a numeric folder holding ``saved_model.pb``), ascending."""
    return sorted(int(name) for name in store.children()
                  if name.isdigit() and store.exists(f"{name}/{LAST_FILE}"))


def upload_version(store: Store, model_dir: Path, version: int, identity: str) -> bool:
    """Make ``model_dir`` (a SavedModel folder) version ``version`` of the store; False when it already was.

    ``identity`` (the bundle's fingerprint) tells a repeated upload of the same content from a conflict.
    """
    if store.exists(f"{version}/"):
        marker = f"{version}/{MARKER}"
        previous = json.loads(store.read(marker)).get("identity") if store.exists(marker) else None
        if previous != identity:
            raise StoreError(f"version {version} is already in the store with other content; a loaded version is "
                             "never reloaded, so raise the spec's version instead of overwriting it")
        if store.exists(f"{version}/{LAST_FILE}"):
            return False
        # The same content, but an earlier upload stopped before saved_model.pb: finish it.
    files = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    if LAST_FILE not in files:
        raise StoreError(f"{model_dir} holds no {LAST_FILE}")
    staging = f"{_TEMPORARY}{version}-{uuid.uuid4().hex[:12]}"
    uploaded: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tfspec-upload-") as scratch:
        marker_file = Path(scratch) / "marker.json"
        marker_file.write_text(json.dumps({"identity": identity, "version": version}, sort_keys=True) + "\n", "utf-8")
        _copy_in(store, model_dir, files, staging, marker_file, version, uploaded)
    return True


def _copy_in(store: Store, model_dir: Path, files: list[str], staging: str, marker_file: Path, version: int,
             uploaded: list[str]) -> None:
    try:
        for relative in files:
            store.put_file(f"{staging}/{relative}", model_dir / relative)
            uploaded.append(f"{staging}/{relative}")
        store.put_file(f"{staging}/{MARKER}", marker_file)
        uploaded.append(f"{staging}/{MARKER}")
        order = [f for f in files if f != LAST_FILE] + [MARKER, LAST_FILE]
        for relative in order:
            store.copy(f"{staging}/{relative}", f"{version}/{relative}")
    finally:
        store.delete(uploaded)


def prune_versions(store: Store, keep: int, protected: Iterable[int]) -> list[int]:
    """Delete all but the newest ``keep`` versions and the ``protected`` ones; returns the deleted versions.

    ``saved_model.pb`` goes first, so a half-deleted version is no longer a loadable one.
    """
    versions = versions_in(store)
    kept = set(versions[-keep:]) | set(protected)
    deleted = [v for v in versions if v not in kept]
    for version in deleted:
        keys = store.keys(str(version))
        store.delete([f"{version}/{LAST_FILE}"] + [f"{version}/{k}" for k in keys if k != LAST_FILE])
    return deleted
