"""``tfspec watch``: recompile a spec (or every spec below a folder) on save."""

from __future__ import annotations

import signal
from pathlib import Path

import click

from .common import env_option, handle_errors

__all__ = ["watch"]


@click.command()
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@env_option
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder of a spec (default: build/<name>/), or output root of a folder (default: build/).")
@click.option("--debounce-ms", type=click.IntRange(min=0, max=10_000), default=50, show_default=True,
              help="Quiet time that ends a burst of file events (an editor's save) before rebuilding.")
@click.option("-j", "--jobs", type=click.IntRange(min=1), default=None,
              help="Worker processes of the initial folder build (default: the number of CPUs).")
@handle_errors
def watch(path: Path, env: str | None, out: Path | None, debounce_ms: int, jobs: int | None) -> None:
    """Build PATH, then rebuild what each save affects; a broken spec keeps its last good output.

    Prints one line per rebuild (files changed, added, removed) or the diagnostics. Ctrl-C stops (exit 0).
    """
    from tfspec.io.watch import SpecWatcher  # watchdog only when watching

    watcher = SpecWatcher(path, out, env, echo=click.echo, echo_error=lambda line: click.echo(line, err=True),
                          debounce=debounce_ms / 1000, jobs=jobs)

    def request_stop(signum: int, frame: object) -> None:
        watcher.stop()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        watcher.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("stopped watching")
