"""The ``tfspec`` command line: a thin layer over :mod:`tfspec.compiler` and :mod:`tfspec.runtime`.

Exit codes: 0 ok, 1 a difference or a failed gate (``--check``, ``run``), 2 an error in the input, 3 interrupted.
User errors are printed as one line each (``file:line:col: key.path: message``), never as a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from tfspec.compiler.pipeline import CompileResult, compile_spec
from tfspec.compiler.write import diff_tree, write_tree
from tfspec.compiler.versions import TFSPEC_VERSION
from tfspec.spec.errors import EXIT_DIFF, EXIT_ERROR, EXIT_INTERRUPTED, Diagnostic, SpecError, TfspecError

__all__ = ["main", "cli"]

F = TypeVar("F", bound=Callable[..., Any])


def _print_diagnostics(diagnostics: list[Diagnostic] | tuple[Diagnostic, ...], as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps({"ok": False, "diagnostics": [d.to_json() for d in diagnostics]}, indent=2))
        return
    for diagnostic in diagnostics:
        click.echo(diagnostic.format_with_excerpt(), err=True)
    count = len(diagnostics)
    click.echo(f"{count} problem{'s' if count != 1 else ''} found", err=True)


def handle_errors(function: F) -> F:
    """Turn tfspec errors into their exit codes without a traceback."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return function(*args, **kwargs)
        except SpecError as error:
            _print_diagnostics(error.diagnostics, as_json)
            sys.exit(EXIT_ERROR)
        except TfspecError as error:
            if as_json:
                click.echo(json.dumps({"ok": False, "error": str(error)}))
            else:
                click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def _compiled(spec: str, env: str | None) -> CompileResult:
    result = compile_spec(spec, env=env)
    if not result.ok:
        raise SpecError(list(result.diagnostics))
    return result


def _default_out(result: CompileResult) -> Path:
    assert result.resolved is not None
    return Path("build") / result.resolved.spec.name


spec_argument = click.argument("spec", type=click.Path(dir_okay=True, path_type=str))
env_option = click.option("-e", "--env", "env", metavar="NAME", default=None, help="Apply the environment overlay NAME.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(TFSPEC_VERSION, prog_name="tfspec")
def cli() -> None:
    """tfspec: compile a deployment spec into a runtime plan and deployment artifacts."""


@cli.command()
@spec_argument
@env_option
@json_option
@handle_errors
def validate(spec: str, env: str | None, as_json: bool) -> None:
    """Check a spec; print every problem with file:line:col and key path (exit 2 on problems)."""
    result = _compiled(spec, env)
    if as_json:
        click.echo(json.dumps({"ok": True, "diagnostics": []}, indent=2))
    else:
        click.echo(f"{spec}: ok ({len(result.plan.steps)} steps, {len(result.files)} files)")


@cli.command()
@spec_argument
@env_option
@click.option("--out", "out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder (default: build/<name>/).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 with a diff when the output folder is stale.")
@json_option
@handle_errors
def build(spec: str, env: str | None, out: Path | None, check: bool, as_json: bool) -> None:
    """Validate a spec and write plan.json, manifest.json and every target's files."""
    result = _compiled(spec, env)
    out_dir = out or _default_out(result)
    if check:
        diff = diff_tree(out_dir, result.files)
        if diff:
            click.echo(diff, nl=False)
            click.echo(f"{out_dir}: stale; run `tfspec build {spec}" + (f" -e {env}" if env else "") +
                       (f" --out {out}" if out else "") + "` and commit the result", err=True)
            sys.exit(EXIT_DIFF)
        click.echo(f"{out_dir}: up to date")
        return
    write_tree(out_dir, result.files)
    if as_json:
        click.echo(json.dumps({"ok": True, "out": str(out_dir), "files": sorted(result.files)}, indent=2))
    else:
        click.echo(f"wrote {len(result.files) + 1} files to {out_dir}")


@cli.command()
@spec_argument
@env_option
@json_option
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Step cache to check (default: .tfspec/cache next to the spec).")
@handle_errors
def plan(spec: str, env: str | None, as_json: bool, cache_dir: Path | None) -> None:
    """Show the steps `tfspec run` would execute, their dependencies, fingerprints and cache state."""
    from tfspec.runtime.cache import StepCache, default_cache_dir

    result = _compiled(spec, env)
    assert result.plan is not None
    cache = StepCache(cache_dir or default_cache_dir(Path(spec)))
    rows = [(s.id, s.kind, ", ".join(s.inputs) or "-", s.fingerprint[:12],
             "render" if s.kind == "render" else ("cached" if cache.has(s.fingerprint) else "to run"))
            for s in result.plan.steps]
    if as_json:
        data = result.plan.to_json()
        for step, row in zip(data["steps"], rows):
            step["cached"] = row[4] == "cached"
        click.echo(json.dumps(data, indent=2, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.plan.name} v{result.plan.version}", show_lines=False)
    for column in ("step", "kind", "inputs", "fingerprint", "state"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    Console(width=140).print(table)


@cli.command()
@handle_errors
def schema() -> None:
    """Print the JSON Schema (2020-12) of the spec."""
    from tfspec.spec.schema import spec_json_schema_text

    click.echo(spec_json_schema_text(), nl=False)


@cli.command()
@click.argument("name")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=Path("deploy.yaml"),
              help="File to write (default: deploy.yaml).")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
@handle_errors
def init(name: str, out: Path, force: bool) -> None:
    """Write a commented starter spec for model NAME that validates."""
    from tfspec.compiler.scaffold import scaffold_spec

    text = scaffold_spec(name)
    if out.exists() and not force:
        raise TfspecError(f"{out} exists; use --force to overwrite it")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    click.echo(f"wrote {out}; next: tfspec build {out}")


def main() -> None:
    try:
        cli.main(prog_name="tfspec", standalone_mode=True)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
