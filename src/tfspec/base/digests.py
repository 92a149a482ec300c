"""SHA-256 digests of files and texts: the one way tfspec fingerprints content."""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["file_sha256", "text_sha256"]


def file_sha256(path: str | Path) -> str:
    """The hex SHA-256 of the file at ``path``, read in chunks (a large model file is never held in memory)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def text_sha256(text: str) -> str:
    """The hex SHA-256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
