"""YAML loading that keeps the line and column of every node.

``load_yaml`` returns a :class:`SourceDocument`: the plain tree (dicts, lists, scalars) and a map from
key path to position, so that any later stage can point at the exact line a value came from.
Duplicate keys are errors, as are merge keys and non-string keys.

Plain scalars are read with YAML 1.2's core schema, stricter: ``true``/``false`` are the only booleans
(``yes``, ``on``, ``no`` are strings), numbers are plain decimals (``0x28``, ``4_0``, ``012``, ``1:30``,
``.inf`` and ``.nan`` are strings, which a number field then rejects by name), timestamps are strings, and
explicit tags other than ``!!str`` are refused. Limits keep hostile files cheap: the file size, the number
of values after aliases are expanded, and the digits of a number.
"""

import dataclasses
import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from tfspec.base.errors import ECHO_LIMIT, Diagnostic, SpecError, cap, format_path

__all__ = ["Position", "FilePosition", "SourceDocument", "load_yaml", "load_yaml_bytes", "load_yaml_text",
           "decode_spec_bytes", "source_excerpt", "plain_scalar", "NumberTooLong", "cap", "MAX_FILE_BYTES", "MAX_NODES",
           "MAX_NUMBER_DIGITS"]

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
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise SpecError([Diagnostic(name, 1, 1, "<root>", "file not found")]) from None
    except IsADirectoryError:
        raise SpecError([Diagnostic(name, 1, 1, "<root>", "is a directory, not a spec file")]) from None
    except OSError as error:
        raise SpecError([Diagnostic(name, 1, 1, "<root>", f"cannot read file: {error.strerror}")]) from None
    return load_yaml_bytes(data, name)


def load_yaml_bytes(data: bytes, file: str) -> SourceDocument:
    """Parse the bytes of a spec file (what ``build`` and ``watch`` both read): size, UTF-8, then YAML."""
    if len(data) > MAX_FILE_BYTES:
        raise SpecError([_too_large_file(file)])
    return load_yaml_text(decode_spec_bytes(data), file)


def decode_spec_bytes(data: bytes) -> str:
    """The text of a spec file as every command reads it: UTF-8 (a BOM is dropped), each byte that is not
    UTF-8 replaced by U+FFFD, which :func:`load_yaml_text` then reports at its line and column. ``build``,
    a folder build and ``watch`` (which decode leniently to detect spec files) so apply the same rule."""
    return data.decode("utf-8", errors="replace").removeprefix("\ufeff")


def _too_large_file(file: str) -> Diagnostic:
    return Diagnostic(file, 1, 1, "<root>", f"file is larger than {MAX_FILE_BYTES // 1024} KiB: too large for a spec",
                      "a spec is a few KiB of YAML; keep data in data files")


def load_yaml_text(text: str, file: str = "<string>") -> SourceDocument:
    """Parse YAML text, keeping positions. Raises :class:`SpecError` on any problem."""
    encoded = text.encode("utf-8", errors="surrogatepass")
    if len(encoded) > MAX_FILE_BYTES:
        raise SpecError([_too_large_file(file)])
    sha256 = hashlib.sha256(encoded).hexdigest()
    if "\ufffd" in text:
        line, column = _line_column(text, text.index("\ufffd"))
        raise SpecError([Diagnostic(file, line, column, "<root>", "file is not valid UTF-8 text",
                                    "save it as UTF-8; a U+FFFD replacement character counts as invalid too")])
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise SpecError([Diagnostic(file, line, 1, "<root>", "file contains a NUL byte: not a YAML text file")])
    try:
        _check_size(text, file)
        node = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as error:
        raise SpecError([_syntax_error(error, text, file)]) from None
    except yaml.reader.ReaderError as error:
        line, column = _line_column(text, error.position)
        message = f"character {_codepoint(error.character)} is not allowed in YAML ({error.reason})"
        raise SpecError([Diagnostic(file, line, column, "<root>", message, "remove it, or write it as an escape "
                                    "inside a double-quoted string")]) from None
    except yaml.YAMLError as error:
        first_line = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise SpecError([Diagnostic(file, 1, 1, "<root>", f"YAML error: {cap(first_line)}")]) from None
    except RecursionError:
        raise SpecError([Diagnostic(file, 1, 1, "<root>", "YAML nesting is too deep")]) from None
    if node is None:
        raise SpecError([Diagnostic(file, 1, 1, "<root>", "file is empty: expected a mapping of spec sections")])
    builder = _Builder(file)
    try:
        tree = builder.build(node, ())
    except RecursionError:
        raise SpecError([Diagnostic(file, 1, 1, "<root>", "YAML nesting is too deep")]) from None
    except _TooLarge as error:
        raise SpecError([_too_many_values(file, error.position, error.aliased)]) from None
    if builder.problems:
        raise SpecError(builder.problems)
    return SourceDocument(file=file, text=text, sha256=sha256, tree=tree, positions=builder.positions)


