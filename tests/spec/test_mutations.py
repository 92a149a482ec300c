"""Property tests: any mutation of the example is either a valid spec or a clean SpecError; and a seeded fuzz of
the whole contract over the examples and the invalid-spec cases (at the end of this file)."""

from __future__ import annotations

import copy
import os
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tfspec
from tfspec.cli import cli
from tfspec.io.batch import is_spec_text
from tfspec_testing import EXAMPLE, ROOT

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


# --- the seeded fuzz of the contract ------------------------------------------------------------------
# Seeded fuzz of the whole compiler contract: a few hundred mutations of the examples and of the invalid-spec
# cases, each either a valid spec or a clean set of problems.
#
# The contract, for every input: the compile returns (no exception escapes: a CLI would print a traceback), every
# problem is one located line (``file:line:col: key.path: message``, no newline, bounded length), and a build that
# fails writes nothing. Runs in-process (a few tens of seconds); a tenth of the cases also go through the
# ``build`` command (click's runner) to check its exit code and that nothing was written.
#
# The seed is fixed so the suite is repeatable; ``TFSPEC_FUZZ_SEED=<n>`` explores other mutations, and
# ``TFSPEC_FUZZ_CASES=<n>`` runs more of them. A failure names its seed and case number, and the mutated text is
# in the assertion message, so it can be turned into a case of ``tests/data/invalid_specs``.

SEED = int(os.environ.get("TFSPEC_FUZZ_SEED", "25"))
CASES = int(os.environ.get("TFSPEC_FUZZ_CASES", "600"))
_LINE = re.compile(r"^[^\n]+:\d+:\d+: [^\n]*$")

SOURCES = sorted(
    [p for p in (ROOT / "examples").rglob("*.yaml") if "rendered" not in p.parts and is_spec_text(p.read_text("utf-8"))]
    + sorted((ROOT / "tests" / "data" / "invalid_specs").glob("*.yaml")))

# Values the fuzz found trouble with before (issue 25's fuzz), and the usual hostile suspects.
HOSTILE: list[Any] = [
    None, True, False, 0, -1, 2147483647, 2**63, 10**30, -10**12, 1e308, 0.0, -0.5, "", " ", "x" * 10_000,
    "${HOME}", "${UNSET_VAR}", "${AWS_SECRET_ACCESS_KEY}", "${X:-3}", "$$", "$(id)", "{{ x }}", "../../etc/passwd",
    "/etc/shadow", "/dev/zero", "s3://bucket/x", "AKIAIOSFODNN7EXAMPLE", "a\nb", "\u202e", "name: [x]", [[[[[]]]]],
    {"": 1}, {"name": ["serving"]}, list(range(50)), [2147483647, 2147483647], {"kind": "npz", "path": "."},
]


def _mutate_tree(tree: Any, rng: random.Random) -> str:
    tree = copy.deepcopy(tree)
    for _ in range(rng.randint(1, 3)):
        paths = _paths(tree)[1:]
        if not paths:
            break
        path = rng.choice(paths)
        parent = tree
        for element in path[:-1]:
            parent = parent[element]
        last = path[-1]
        action = rng.choice(["delete", "replace", "replace", "add_key", "duplicate"])
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = copy.deepcopy(rng.choice(HOSTILE))
        elif action == "add_key" and isinstance(parent[last], dict):
            parent[last][rng.choice(["kind", "name", "extends", "path", "units", "zzz", "targets"])] = \
                copy.deepcopy(rng.choice(HOSTILE))
        elif action == "duplicate" and isinstance(parent[last], list) and parent[last]:
            parent[last].append(copy.deepcopy(rng.choice(parent[last])))
    return yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, width=10**6)


def _mutate_text(text: str, rng: random.Random) -> str:
    lines = text.splitlines(keepends=True) or [""]
    action = rng.choice(["garbage", "cut", "indent", "duplicate_line", "swap_lines"])
    index = rng.randrange(len(lines))
    if action == "garbage":
        position = rng.randrange(len(text) + 1)
        garbage = bytes(rng.randrange(256) for _ in range(rng.randint(1, 12))).decode("utf-8", errors="replace")
        return text[:position] + garbage + text[position:]
    if action == "cut":
        return text[: rng.randrange(len(text) + 1)]
    if action == "indent":
        lines[index] = " " * rng.choice([1, 2, 3, 8]) + lines[index]
    elif action == "duplicate_line":
        lines.insert(index, lines[index])
    else:
        other = rng.randrange(len(lines))
        lines[index], lines[other] = lines[other], lines[index]
    return "".join(lines)


def _tree(text: str) -> Any:
    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, ValueError):  # some invalid cases are not YAML a plain loader reads: mutated as text only
        return None


def _cases() -> list[tuple[int, str, str]]:
    rng = random.Random(SEED)
    texts = {path: path.read_text("utf-8") for path in SOURCES}
    trees = {path: _tree(text) for path, text in texts.items()}
    cases = []
    for number in range(CASES):
        source = rng.choice(SOURCES)
        if isinstance(trees[source], dict) and rng.random() < 0.6:
            text = _mutate_tree(trees[source], rng)
        else:
            text = _mutate_text(texts[source], rng)
        cases.append((number, source.relative_to(ROOT).as_posix(), text))
    return cases


def _check_diagnostics(diagnostics: tuple, where: str) -> None:
    for diagnostic in diagnostics:
        line = diagnostic.format()
        assert _LINE.match(line), f"{where}: not one located line: {line!r}"
        assert diagnostic.line >= 1 and diagnostic.column >= 1, f"{where}: {line}"
        assert len(line) < 2500, f"{where}: a {len(line):,}-character line"


def test_every_mutation_is_a_valid_spec_or_clean_located_problems(tmp_path: Path) -> None:
    started = time.monotonic()
    runner = CliRunner()
    valid = invalid = 0
    for number, source, text in _cases():
        where = f"seed {SEED} case {number} (from {source}); text:\n{text[:3000]}"
        folder = tmp_path / f"case{number}"
        folder.mkdir()
        spec = folder / "deploy.yaml"
        spec.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            result = tfspec.compile(str(spec), text=text, environ={"HOME": "/root", "X": "1"})
        except Exception as error:  # noqa: BLE001  (the contract: nothing escapes)
            pytest.fail(f"{where}\nraised {type(error).__name__}: {error}")
        if result.ok:
            valid += 1
            assert result.plan is not None and "plan.json" in result.files, where
        else:
            invalid += 1
            _check_diagnostics(result.diagnostics, where)
        if number % 10 == 0:  # the command itself: exit code, stderr, nothing written on failure
            out = folder / "out"
            invoked = runner.invoke(cli, ["build", str(spec), "--out", str(out)], env={"HOME": "/root"})
            assert invoked.exit_code in (0, 2), f"{where}\nexit {invoked.exit_code}: {invoked.output[-2000:]}"
            assert invoked.exception is None or isinstance(invoked.exception, SystemExit), \
                f"{where}\n{type(invoked.exception).__name__}: {invoked.exception}"
            assert "Traceback" not in invoked.output, where
            if invoked.exit_code == 2:
                assert not out.exists(), f"{where}\na failed build wrote {out}"
                assert not [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp")], where
    assert valid and invalid, (valid, invalid)  # the mutations reach both sides of the contract
    assert time.monotonic() - started < 600
