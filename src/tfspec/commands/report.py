"""``tfspec report``: (re)write ``report.html`` from the last run's ``report.json`` (no TensorFlow)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from .common import compiled, env_option, handle_errors, require_runtime, spec_argument

if TYPE_CHECKING:
    from tfspec.compiler.pipeline import CompileResult

__all__ = ["report", "default_dist"]


def default_dist(result: CompileResult) -> Path:
    """``dist/<name>/``, or ``dist/<name>-<env>/`` with an environment overlay (where ``tfspec run`` writes)."""
    assert result.plan is not None
    return Path("dist") / result.plan.spec.dist_name


@click.command()
@spec_argument
@env_option
@click.option("--dist-dir", "dist_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the run to report on (default: dist/<name>/, dist/<name>-<env>/ with -e).")
@handle_errors
def report(spec: str, env: str | None, dist_dir: Path | None) -> None:
    """Write report.html (charts, gates, plan graph) next to the last run's report.json."""
    require_runtime("report")
    from tfspec.runtime.report_html import REPORT_JSON, load_report, write_report_html

    # report rewrites a page: the spec's build warnings are `build`'s and `run`'s to print
    result = compiled(spec, env, quiet_warnings=True)
    dist = dist_dir or default_dist(result)
    data = load_report(dist / REPORT_JSON)
    path = write_report_html(dist, data)
    recorded = str(data["spec"].get("sha256", ""))
    assert result.plan is not None
    current = result.plan.spec_sha256
    if recorded and recorded != current:
        click.echo(f"note: {dist / REPORT_JSON} is from an earlier version of {spec} (sha256 {recorded[:12]}, "
                   f"now {current[:12]}); run `tfspec run {spec}` to refresh it", err=True)
    click.echo(f"wrote {path}")