def _check_size(text: str, file: str) -> None:
    """Count the values as the parser emits them and stop at :data:`MAX_NODES`: composing a file of 100,000
    values first costs seconds (the count after composing catches what aliases expand to)."""
    loader = _Loader(text)
    count = 0
    try:
        while loader.check_event():
            event = loader.get_event()
            if isinstance(event, (yaml.ScalarEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)):
                count += 1
                if count > MAX_NODES:
                    position = event.start_mark.line + 1, event.start_mark.column + 1
                    raise SpecError([_too_many_values(file, position, aliased=False)])
    finally:
        loader.dispose()


def _too_many_values(file: str, position: Position, aliased: bool) -> Diagnostic:
    what = "expands to" if aliased else "has"
    why = "through YAML aliases" if aliased else "a spec has a few hundred"
    return Diagnostic(file, *position, "<root>", f"the document {what} more than {MAX_NODES:,} values ({why})")


def _position(node: yaml.Node) -> Position:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _line_column(text: str, index: int) -> Position:
    start = text.rfind("\n", 0, index) + 1
    return text.count("\n", 0, index) + 1, index - start + 1


def _codepoint(character: str | int) -> str:
    code = character if isinstance(character, int) else ord(character)
    return f"U+{code:04X}"


def _syntax_error(error: yaml.MarkedYAMLError, text: str, file: str) -> Diagnostic:
    """One line at the place the user must look: for a quote that is never closed, the opening quote
    (PyYAML's problem mark is then the end of the file)."""
    mark = error.problem_mark or error.context_mark
    problem = error.problem or error.context or "invalid YAML"
    if error.context_mark is not None and "quoted scalar" in (error.context or "") \
            and "end of stream" in (error.problem or ""):
        mark, problem = error.context_mark, "this quoted string is never closed"
    line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
    message = "YAML syntax error: " + cap(problem)
    return Diagnostic(file, line, column, "<root>", message, _variable_in_flow_hint(error, text, line),
                      excerpt=_capped_excerpt(text, line, column))


_UNQUOTED_VARIABLE = re.compile(r"(?<![\"'])(\$\{[A-Za-z_][A-Za-z0-9_]*(?::-[^}\s]*)?\})")


def _variable_in_flow_hint(error: yaml.MarkedYAMLError, text: str, line: int) -> str | None:
    """``{seed: ${SEED:-7}}``: inside a flow mapping or list the ``{`` of an unquoted variable reference
    is YAML syntax. Quoting it keeps the variable (a value that is exactly one variable is still read as
    a number or boolean after expansion)."""
    if "flow" not in (error.context or "") + (error.problem or ""):
        return None
    lines = text.splitlines()
    found = _UNQUOTED_VARIABLE.search(lines[line - 1]) if 0 < line <= len(lines) else None
    if found is None:
        return None
    return f'quote the variable inside {{...}} or [...]: "{cap(found.group(1), 60)}"'


def _capped_excerpt(text: str, line: int, column: int) -> str:
    """:func:`source_excerpt`, with each source line cut (a 500 KB line would otherwise be echoed)."""
    lines = text.splitlines()
    if any(len(lines[n - 1]) > 200 for n in range(max(1, line - 1), min(len(lines), line) + 1)):
        return ""
    return source_excerpt(text, line, column)


# Aliases can make a small file expand into a huge tree ("billion laughs"); a big file is not a spec.
MAX_FILE_BYTES = 256 * 1024
MAX_NODES = 50_000
# No spec number needs more digits (the largest bound is a 10-digit seed); int() of 4,301+ digits raises.
MAX_NUMBER_DIGITS = 30

_SCALAR_CONSTRUCTOR = yaml.SafeLoader("")
_TAG_PREFIX = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ = _TAG_PREFIX + "str", _TAG_PREFIX + "map", _TAG_PREFIX + "seq"
_NULLS = frozenset({"", "~", "null", "Null", "NULL"})
_BOOLS = {"true": True, "True": True, "TRUE": True, "false": False, "False": False, "FALSE": False}
_INT = re.compile(r"[-+]?(0|[1-9][0-9]*)")
_FLOAT = re.compile(r"[-+]?([0-9]+\.[0-9]*|\.[0-9]+|[0-9]+(?=[eE]))([eE][-+]?[0-9]+)?")


class NumberTooLong(ValueError):
    """A plain scalar that is a number with more than :data:`MAX_NUMBER_DIGITS` digits."""


