"""Files a spec draws on besides itself (base specs, the project file, policy files): loading and naming.

Every position of a document loaded here is a :class:`~tfspec.spec.loader.FilePosition`, so a value keeps
pointing at its own file wherever it is merged. Parsed documents are remembered by path and text: a
folder build of 500 specs sharing one base parses the base once per process.

What may be read (:func:`reference_problem`): a ``.yaml``/``.yml`` regular file inside the project — the
folder of the governing ``tfspec.yaml``; without one, the repository (the folder holding ``.git``) or else
the spec's own folder — unless the project file says ``external_locations: true``. A pull request cannot make a CI job read (and print) a file such
as ``/root/.aws/credentials`` or ``/etc/shadow``, nor hang it on a FIFO.
"""

from __future__ import annotations

import dataclasses
import os

from tfspec.base.errors import Diagnostic, SpecError
from tfspec.spec.files import FileProblem, file_problem, read_regular_file
from tfspec.spec.loader import MAX_FILE_BYTES, FilePosition, SourceDocument, load_yaml_bytes

__all__ = ["YAML_SUFFIXES", "Scope", "display_path", "load_source", "reference_problem", "with_file_positions"]

YAML_SUFFIXES = (".yaml", ".yml")


@dataclasses.dataclass(frozen=True)
class Scope:
    """Where base specs and policy files may be read from.

    Attributes:
        root: the project root: the folder of ``tfspec.yaml``; without one the repository root, else the
            spec's folder.
        external: the project file's ``external_locations: true``: any folder is allowed.
        kind: what ``root`` is, for messages (``the folder of tfspec.yaml``).
    """

    root: str
    external: bool = False
    kind: str = "the spec's folder"


def _inside(path: str, root: str) -> bool:
    real, base = os.path.realpath(path), os.path.realpath(root)
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def reference_problem(absolute: str, display: str, what: str, scope: Scope) -> tuple[str, str | None] | None:
    """``(message, hint)`` when the file named as ``what`` (``base spec``, ``policy file``) may not be read:
    not a YAML file name, outside the project without the opt-in, or not a regular file; else None.

    The place is checked before the file is looked at: whether a file outside the project exists is never
    told."""
    if not absolute.endswith(YAML_SUFFIXES):
        return f"{what} {display} is not a YAML file", "base specs and policy files end in .yaml or .yml"
    if not scope.external and not _inside(absolute, scope.root):
        hint = ("move it into the project, or set external_locations: true in tfspec.yaml"
                if scope.kind == "the folder of tfspec.yaml" else
                "move it into the project, or add a tfspec.yaml in a folder above both (the project root)")
        return f"{what} {display} is outside the project ({scope.kind})", hint
    problem = file_problem(absolute)
    if problem is not None:
        return f"{what} {display} {problem}", None
    return None

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
        data = read_regular_file(absolute, MAX_FILE_BYTES)
    except FileProblem as problem:
        message = "file not found" if problem.reason == "not found" else problem.reason
        raise SpecError([Diagnostic(display, 1, 1, "<root>", message)]) from None
    key = (absolute, display, data)
    document = _MEMO.get(key)
    if document is None:
        document = with_file_positions(load_yaml_bytes(data, display))  # the same rules as a spec file
        if len(_MEMO) >= _MEMO_LIMIT:
            _MEMO.clear()
        _MEMO[key] = document
    return document
