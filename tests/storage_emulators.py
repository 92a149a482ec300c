"""Object-storage servers for tests, on 127.0.0.1 only: moto's S3-compatible server and gcp-storage-emulator.

Each starts fresh with one empty bucket and is stopped when its ``with`` block ends.
"""

from __future__ import annotations

import contextlib
import socket
import urllib.request
from collections.abc import Iterator

import pytest

__all__ = ["free_port", "s3_server", "gcs_server"]


def free_port() -> int:
    """A TCP port nothing listens on at the moment, on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def s3_server(monkeypatch: pytest.MonkeyPatch, bucket: str) -> Iterator[str]:
    """A fresh S3-compatible server with an empty ``bucket`` and test credentials; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    from tfspec.runtime.model_store import open_store

    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    url = f"http://127.0.0.1:{port}"
    try:
        # The in-process server keeps its state between instances: start each test from nothing.
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30).close()
        open_store(f"s3://{bucket}", url).client.create_bucket(Bucket=bucket)
        yield url
    finally:
        server.stop()


@contextlib.contextmanager
def gcs_server(monkeypatch: pytest.MonkeyPatch, bucket: str) -> Iterator[None]:
    """A fresh in-memory GCS emulator with an empty ``bucket``, reached through ``STORAGE_EMULATOR_HOST``."""
    from gcp_storage_emulator.server import create_server

    port = free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=bucket)
    server.start()
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    try:
        yield
    finally:
        server.stop()
