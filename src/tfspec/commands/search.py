"""``tfspec search``: the spec's Optuna study (imports TensorFlow and Optuna, through :mod:`tfspec.search`)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from tfspec.base.errors import EXIT_DIFF, TfspecError

from .common import check_cache_dir, compiled, handle_errors, require_runtime, spec_argument, spec_protected

__all__ = ["search"]


@click.command()
@spec_argument
@click.option("--storage", metavar="URL", envvar="TFSPEC_SEARCH_STORAGE", default=None,
              help="Study database: sqlite:///path.db, postgresql://..., mysql+pymysql://... "
                   "(default: .tfspec/search.db beside the spec).")
@click.option("--trials", type=click.IntRange(min=1, max=10_000), default=None,
              help="Trials in the study (overrides search.budget.trials).")
@click.option("--minutes", type=click.FloatRange(min=0, min_open=True), default=None,
              help="Wall time of this process (overrides search.budget.minutes).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Step cache shared by the trials (default: .tfspec/cache next to the spec).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder for report.html and search.json (default: dist/<name>-search/).")
@click.option("--verbose", is_flag=True,
              help="Show TensorFlow's own messages (by default they go to logs/tensorflow.log in the step cache).")
@handle_errors
def search(spec: str, storage: str | None, trials: int | None, minutes: float | None, cache_dir: Path | None,
           out_dir: Path | None, verbose: bool) -> None:
    """Search the values named in the spec's `search` section with Optuna; write the best configuration
    within the gates as the environment overlay `searched` (<spec>.searched.env.yaml).

    Exit 1 when no trial met the gates, 2 on an input error (before any trial runs).
    """
    from tfspec.base.outputs import Producer, check_replaceable
    from tfspec.base.atomic import write_tree

    result = compiled(spec, None)  # every problem of the spec and its search section, before Optuna loads
    assert result.resolved is not None
    # where the results go, checked before any trial runs: a user's folder is never written over
    out = out_dir if out_dir is not None else Path("dist") / f"{result.resolved.spec.name}-search"
    producer = Producer("search", result.resolved.spec.name)
    protected = tuple(spec_protected(spec))
    check_replaceable(out, producer, protected, option="--out")
    check_cache_dir(cache_dir, spec)
    require_runtime("run")  # trials are runs
    try:
        from tfspec.search.driver import run_search
        from tfspec.search.report import output_files, write_overlay
    except ModuleNotFoundError as error:
        if error.name != "optuna":
            raise
        raise TfspecError("tfspec search needs Optuna: pip install 'tfspec[search]'") from None
    from tfspec.runtime.cache import default_cache_dir
    from tfspec.runtime.tf import TENSORFLOW_LOG, tensorflow_output

    tf_log = None if verbose else (cache_dir or default_cache_dir(Path(result.path))).parent / TENSORFLOW_LOG
    with tensorflow_output(tf_log):
        outcome = run_search(spec, storage=storage, cache_dir=cache_dir, trials=trials, minutes=minutes,
                             log=click.echo)
    write_tree(out, output_files(outcome), producer, protected=protected, option="--out")
    overlay = write_overlay(outcome, Path(spec))
    click.echo(f"wrote {out / 'report.html'}")
    if overlay is None:
        click.echo("no trial met the gates: no overlay written", err=True)
        sys.exit(EXIT_DIFF)
    chosen = outcome.chosen
    assert chosen is not None
    click.echo(f"chosen: trial {chosen.number} ("
               + ", ".join(f"{k} {v:.4g}" for k, v in sorted(chosen.metrics.items())) + f"); wrote {overlay}")
    click.echo(f"review it, then: tfspec build {spec} -e searched")
