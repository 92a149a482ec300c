"""YAML loading that keeps the line and column of every node.

``load_yaml`` returns a :class:`SourceDocument`: the plain tree (dicts, lists, scalars) and a map from
key path to position, so that any later stage can point at the exact line a value came from.
Duplicate keys are errors, as are anchors merged into nothing and non-string keys.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import yaml

from .errors import Diagnostic, SpecError, format_path

__all__ = ["Position", "FilePosition", "SourceDocument", "load_yaml", "load_yaml_text", "source_excerpt"]

Position = tuple[int, int]
KeyPath = tuple[str | int, ...]

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class FilePosition(tuple):  # type: ignore[type-arg]
    """A ``(line, column)`` that remembers the file it is in: a value merged in from a base spec keeps
    pointing at the base. Unpacks and compares like a plain position."""

    file: str

    def __new__(cls, line: int, column: int, file: str) -> "FilePosition":
        position = super().__new__(cls, (line, column))
        position.file = file
        return position

    def __getnewargs__(self) -> tuple[int, int, str]:  # type: ignore[override]
        return self[0], self[1], self.file


@dataclasses.dataclass(frozen=True)
class SourceDocument:
    """A parsed YAML file: its tree, the position of every node, and where it came from."""

    file: str
    text: str
    sha256: str
    tree: Any
    positions: dict[KeyPath, Position]

    def position(self, path: KeyPath) -> Position:
        """Position of ``path``, or of its closest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.positions:
                return self.positions[path]
            path = path[:-1]
        return self.positions.get((), (1, 1))

    def diagnostic(self, path: KeyPath, message: str, hint: str | None = None) -> Diagnostic:
        position = self.position(path)
        file = position.file if isinstance(position, FilePosition) else self.file
        return Diagnostic(file, position[0], position[1], format_path(tuple(path)), message, hint)

    def file_of(self, path: KeyPath) -> str:
        """The file that set the value at ``path`` (another file when it came from a base spec)."""
        position = self.position(path)
        return position.file if isinstance(position, FilePosition) else self.file


def source_excerpt(text: str, line: int, column: int, context: int = 1) -> str:
    """Numbered source lines around ``line`` with a caret under ``column`` (both 1-based)."""
    lines = text.splitlines()
    first, last = max(1, line - context), min(len(lines), line)
    width = len(str(last))
    out = [f"  {n:>{width}} | {lines[n - 1]}" for n in range(first, last + 1)]
    if 1 <= line <= len(lines):
        out.append(f"  {' ' * width} | {' ' * (column - 1)}^")
    return "\n".join(out)


def load_yaml(path: str | Path, display_name: str | None = None) -> SourceDocument:
    """Read and parse a YAML file, keeping positions. Raises :class:`SpecError` on any problem."""
    name = display_name or str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise SpecError([Diagnostic(name, 1, 1, "<root>", "file not found")]) from None
    except IsADirectoryError:
        raise SpecError([Diagnostic(name, 1, 1, "<root>", "is a directory, not a spec file")]) from None
    except OSError as error:
        raise SpecError([Diagnostic(name, 1, 1, "<root>", f"cannot read file: {error.strerror}")]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise SpecError([Diagnostic(name, line, 1, "<root>", "file is not valid UTF-8 text")]) from None
    return load_yaml_text(text, name)


def load_yaml_text(text: str, file: str = "<string>") -> SourceDocument:
    """Parse YAML text, keeping positions. Raises :class:`SpecError` on any problem."""
    sha256 = hashlib.sha256(text.encode("utf-8")).hexdigest()
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise SpecError([Diagnostic(file, line, 1, "<root>", "file contains a NUL byte: not a YAML text file")])
    try:
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        message = "YAML syntax error: " + (error.problem or error.context or "invalid YAML")
        excerpt = source_excerpt(text, line, column)
        raise SpecError([Diagnostic(file, line, column, "<root>", message, excerpt=excerpt)]) from None
    except yaml.YAMLError as error:
        raise SpecError([Diagnostic(file, 1, 1, "<root>", f"YAML error: {error}")]) from None
    except RecursionError:
        raise SpecError([Diagnostic(file, 1, 1, "<root>", "YAML nesting is too deep")]) from None
    if node is None:
        raise SpecError([Diagnostic(file, 1, 1, "<root>", "file is empty: expected a mapping of spec sections")])
    positions: dict[KeyPath, Position] = {(): _position(node)}
    problems: list[Diagnostic] = []
    try:
        tree = _construct(node, (), positions, problems, file, text)
    except RecursionError:
        raise SpecError([Diagnostic(file, 1, 1, "<root>", "YAML nesting is too deep")]) from None
    except _TooLarge as error:
        raise SpecError([Diagnostic(file, *error.position, "<root>",
                                    f"the document expands to more than {MAX_NODES} nodes (YAML aliases?)")]) from None
    if problems:
        raise SpecError(problems)
    return SourceDocument(file=file, text=text, sha256=sha256, tree=tree, positions=positions)


def _position(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


_SCALAR_CONSTRUCTOR = yaml.SafeLoader("")
# Aliases can make a small file expand into a huge tree ("billion laughs"): cap the nodes built.
MAX_NODES = 200_000


def _scalar(node: yaml.ScalarNode) -> Any:
    return _SCALAR_CONSTRUCTOR.construct_object(node, deep=True)


class _TooLarge(Exception):
    def __init__(self, position: Position) -> None:
        self.position = position


def _construct(
    node: yaml.Node,
    path: KeyPath,
    positions: dict[KeyPath, Position],
    problems: list[Diagnostic],
    file: str,
    text: str,
) -> Any:
    if len(positions) > MAX_NODES:
        raise _TooLarge(_position(node))
    if isinstance(node, yaml.ScalarNode):
        try:
            return _scalar(node)
        except yaml.YAMLError as error:
            line, column = _position(node)
            problems.append(Diagnostic(file, line, column, format_path(path), f"invalid scalar: {error}"))
            return None
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, child in enumerate(node.value):
            positions[path + (index,)] = _position(child)
            items.append(_construct(child, path + (index,), positions, problems, file, text))
        return items
    if isinstance(node, yaml.MappingNode):
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            line, column = _position(key_node)
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(
                    Diagnostic(file, line, column, format_path(path), "YAML merge keys (<<) are not supported",
                               "write the keys out, or use an environment overlay")
                )
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                problems.append(Diagnostic(file, line, column, format_path(path), "mapping keys must be plain strings"))
                continue
            key = _scalar(key_node)
            if not isinstance(key, str):
                key = str(key_node.value)
            child_path = path + (key,)
            if key in mapping:
                first_line, _ = positions[child_path]
                problems.append(
                    Diagnostic(file, line, column, format_path(child_path),
                               f"duplicate key {key!r} (first defined on line {first_line})",
                               "remove one of the two entries")
                )
                continue
            positions[child_path] = (line, column)
            mapping[key] = _construct(value_node, child_path, positions, problems, file, text)
        return mapping
    line, column = _position(node)
    problems.append(Diagnostic(file, line, column, format_path(path), "unsupported YAML node"))
    return None
