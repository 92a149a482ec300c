"""The position-keeping YAML loader."""

from __future__ import annotations

import pytest

from tfspec.base.errors import SpecError
from tfspec.spec import load_yaml_text


def test_positions_of_keys_and_items() -> None:
    doc = load_yaml_text("a:\n  b: 1\n  list:\n    - x\n    - {c: 2}\n", "f.yaml")
    assert doc.tree == {"a": {"b": 1, "list": ["x", {"c": 2}]}}
    assert doc.positions[("a",)] == (1, 1)
    assert doc.positions[("a", "b")] == (2, 3)
    assert doc.positions[("a", "list", 1)] == (5, 7)
    assert doc.positions[("a", "list", 1, "c")] == (5, 8)
    assert doc.position(("a", "list", 1, "missing", "deeper")) == (5, 7)


def test_duplicate_keys_are_reported_with_both_lines() -> None:
    with pytest.raises(SpecError) as error:
        load_yaml_text("a: 1\nb: 2\na: 3\n", "f.yaml")
    [diagnostic] = error.value.diagnostics
    assert diagnostic.format() == ("f.yaml:3:1: a: duplicate key 'a' (first defined on line 1) "
                                   "(hint: remove one of the two entries)")


def test_syntax_error_shows_the_offending_line() -> None:
    with pytest.raises(SpecError) as error:
        load_yaml_text("a: [1, 2\nb: 3\n", "f.yaml")
    [diagnostic] = error.value.diagnostics
    assert diagnostic.line == 2 and "YAML syntax error" in diagnostic.message
    assert "1 | a: [1, 2" in diagnostic.excerpt


def test_alias_bombs_are_refused() -> None:
    text = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
    for name, prev in zip("bcdefg", "abcdef"):
        text += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 10) + "]\n"
    with pytest.raises(SpecError) as error:
        load_yaml_text(text, "f.yaml")
    assert "expands to more than" in error.value.diagnostics[0].message


def test_nul_bytes_and_empty_files() -> None:
    with pytest.raises(SpecError, match="NUL byte"):
        load_yaml_text("a: 1\n\x00", "f.yaml")
    with pytest.raises(SpecError, match="file is empty"):
        load_yaml_text("# only a comment\n", "f.yaml")
