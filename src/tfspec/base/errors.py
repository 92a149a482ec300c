"""Errors and diagnostics: one base class, positions on every problem.

Every user-facing problem is a :class:`Diagnostic` (file, line, column, key path, message, hint).
A :class:`SpecError` carries one or more of them; the CLI prints them one per line and exits 2.
"""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

__all__ = ["Diagnostic", "TfspecError", "SpecError", "format_path", "printable", "collapse_repeats", "cap", "ECHO_LIMIT", "MESSAGE_LIMIT",
           "EXIT_OK", "EXIT_DIFF", "EXIT_ERROR", "EXIT_INTERRUPTED"]

EXIT_OK = 0
EXIT_DIFF = 1
EXIT_ERROR = 2
EXIT_INTERRUPTED = 3

PathElement = str | int


ECHO_LIMIT = 80
"""Most characters of a user's value repeated in a message; longer values are cut with an ellipsis."""
MESSAGE_LIMIT = 1000
"""Most characters of a whole message, hint, key path or file name in a diagnostic line (a safety net: the
values in it are cut to :data:`ECHO_LIMIT` already)."""


def cap(text: str, limit: int = ECHO_LIMIT) -> str:
    """``text`` cut to ``limit`` characters plus an ellipsis: messages never echo a whole huge value."""
    return text if len(text) <= limit else text[:limit] + "…"


def printable(text: str) -> str:
    """``text`` on one line: each character ``str.isprintable`` rejects (newline, CR, NEL, U+2028, bidi
    controls, ...) written as its Python escape. File names and keys come from users and may hold any."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


_PLAIN_KEY = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]*")


def format_path(path: tuple[PathElement, ...]) -> str:
    """Render a key path the way users write it: ``targets[1].quantization.kind``; a key that is not a plain
    name (empty, with dots, spaces or quotes) is quoted, ``model[""]``, so the path still says where it is."""
    out = ""
    for element in path:
        if isinstance(element, int):
            out += f"[{element}]"
        elif not _PLAIN_KEY.fullmatch(element):
            out += f"[{json.dumps(cap(element))}]"
        else:
            out += f".{cap(element)}" if out else cap(element)
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
        """``file:line:col: key.path: message (hint)`` on one line. Values in messages are cut to
        :data:`ECHO_LIMIT` characters where they are echoed; as a last resort the message and the hint are cut
        here too, so no line is ever megabytes long."""
        text = f"{cap(self.file, MESSAGE_LIMIT)}:{self.line}:{self.column}: {cap(self.path, MESSAGE_LIMIT)}: " \
               f"{cap(self.message, MESSAGE_LIMIT)}"
        if self.hint:
            text += f" (hint: {cap(self.hint, MESSAGE_LIMIT)})"
        return printable(text)

    def format_with_excerpt(self) -> str:
        """The one-line form, followed by the offending source line where one is known."""
        return self.format() + (f"\n{self.excerpt}" if self.excerpt else "")

    def to_json(self) -> dict[str, Any]:
        return {
            "file": cap(self.file, MESSAGE_LIMIT),
            "line": self.line,
            "column": self.column,
            "path": cap(self.path, MESSAGE_LIMIT),
            "message": cap(self.message, MESSAGE_LIMIT),
            "hint": cap(self.hint, MESSAGE_LIMIT) if self.hint else self.hint,
        }


class TfspecError(Exception):
    """Base class of every error tfspec reports to a user (printed without a traceback)."""

    exit_code: int = EXIT_ERROR


class SpecError(TfspecError):
    """One or more problems in a spec file; every problem found is listed, not only the first."""

    def __init__(self, diagnostics: list[Diagnostic], warnings: list[Diagnostic] | tuple[Diagnostic, ...] = ()) -> None:
        if not diagnostics:
            raise ValueError("SpecError needs at least one diagnostic")
        self.diagnostics = collapse_repeats(sorted(set(diagnostics)))
        # warnings found before the errors stopped the compile (policy warnings, a deprecated operator):
        # still reported beside the errors
        self.warnings = tuple(sorted(set(warnings)))
        super().__init__("\n".join(d.format() for d in self.diagnostics))


REPEATS_SHOWN = 10
"""Diagnostics of one kind listed before the rest are summed up in one "... and N more like this" line."""

_INDEX = re.compile(r"\[\d+\]")
_VARYING = re.compile(r"'[^']*'|\"[^\"]*\"|\d+")


def collapse_repeats(diagnostics: list[Diagnostic]) -> list[Diagnostic]:
    """The first :data:`REPEATS_SHOWN` diagnostics of each kind (same file, key path up to list indices,
    and message up to quoted values and numbers), then one line for the rest: an alias that expands to
    10,000 bad items gives 11 lines, not 10,000."""
    groups: dict[tuple[str, str, str], list[Diagnostic]] = {}
    for diagnostic in diagnostics:
        key = (diagnostic.file, _INDEX.sub("[]", diagnostic.path), _VARYING.sub("_", diagnostic.message))
        groups.setdefault(key, []).append(diagnostic)
    out: list[Diagnostic] = []
    for group in groups.values():
        out.extend(group[:REPEATS_SHOWN])
        if len(group) > REPEATS_SHOWN:
            rest = group[REPEATS_SHOWN]
            out.append(dataclasses.replace(rest, message=f"... and {len(group) - REPEATS_SHOWN:,} more like this",
                                           hint=None, excerpt=None))
    return sorted(out)
