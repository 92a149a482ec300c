"""``tfspec build FOLDER``: the printing side of :func:`tfspec.io.batch.build_folder`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from tfspec.io.batch import FolderBuild, build_folder

__all__ = ["build_folder_command", "summary_table"]

_STATUS_WORDS = {"built": "built", "cached": "unchanged", "current": "up to date", "stale": "STALE",
                 "invalid": "INVALID"}


def summary_table(result: FolderBuild) -> str:
    """One row per spec (spec, name, output, status, files) and a totals line."""
    rows = [("SPEC", "NAME", "OUTPUT", "STATUS", "FILES")]
    for o in result.outcomes:
        rows.append((o.path, o.name or "-", o.out_dir or "-", _STATUS_WORDS[o.status], str(o.files) if o.files else "-"))
    for orphan in result.orphans:
        rows.append(("-", "-", str(Path(result.out_root) / orphan), "ORPHAN" if result.check else "pruned", "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    lines = ["  ".join(cell.ljust(widths[i]) if i < 4 else cell.rjust(widths[i]) for i, cell in enumerate(row)).rstrip()
             for row in rows]
    counts = ", ".join(f"{result.count(status)} {_STATUS_WORDS[status].lower()}"
                       for status in (("current", "stale") if result.check else ("built", "cached")))
    total = len(result.outcomes)
    lines.append(f"{total} spec{'s' if total != 1 else ''}: {counts}, {result.count('invalid')} invalid"
                 + (f", {len(result.orphans)} orphaned output folder{'s' if len(result.orphans) != 1 else ''}"
                    if result.orphans else "")
                 + f" ({result.seconds:.2f} s)")
    return "\n".join(lines)


def build_folder_command(folder: str, env: str | None, out: Path | None, *, check: bool, jobs: int | None,
                         use_cache: bool, prune: bool, as_json: bool) -> int:
    """Run the folder build, print diagnostics, diffs and the summary; return the exit code."""
    out_root = out or Path("build")
    result = build_folder(folder, out_root, env, check=check, jobs=jobs, use_cache=use_cache, prune=prune)
    if as_json:
        click.echo(json.dumps({
            "ok": result.exit_code == 0,
            "exit_code": result.exit_code,
            "specs": [{"path": o.path, "status": o.status, "name": o.name, "out": o.out_dir, "files": o.files,
                       "diagnostics": [d.to_json() for d in o.diagnostics],
                       "warnings": [w.to_json() for w in o.warnings]} for o in result.outcomes],
            "orphans": [str(Path(result.out_root) / o) for o in result.orphans],
        }, indent=2))
        return result.exit_code
    diagnostics = result.diagnostics
    for outcome in result.outcomes:
        for warning in outcome.warnings:
            click.echo(warning.format(), err=True)
    for diagnostic in diagnostics:
        click.echo(diagnostic.format_with_excerpt(), err=True)
    if diagnostics:
        click.echo(f"{len(diagnostics)} problem{'s' if len(diagnostics) != 1 else ''} found", err=True)
    for outcome in result.outcomes:
        if outcome.diff:
            click.echo(outcome.diff, nl=False)
    click.echo(summary_table(result))
    if check and (result.count("stale") or result.orphans):
        command = f"tfspec build {folder}" + (f" -e {env}" if env else "") + (f" --out {out}" if out else "") + \
            (" --prune" if prune else "")
        click.echo(f"stale output: run `{command}` and commit the result", err=True)
    return result.exit_code
