"""docs/troubleshooting.md quotes real `tfspec validate` output: every quoted block is run again here."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

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
def test_quoted_output_is_what_validate_prints(args: str, output: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "tfspec", "validate", *args.split()], cwd=CASES,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout + proc.stderr == output, (
        f"docs/troubleshooting.md is stale for `tfspec validate {args}`: paste the new output "
        f"(run it in tests/data/invalid_specs/) and check the fix text still fits")
