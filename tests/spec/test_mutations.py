"""Property test: any mutation of the example is either a valid spec or a clean SpecError."""

from __future__ import annotations

import copy
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfspec
from tfspec_testing import EXAMPLE

BASE_TEXT = EXAMPLE.read_text(encoding="utf-8")
BASE_TREE = yaml.safe_load(BASE_TEXT)

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=30), st.sampled_from(["${HOME}", "${UNSET_VAR}", "${X:-3}", "$$", "../x", "{{ x }}", "$(id)"]),
)
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                        st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                      max_leaves=8)


def _paths(node: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out.extend(_paths(value, prefix + (key,)))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            out.extend(_paths(value, prefix + (index,)))
    return out


PATHS = _paths(BASE_TREE)[1:]


def _mutate(tree: Any, path: tuple, action: str, value: Any, key: str) -> Any:
    tree = copy.deepcopy(tree)
    parent = tree
    for element in path[:-1]:
        parent = parent[element]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = value
    elif action == "add_key" and isinstance(parent[last], dict):
        parent[last][key] = value
    return tree


def _check(text: str) -> None:
    result = tfspec.compile("mutated.yaml", text=text, environ={"HOME": "/root"})
    if result.ok:
        assert result.plan is not None and "plan.json" in result.files
    else:
        for diagnostic in result.diagnostics:
            assert diagnostic.file == "mutated.yaml"
            assert diagnostic.line >= 1 and diagnostic.column >= 1
            assert diagnostic.message


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(PATHS), action=st.sampled_from(["delete", "replace", "add_key"]),
       value=values, key=st.text(min_size=1, max_size=10))
def test_tree_mutations_are_valid_or_clean_errors(path: tuple, action: str, value: Any, key: str) -> None:
    tree = _mutate(BASE_TREE, path, action, value, key)
    _check(yaml.safe_dump(tree, sort_keys=False, allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, len(BASE_TEXT)), garbage=st.binary(max_size=20), cut=st.booleans())
def test_garbage_bytes_are_clean_errors(position: int, garbage: bytes, cut: bool) -> None:
    data = BASE_TEXT.encode("utf-8")
    data = data[:position] + garbage + (b"" if cut else data[position:])
    text = data.decode("utf-8", errors="replace")
    _check(text)


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=200))
def test_arbitrary_text_is_a_clean_error(text: str) -> None:
    _check(text)
