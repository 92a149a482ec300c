"""``tfspec diff``: a Markdown summary, for a pull request, of what a change to the specs does."""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from types import FrameType

import click

from tfspec.base.atomic import write_text_atomic
from tfspec.base.outputs import check_replaceable_file

from .common import env_option, handle_errors

__all__ = ["diff"]


def _is_diff_summary(head: bytes) -> bool:
    """The first line ``render_summary`` writes."""
    return head.startswith(b"## tfspec diff: ")


@contextlib.contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM (a cancelled CI job) stops the command like Ctrl-C, so the temporary folders are removed."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@click.command()
@click.argument("path", type=click.Path(path_type=Path), default=Path("."), required=False)
@click.option("--base", "base", required=True, metavar="REV",
              help="The revision to compare with: a branch, a tag, a commit (origin/main, HEAD^1).")
@click.option("--head", "head", default="HEAD", show_default=True, metavar="REV",
              help="The revision that holds the change.")
@env_option
@click.option("--base-dist", "base_dist", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run output root of the base (holding <name>/report.json): its metrics and gates are compared.")
@click.option("--head-dist", "head_dist", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Run output root of the head (holding <name>/report.json).")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the summary to this file: a new or empty file, or an earlier summary (default: standard output).")
@handle_errors
def diff(path: Path, base: str, head: str, env: str | None, base_dist: Path | None, head_dist: Path | None,
         out: Path | None) -> None:
    """Summarise in Markdown what the change from --base to --head does to the specs at PATH (a folder or one
    spec; default: the current folder): spec keys, generated files, images, plan steps that re-run, policy
    warnings, invalid specs, and metrics when both sides have a run report. Exit 0 whatever changed.

    Each revision is read from Git into a temporary folder; the working tree and the index are not touched."""
    from tfspec.io.diff_markdown import render_summary
    from tfspec.io.spec_diff import diff_revisions

    if out is not None:  # before any work: --out README.md is refused, nothing of the user's is replaced
        check_replaceable_file(out, "--out", "an earlier tfspec diff summary", _is_diff_summary)
    with _sigterm_interrupts():
        result = diff_revisions(path, base, head, env, base_dist, head_dist)
    text = render_summary(result)
    if out is None:  # UTF-8 whatever the locale: what GitHub reads from $GITHUB_STEP_SUMMARY
        sys.stdout.flush()
        sys.stdout.buffer.write(text.encode("utf-8"))
        sys.stdout.buffer.flush()
        return
    write_text_atomic(out, text)
    click.echo(f"wrote {out}: {len(result.specs)} specs, {result.count('changed')} changed, "
               f"{result.count('added')} added, {result.count('removed')} removed, {result.count('invalid')} invalid")
