"""Helpers shared by the CLI commands: error handling, exit codes, common options."""

from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from tfspec.base.errors import EXIT_ERROR, EXIT_INTERRUPTED, Diagnostic, SpecError, TfspecError

if TYPE_CHECKING:
    from tfspec.compiler.pipeline import CompileResult

__all__ = ["handle_errors", "print_diagnostics", "print_warnings", "compiled", "default_out", "spec_argument", "env_option",
           "json_option", "require_runtime", "RUNTIME_MODULES", "spec_protected", "check_cache_dir"]

# What the `runtime` extra brings, by import name, for each command that needs it.
RUNTIME_MODULES: dict[str, tuple[str, ...]] = {
    "run": ("numpy", "tensorflow", "tf_keras", "tensorflow_model_optimization", "tensorflow_serving",
            "ai_edge_litert", "sklearn", "PIL", "matplotlib"),
    "report": ("numpy", "matplotlib"),
}

F = TypeVar("F", bound=Callable[..., Any])


def print_diagnostics(diagnostics: list[Diagnostic] | tuple[Diagnostic, ...], as_json: bool,
                      warnings: list[Diagnostic] | tuple[Diagnostic, ...] = ()) -> None:
    """Diagnostics one per line on stderr (YAML syntax errors with the offending line), or as JSON on stdout;
    the warnings found before the errors too (in JSON: ``warnings``, as when there are no errors)."""
    if as_json:
        click.echo(json.dumps({"ok": False, "diagnostics": [d.to_json() for d in diagnostics],
                               "warnings": [w.to_json() for w in warnings]}, indent=2))
        return
    for diagnostic in diagnostics:
        click.echo(diagnostic.format_with_excerpt(), err=True)
    print_warnings(warnings)
    count = len(diagnostics)
    click.echo(f"{count} problem{'s' if count != 1 else ''} found"
               + (f", and {len(warnings)} warning{'s' if len(warnings) != 1 else ''}" if warnings else ""), err=True)


def handle_errors(function: F) -> F:
    """Turn tfspec errors into their exit codes (2 input error, 3 interrupted) without a traceback."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        as_json = bool(kwargs.get("as_json"))
        try:
            return function(*args, **kwargs)
        except SpecError as error:
            print_diagnostics(error.diagnostics, as_json, error.warnings)
            sys.exit(EXIT_ERROR)
        except TfspecError as error:
            if os.environ.get("TFSPEC_DEBUG") and error.__cause__ is not None:
                # the traceback of what went wrong inside; the exit code stays the error's own
                traceback.print_exception(error.__cause__, file=sys.stderr)
            if as_json:
                click.echo(json.dumps({"ok": False, "error": str(error)}))
            else:
                click.echo(f"error: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


def compiled(spec: str, env: str | None, data: bytes | None = None, *, quiet_warnings: bool = False) -> CompileResult:
    """Compile ``spec`` (from ``data``, its bytes, when the caller read them) or raise :class:`SpecError`
    with every diagnostic; policy warnings go to stderr."""
    from tfspec.compiler.pipeline import compile_spec  # the spec models: only for a command that compiles

    result = compile_spec(spec, env=env, data=data)
    if not result.ok:
        raise SpecError(list(result.diagnostics), result.warnings)
    if not quiet_warnings:
        print_warnings(result.warnings)
    return result


def print_warnings(warnings: tuple[Diagnostic, ...] | list[Diagnostic]) -> None:
    """Policy warnings, one line each, on stderr (they do not change the exit code)."""
    for warning in warnings:
        click.echo(warning.format(), err=True)


def default_out(result: CompileResult) -> Path:
    """``build/<name>/``, or ``build/<name>-<env>/`` with an environment overlay."""
    assert result.plan is not None
    return Path("build") / result.plan.spec.dist_name


spec_argument = click.argument("spec", type=click.Path(dir_okay=True, path_type=str))
env_option = click.option("-e", "--env", "env", metavar="NAME", default=None, help="Apply the environment overlay NAME.")
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def spec_protected(spec: str | None) -> list[tuple[str | Path, str]]:
    """Paths no output folder or cache may be or contain: the current folder, the spec and its project root."""
    from tfspec.compiler.project import find_project_file
    from tfspec.base.outputs import protected_paths

    if spec is None:
        return protected_paths()
    return protected_paths([spec], [find_project_file(spec)])


def check_cache_dir(cache_dir: Path | None, spec: str | None) -> None:
    """A ``--cache-dir`` must be a step cache, empty or new (tfspec writes and deletes entries in it)."""
    if cache_dir is not None:
        from tfspec.base.outputs import check_cache_folder

        check_cache_folder(cache_dir, spec_protected(spec))


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require_runtime(command: str) -> None:
    """Raise a one-line :class:`TfspecError` (exit 2) when the ``runtime`` extra ``command`` needs is missing
    (the compiler alone, ``pip install tfspec``, has no numpy or TensorFlow)."""
    missing = [module for module in RUNTIME_MODULES[command] if not _importable(module)]
    if missing:
        raise TfspecError(f"tfspec {command} needs the runtime extra, and {', '.join(missing)} "
                          f"{'is' if len(missing) == 1 else 'are'} not installed: pip install 'tfspec[runtime]'")
