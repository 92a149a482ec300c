"""docs/troubleshooting.md quotes real `tfspec validate` output: every quoted block is run again here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from tfspec.cli import cli

ROOT = Path(__file__).parents[2]
DOC = ROOT / "docs" / "troubleshooting.md"
CASES = ROOT / "tests" / "data" / "invalid_specs"
BLOCK = re.compile(r"<!-- validate: (?P<args>[^>]+?) -->\n```console\n\$ tfspec validate (?P=args)\n(?P<output>.*?)```",
                   re.S)


def _blocks() -> list[tuple[str, str]]:
    return [(m["args"], m["output"]) for m in BLOCK.finditer(DOC.read_text(encoding="utf-8"))]


def test_the_page_quotes_many_cases() -> None:
    blocks = _blocks()
    assert len(blocks) >= 60
    assert len(blocks) == DOC.read_text(encoding="utf-8").count("<!-- validate:")  # none malformed


@pytest.mark.parametrize(("args", "output"), _blocks(), ids=[args for args, _ in _blocks()])
def test_quoted_output_is_what_validate_prints(args: str, output: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # In-process (the CLI's subprocess behaviour is covered by tests/compiler/test_invalid_specs.py): 69 cases
    # would otherwise start 69 interpreters.
    monkeypatch.chdir(CASES)
    result = CliRunner().invoke(cli, ["validate", *args.split()], prog_name="tfspec", catch_exceptions=False)
    assert result.exit_code == 2
    assert result.stdout + result.stderr == output, (
        f"docs/troubleshooting.md is stale for `tfspec validate {args}`: paste the new output "
        f"(run it in tests/data/invalid_specs/) and check the fix text still fits")
