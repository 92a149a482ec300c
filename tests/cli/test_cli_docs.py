"""docs/cli.md documents every command and option the CLI registers, and every exit code it uses."""

from __future__ import annotations

import re
from pathlib import Path

import click

from tfspec.cli import cli
from tfspec.base.errors import EXIT_DIFF, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_OK

DOC = Path(__file__).parents[2] / "docs" / "cli.md"


def test_every_command_has_a_section_with_its_options() -> None:
    text = DOC.read_text(encoding="utf-8")
    sections = dict(zip(*[iter(re.split(r"^## tfspec (\w+)\n", text, flags=re.M)[1:])] * 2))
    for name, command in cli.commands.items():
        assert name in sections, f"docs/cli.md has no '## tfspec {name}' section"
        usage = sections[name].split("```")[1]
        for param in command.params:
            if isinstance(param, click.Option):
                assert any(opt in usage for opt in param.opts), f"tfspec {name}: {param.opts} not in the usage line"
                assert any(f"`{opt}" in text for opt in param.opts), f"tfspec {name}: {param.opts} is not explained"
            elif isinstance(param, click.Argument):
                assert param.human_readable_name.split("|")[0] in usage.upper() or param.name.upper() in usage


def test_exit_codes_are_listed() -> None:
    text = DOC.read_text(encoding="utf-8")
    table = text.split("## Exit codes", 1)[1].split("##", 1)[0]
    for code in (EXIT_OK, EXIT_DIFF, EXIT_ERROR, EXIT_INTERRUPTED):
        assert f"| {code} |" in table
