"""The ``tfspec`` command line: a thin layer over :mod:`tfspec.compiler` and :mod:`tfspec.runtime`.

Exit codes: 0 ok, 1 a difference or a failed gate (``--check``, ``run``), 2 an error in the input, 3 interrupted.
User errors are printed as one line each (``file:line:col: key.path: message``), never as a traceback.
Each command lives in ``tfspec/commands/``; TensorFlow is imported only inside runtime commands.
"""

from __future__ import annotations

import sys

import click

from tfspec.base.errors import EXIT_INTERRUPTED

from .commands import compile as compile_commands
from .commands import images as images_commands
from .commands import diff as diff_commands
from .commands import report as report_commands
from .commands import run as run_commands
from .commands import search as search_commands
from .commands import standards as standards_commands
from .commands.version import version_option
from .commands.watch import watch as watch_command

__all__ = ["main", "cli"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@version_option
def cli() -> None:
    """tfspec: compile a deployment spec into a runtime plan and deployment artifacts."""


for _command in (compile_commands.validate, compile_commands.build, compile_commands.plan,
                 compile_commands.schema, compile_commands.init, compile_commands.layers):
    cli.add_command(_command)
cli.add_command(run_commands.run)
cli.add_command(watch_command)
cli.add_command(report_commands.report)
cli.add_command(search_commands.search)
cli.add_command(standards_commands.explain)
cli.add_command(standards_commands.fleet)
cli.add_command(images_commands.images)
cli.add_command(diff_commands.diff)


def main() -> None:
    try:
        cli.main(prog_name="tfspec", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
