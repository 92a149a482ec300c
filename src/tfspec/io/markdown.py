"""Markdown that is safe to paste into a pull request or a CI job summary.

Every value that comes from a spec, a file name, an image reference or a message is shown through
:func:`code`: flattened to one line (``printable``: newlines and control characters become escapes), cut to
80 characters (``cap``, the compiler's one truncation rule) and put in an inline code span whose backtick
fence is longer than any run of backticks inside it. Inside a code span nothing is Markdown or HTML: no
link, image, emphasis, tag, heading, autolink, ``@mention`` or ``#123`` reference. In a table cell, each ``|``
is written ``\\|``: GitHub's parser (cmark-gfm) splits a row at every pipe that no backslash precedes, code
spans included, and removes that backslash before the cell is parsed (extensions/table.c,
``unescape_pipes``). Everything else this module writes (headings, counts, ``<details>``) is tfspec's own
text, never a user's.
"""

from __future__ import annotations

import re

from tfspec.base.errors import printable
from tfspec.spec.loader import ECHO_LIMIT, cap

__all__ = ["code", "table", "details", "plural", "listing"]

_BACKTICKS = re.compile(r"`+")


def code(text: str, *, in_table: bool = False, limit: int = ECHO_LIMIT) -> str:
    """``text`` as an inline code span: one line, at most ``limit`` characters plus an ellipsis."""
    flat = cap(printable(text), limit)
    if not flat:
        return "*(empty)*"
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(flat)), default=0) + 1)
    # CommonMark strips one space from each end of a code span that begins and ends with one; a span that
    # begins or ends with a backtick needs the space to stay apart from its fence.
    if flat[0] == "`" or flat[-1] == "`" or (flat[0] == " " and flat[-1] == " " and flat.strip()):
        flat = f" {flat} "
    if in_table:
        flat = flat.replace("|", "\\|")
    return f"{fence}{flat}{fence}"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A GFM table; cells are already Markdown (use ``code(..., in_table=True)`` for values)."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return lines


def details(summary: str, body: list[str]) -> list[str]:
    """A collapsed block; ``summary`` is tfspec's own text (raw HTML: Markdown is not parsed there)."""
    return ["<details>", f"<summary>{summary}</summary>", "", *body, "", "</details>"]


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def listing(items: list[str], shown: int) -> str:
    """Up to ``shown`` items (already Markdown) joined by commas, then how many more there are."""
    text = ", ".join(items[:shown])
    if len(items) > shown:
        text += f" and {len(items) - shown:,} more"
    return text
