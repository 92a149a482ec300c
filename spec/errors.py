"""Errors and diagnostics: one base class, positions on every problem.

Every user-facing problem is a :class:`Diagnostic` (file, line, column, key path, message, hint).
A :class:`SpecError` carries one or more of them; the CLI prints them one per line and exits 2.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["Diagnostic", "TfspecError", "SpecError", "format_path", "EXIT_OK", "EXIT_DIFF", "EXIT_ERROR", "EXIT_INTERRUPTED"]

EXIT_OK = 0
EXIT_DIFF = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 3

PathElement = str | int


def format_path(path: tuple[PathElement, ...]) -> str:
    """Render a key path the way users write it: ``targets[1].quantization.kind``."""
    out = ""
    for element in path:
        if isinstance(element, int):
            out += f"[{element}]"
        else:
            out += f".{element}" if out else str(element)
    return out or "<root>"


@dataclasses.dataclass(frozen=True, order=True)
class Diagnostic:
    """One problem in one file, with the position of the node it is about."""

    file: str
    line: int
    column: int
    path: str
    message: str
    hint: str | None = None
    excerpt: str | None = dataclasses.field(default=None, compare=False)

    def format(self) -> str:
        """``file:line:col: key.path: message (hint)`` on one line."""
        text = f"{self.file}:{self.line}:{self.column}: {self.path}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def format_with_excerpt(self) -> str:
        """The one-line form, followed by the offending source line where one is known."""
        return self.format() + (f"\n{self.excerpt}" if self.excerpt else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
            "hint": self.hint,
        }


class TfspecError(Exception):
    """Base class of every error tfspec reports to a user (printed without a traceback)."""

    exit_code: int = EXIT_ERROR


class SpecError(TfspecError):
    """One or more problems in a spec file; every problem found is listed, not only the first."""

    def __init__(self, diagnostics: list[Diagnostic]) -> None:
        if not diagnostics:
            raise ValueError("SpecError needs at least one diagnostic")
        self.diagnostics = sorted(set(diagnostics))
        super().__init__("\n".join(d.format() for d in self.diagnostics))
