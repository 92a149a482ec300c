"""Platform-standards commands: ``explain`` (where a value came from) and ``fleet`` (every spec of a folder)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tfspec.base.errors import TfspecError

from .common import env_option, handle_errors, json_option, spec_argument

__all__ = ["explain", "fleet"]


@click.command()
@spec_argument
@click.argument("key_path", metavar="KEY.PATH")
@env_option
@json_option
@handle_errors
def explain(spec: str, key_path: str, env: str | None, as_json: bool) -> None:
    """Show which file set KEY.PATH of SPEC (the spec, a base, an environment overlay) and what it overrode.

    KEY.PATH is written as in diagnostics (targets[1].kubernetes.replicas); a target may be named by its
    name instead of its index (targets.serving.kubernetes.replicas).
    """
    from tfspec.compiler.explain import explain as explain_value

    explanation = explain_value(spec, key_path, env)
    if as_json:
        click.echo(json.dumps(explanation.to_json(), indent=2, sort_keys=True, default=str))
    else:
        click.echo(explanation.format())


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@env_option
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Build output root the specs are compared with (default: build/ beside each spec, then "
                   "build/ here: where `tfspec build` writes).")
@click.option("--dist", "dist", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Root of the run outputs holding <name>/report.json (default: dist/ beside each spec, then "
                   "dist/ here: where `tfspec run` writes).")
@click.option("--html", "html", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Page to write (default: fleet.html in the current folder).")
@json_option
@handle_errors
def fleet(folder: Path, env: str | None, out: Path | None, dist: Path | None, html: Path | None, as_json: bool) -> None:
    """Write one HTML page (or, with --json, print JSON) of every spec below FOLDER: model, version, targets,
    image, GPUs, gates with their last measured values, policy warnings and which specs are stale."""
    from tfspec.io.fleet import collect_fleet
    from tfspec.io.fleet_html import write_fleet_html

    if not folder.is_dir():
        raise TfspecError(f"{folder}: not a folder")
    result = collect_fleet(folder, out, dist, env)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2, sort_keys=True))
        return
    page = write_fleet_html(result, html or Path("fleet.html"))
    click.echo(f"wrote {page}: {len(result.rows)} specs, {result.count(build='invalid')} invalid, "
               f"{result.count(build='stale')} stale, {result.count(build='not built')} not built, "
               f"{result.count(run='none')} never run, {sum(len(r.warnings) for r in result.rows)} policy warnings")
