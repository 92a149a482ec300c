"""Files a spec draws on besides itself (base specs, the project file, policy files): loading and naming.

Every position of a document loaded here is a :class:`~tfspec.spec.loader.FilePosition`, so a value keeps
pointing at its own file wherever it is merged. Parsed documents are remembered by path and text: a
folder build of 500 specs sharing one base parses the base once per process.
"""

from __future__ import annotations

import dataclasses
import os

from tfspec.spec.errors import Diagnostic, SpecError
from tfspec.spec.loader import MAX_FILE_BYTES, FilePosition, SourceDocument, load_yaml_bytes

__all__ = ["display_path", "load_source", "with_file_positions"]

_MEMO: dict[tuple[str, str, bytes], SourceDocument] = {}
_MEMO_LIMIT = 256


def display_path(referrer_display: str, relative: str) -> str:
    """How a file named ``relative`` from the file shown as ``referrer_display`` is shown in messages."""
    if os.path.isabs(relative):
        return os.path.normpath(relative)
    return os.path.normpath(os.path.join(os.path.dirname(referrer_display), relative))


def with_file_positions(document: SourceDocument) -> SourceDocument:
    """``document`` with every position marked with its file."""
    positions = {path: FilePosition(pos[0], pos[1], document.file) for path, pos in document.positions.items()}
    return dataclasses.replace(document, positions=positions)


def load_source(absolute: str, display: str) -> SourceDocument:
    """Load a YAML file that a spec draws on, positions marked with ``display`` (raises :class:`SpecError`)."""
    try:
        with open(absolute, "rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SpecError([Diagnostic(display, 1, 1, "<root>", "file not found")]) from None
    except OSError as error:
        raise SpecError([Diagnostic(display, 1, 1, "<root>", f"cannot read file: {error.strerror}")]) from None
    key = (absolute, display, data)
    document = _MEMO.get(key)
    if document is None:
        document = with_file_positions(load_yaml_bytes(data, display))  # the same rules as a spec file
        if len(_MEMO) >= _MEMO_LIMIT:
            _MEMO.clear()
        _MEMO[key] = document
    return document