def plain_scalar(value: str) -> Any:
    """The value of an unquoted, untagged scalar: None, True/False, a decimal int or float, or the string.

    Raises :class:`NumberTooLong` for a number with more than :data:`MAX_NUMBER_DIGITS` digits.
    """
    if value in _NULLS:
        return None
    if value in _BOOLS:
        return _BOOLS[value]
    if _INT.fullmatch(value):
        if len(value.lstrip("+-")) > MAX_NUMBER_DIGITS:
            raise NumberTooLong(f"number with {len(value.lstrip('+-')):,} digits is too large")
        return int(value)
    if _FLOAT.fullmatch(value):
        if len(value) > MAX_NUMBER_DIGITS + 10:
            raise NumberTooLong(f"number with {len(value):,} characters is too long")
        return float(value)
    return value


def _tag_name(tag: str) -> str:
    return "!!" + tag[len(_TAG_PREFIX):] if tag.startswith(_TAG_PREFIX) else tag


def _explicit_tag(node: yaml.ScalarNode) -> bool:
    """Was the scalar's tag written in the file (``!!int 3``), rather than resolved from its text?"""
    plain = not node.style  # None from PyYAML's Python composer, "" from its C one
    return node.tag != _SCALAR_CONSTRUCTOR.resolve(yaml.ScalarNode, node.value, (plain, not plain))


def _scalar(node: yaml.ScalarNode) -> Any:
    if node.tag == _STR and (node.style or _explicit_tag(node)):
        return node.value
    if _explicit_tag(node):
        raise _BadNode(f"YAML tag {cap(_tag_name(node.tag), 40)} is not supported",
                       "remove the tag: a spec uses plain strings, numbers, true/false, lists and mappings")
    if node.style:
        return node.value
    try:
        return plain_scalar(node.value)
    except NumberTooLong as error:
        raise _BadNode(str(error), "spec numbers are small; quote it if it is meant as text") from None


class _BadNode(Exception):
    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message, self.hint = message, hint


class _TooLarge(Exception):
    def __init__(self, position: Position, aliased: bool) -> None:
        self.position = position
        self.aliased = aliased


class _Builder:
    """Builds the plain tree from composed nodes, recording positions and collecting problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.positions: dict[KeyPath, Position] = {}
        self.problems: list[Diagnostic] = []
        self._seen: set[int] = set()
        self._aliased = False  # a collection reached twice: the tree is bigger than the file

    def build(self, node: yaml.Node, path: KeyPath) -> Any:
        self.positions[path] = _position(node)
        if len(self.positions) > MAX_NODES:
            raise _TooLarge(_position(node), self._aliased)
        if isinstance(node, yaml.ScalarNode):
            try:
                return _scalar(node)
            except _BadNode as error:
                return self._problem(node, path, error.message, error.hint)
        if id(node) in self._seen:
            self._aliased = True
        self._seen.add(id(node))
        if isinstance(node, yaml.SequenceNode) and node.tag == _SEQ:
            return [self.build(child, path + (index,)) for index, child in enumerate(node.value)]
        if isinstance(node, yaml.MappingNode) and node.tag == _MAP:
            return self._mapping(node, path)
        if isinstance(node, (yaml.SequenceNode, yaml.MappingNode)):
            return self._problem(node, path, f"YAML tag {cap(_tag_name(node.tag), 40)} is not supported",
                                 "remove the tag: a spec uses plain lists and mappings")
        return self._problem(node, path, "unsupported YAML node")

    def _mapping(self, node: yaml.MappingNode, path: KeyPath) -> dict[str, Any]:
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _TAG_PREFIX + "merge":
                self._problem(key_node, path, "YAML merge keys (<<) are not supported",
                              "write the keys out, or use an environment overlay")
                continue
            if not isinstance(key_node, yaml.ScalarNode) or (key_node.tag != _STR and _explicit_tag(key_node)):
                self._problem(key_node, path, "mapping keys must be plain strings")
                continue
            key = str(key_node.value)
            child_path = path + (key,)
            if key in mapping:
                first_line, _ = self.positions[child_path]
                self._problem(key_node, child_path, f"duplicate key {cap(key)!r} (first defined on line {first_line})",
                              "remove one of the two entries")
                continue
            self.positions[child_path] = _position(key_node)
            mapping[key] = self.build(value_node, child_path)
            self.positions[child_path] = _position(key_node)  # a key points at its key, not its value
        return mapping

    def _problem(self, node: yaml.Node, path: KeyPath, message: str, hint: str | None = None) -> None:
        self.problems.append(Diagnostic(self.file, *_position(node), format_path(path), message, hint))
        return None
