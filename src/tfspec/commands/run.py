"""Runtime command: ``run`` (imports TensorFlow, through :mod:`tfspec.runtime`)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from tfspec.base.errors import EXIT_DIFF, TfspecError

from .common import check_cache_dir, compiled, env_option, handle_errors, json_option, require_runtime

if TYPE_CHECKING:
    from tfspec.runtime.executor import RunInputs
    from tfspec.runtime.remote_cache import RemoteStore

__all__ = ["run"]


@click.command()
@click.argument("spec", type=click.Path(dir_okay=True, path_type=str), required=False)
@env_option
@click.option("--plan", "plan_file", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Run this plan.json (from tfspec build) instead of compiling SPEC: nothing but the plan, the "
                   "files rendered beside it and the inputs under its root are read.")
@click.option("--step", "step_id", metavar="ID", default=None,
              help="With --plan: run only this step, its inputs taken from the cache (what a cluster pod runs).")
@click.option("--root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="With --plan: the folder relative input paths are resolved against (default: the plan's root).")
@click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Step cache (default: .tfspec/cache next to the spec).")
@click.option("--dist-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Output folder for the artifacts (default: dist/<name>/).")
@click.option("--quiet", is_flag=True, help="No progress bars (also when CI=true).")
@click.option("--force", is_flag=True, help="Run every step, even those in the cache.")
@click.option("--verbose", is_flag=True,
              help="Show TensorFlow's own messages (by default they go to logs/tensorflow.log in the step cache).")
@click.option("--worker", is_flag=True,
              help="Be one worker of a multi_worker_mirrored job: train only, cluster from TF_CONFIG or "
                   "JOB_COMPLETION_INDEX + TFSPEC_WORKER_HOSTS; the chief writes the model to the cache and "
                   "--dist-dir, the other workers to temporary paths.")
@click.option("--startup-timeout", type=click.FloatRange(min=1), default=600.0, show_default=True,
              envvar="TFSPEC_STARTUP_TIMEOUT", metavar="SECONDS",
              help="--worker: longest wait for every worker to join the cluster.")
@click.option("--peer-timeout", type=click.FloatRange(min=1), default=10.0, show_default=True,
              envvar="TFSPEC_PEER_TIMEOUT", metavar="SECONDS",
              help="--worker: heartbeat silence after which a peer counts as dead and training fails.")
@click.option("--store", "store_url", metavar="s3://BUCKET/PREFIX", default=None, envvar="TFSPEC_STORE",
              help="With --plan: the step cache is this bucket prefix (a workflow's pods share nothing else): "
                   "--step downloads its inputs' entries, skips a step already stored, uploads its entry; "
                   "--publish uploads the dist. Only plan.json is read (not the rendered files).")
@click.option("--store-endpoint", metavar="URL", default=None, envvar="TFSPEC_STORE_ENDPOINT",
              help="With --store: an S3-compatible endpoint (MinIO, Ceph, ...); default AWS.")
@click.option("--store-region", metavar="REGION", default=None, envvar="TFSPEC_STORE_REGION",
              help="With --store: the bucket's region.")
@click.option("--store-key-env", metavar="NAME", default="AWS_ACCESS_KEY_ID", show_default=True,
              help="With --store: the variable that holds the access key id (its name, never the value).")
@click.option("--store-secret-env", metavar="NAME", default="AWS_SECRET_ACCESS_KEY", show_default=True,
              help="With --store: the variable that holds the secret access key.")
@click.option("--publish", is_flag=True,
              help="With --plan and --store: assemble the dist from the stored entries (nothing runs) and "
                   "upload it to <store>/dist/<name>/.")
@click.option("--upload-only", is_flag=True,
              help="With --store and --step: the step ran elsewhere into --cache-dir (a training job's volume): "
                   "upload its entry, never run it.")
@click.option("--probe", is_flag=True,
              help="With --store and --step: print `stored` or `missing` for the step's entry; nothing runs.")
@json_option
@handle_errors
def run(spec: str | None, env: str | None, plan_file: Path | None, step_id: str | None, root: Path | None,
        cache_dir: Path | None, dist_dir: Path | None, quiet: bool, force: bool, verbose: bool, worker: bool,
        startup_timeout: float, peer_timeout: float, store_url: str | None, store_endpoint: str | None,
        store_region: str | None, store_key_env: str, store_secret_env: str, publish: bool, upload_only: bool,
        probe: bool, as_json: bool) -> None:
    """Train, compress, export, convert, verify and bundle: execute the spec's plan with TensorFlow.

    SPEC is compiled first; or give --plan build/<name>/plan.json. Exit 1 when a target misses a quality gate
    (after every step ran), 2 on an input error.
    """
    if (spec is None) == (plan_file is None):
        raise click.UsageError("give a SPEC or --plan PLAN_FILE (one of them)")
    if plan_file is not None and env is not None:
        raise click.UsageError("--env does not apply to --plan (the plan was built for one environment)")
    if plan_file is None and (step_id is not None or root is not None):
        raise click.UsageError("--step and --root apply to --plan")
    if step_id is not None and dist_dir is not None:
        raise click.UsageError("--dist-dir does not apply to --step (one step writes only its cache entry)")
    require_runtime("run")  # every mode runs steps (or reaches the store with boto3): one line, not a traceback
    check_cache_dir(cache_dir, spec if spec is not None else str(plan_file))
    if store_url is not None or publish or upload_only or probe:
        if plan_file is None or worker or dist_dir is not None or (step_id is None) == (not publish) \
                or store_url is None:
            raise click.UsageError("--store goes with --plan and either --step ID or --publish (no --worker, "
                                   "no --dist-dir)")
        if (upload_only or probe) and (step_id is None or (upload_only and probe)):
            raise click.UsageError("--upload-only and --probe go with --store and --step (one of them)")
        if upload_only and cache_dir is None:
            raise click.UsageError("--upload-only needs --cache-dir (where the step's entry is)")
        from tfspec.runtime.remote_cache import RemoteStore
        from tfspec.spec.data import looks_like_aws_key_id

        for option, name in (("--store-key-env", store_key_env), ("--store-secret-env", store_secret_env)):
            if looks_like_aws_key_id(name):  # never echoed: it is a credential
                raise TfspecError(f"{option} takes the NAME of the variable that holds the key, and this is an AWS "
                                  "access key id: name the variable (AWS_ACCESS_KEY_ID), and rotate the key")
        location = RemoteStore(store_url, store_endpoint, store_region, store_key_env, store_secret_env)
        if probe:
            _probe(plan_file, root, step_id, location)
            return
        _run_with_store(plan_file, root, step_id, location, cache_dir, quiet, force, verbose, upload_only, as_json)
        return
    if worker:
        if force:
            raise click.UsageError("--force does not apply to --worker (a worker trains unless the shared cache "
                                   "already holds the trained model)")
        _run_worker(_inputs(spec, env, plan_file, root), cache_dir, dist_dir, quiet, startup_timeout, peer_timeout,
                    as_json)
        return
    inputs = _inputs(spec, env, plan_file, root)  # input errors before TensorFlow is imported
    from tfspec.runtime.cache import default_cache_dir
    from tfspec.runtime.errors import StepFailed
    from tfspec.runtime.tf import TENSORFLOW_LOG

    # beside the spec as the user named it (a relative path stays relative), else under the plan's root
    base = Path(spec) if spec is not None else inputs.root
    tf_log = None if verbose else (cache_dir or default_cache_dir(base)).parent / TENSORFLOW_LOG
    try:
        missed = _run_quietly(inputs, step_id, tf_log, cache_dir, dist_dir, quiet, force, as_json)
    except StepFailed:  # not a spec problem: TensorFlow may have said why
        if tf_log is not None and tf_log.is_file():
            click.echo(f"TensorFlow's messages: {tf_log}", err=True)
        raise
    if tf_log is not None and tf_log.is_file() and not as_json:
        click.echo(f"TensorFlow's messages: {tf_log} (--verbose shows them)")
    if missed:
        sys.exit(EXIT_DIFF)


def _probe(plan_file: Path, root: Path | None, step_id: str, location: RemoteStore) -> None:
    """``--probe``: one word on stdout, what an Argo ``when`` condition reads."""
    from tfspec.runtime.remote_cache import open_remote, probe
    from tfspec.running import run_inputs_from_plan_file

    inputs = run_inputs_from_plan_file(plan_file, root, rendered_files=False)
    click.echo("stored" if probe(inputs, step_id, open_remote(location)) else "missing")


def _run_with_store(plan_file: Path, root: Path | None, step_id: str | None, location: RemoteStore,
                    cache_dir: Path | None, quiet: bool, force: bool, verbose: bool, upload_only: bool,
                    as_json: bool) -> None:
    """``--store``: one step (``step_id``) or the publish step against the remote cache; the local cache is
    scratch (``--cache-dir``, else a temporary folder removed at the end)."""
    import shutil
    import tempfile

    from tfspec.running import run_inputs_from_plan_file

    inputs = run_inputs_from_plan_file(plan_file, root, rendered_files=False)
    from tfspec.runtime.fit import is_ci
    from tfspec.runtime.remote_cache import open_remote, publish, run_step_with_store
    from tfspec.runtime.tf import TENSORFLOW_LOG, tensorflow_output

    store = open_remote(location)  # a bad URL, credentials or bucket: one line before anything runs
    scratch = None if cache_dir is not None else Path(tempfile.mkdtemp(prefix="tfspec-store-cache-"))
    local = cache_dir if cache_dir is not None else scratch / "cache"
    tf_log = None if verbose else local.parent / TENSORFLOW_LOG
    try:
        with tensorflow_output(tf_log) as stderr:
            log = (lambda line: print(line, file=stderr, flush=True)) if as_json else click.echo
            quiet = quiet or is_ci() or as_json
            if step_id is not None:
                outcome = run_step_with_store(inputs, step_id, store, local, quiet=quiet, force=force,
                                              upload_only=upload_only, log=log)
                result = {"ok": True, "step": step_id, "status": outcome.status, "url": outcome.url}
            else:
                report, url = publish(inputs, store, local, quiet=quiet, log=log)
                result = {"ok": report.passed, "url": url, "report": report.report}
    except BaseException:
        if tf_log is not None and tf_log.is_file():  # a pod's log is all there is: show TensorFlow's say
            click.echo(tf_log.read_text("utf-8", errors="replace")[-4000:], err=True)
        raise
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if as_json:
        click.echo(json.dumps(result, indent=2, sort_keys=True))
    if step_id is None:
        from tfspec.runtime.report import missed_gates

        if missed_gates(report.report):
            sys.exit(EXIT_DIFF)


def _inputs(spec: str | None, env: str | None, plan_file: Path | None, root: Path | None) -> RunInputs:
    from tfspec.running import run_inputs_from_compiled, run_inputs_from_plan_file

    if plan_file is not None:
        return run_inputs_from_plan_file(plan_file, root)
    assert spec is not None
    return run_inputs_from_compiled(compiled(spec, env))


def _run_quietly(inputs: RunInputs, step_id: str | None, tf_log: Path | None, cache_dir: Path | None,
                 dist_dir: Path | None, quiet: bool, force: bool, as_json: bool) -> list[tuple[str, str, float, float]]:
    """Run the plan (or its step ``step_id``) with TensorFlow's own output in ``tf_log``; print the outcome;
    return the missed gates."""
    from tfspec.runtime.executor import run_plan, run_step
    from tfspec.runtime.fit import is_ci
    from tfspec.runtime.report import missed_gates
    from tfspec.runtime.report_html import REPORT_HTML
    from tfspec.runtime.tf import tensorflow_output

    with tensorflow_output(tf_log) as stderr:
        log = (lambda line: print(line, file=stderr, flush=True)) if as_json else click.echo
        quiet = quiet or is_ci() or as_json
        if step_id is not None:
            entry = run_step(inputs, step_id, cache_dir=cache_dir, quiet=quiet, force=force, log=log)
            if as_json:
                click.echo(json.dumps({"ok": True, "step": step_id, "entry": str(entry)}, indent=2, sort_keys=True))
            else:
                click.echo(f"{step_id}: {entry}")
            return []
        outcome = run_plan(inputs, cache_dir=cache_dir, dist_dir=dist_dir, quiet=quiet, force=force, log=log)
        report = outcome.report
        if as_json:
            click.echo(json.dumps({"ok": outcome.passed, "dist": str(outcome.dist_dir), "ran": list(outcome.ran),
                                   "cached": list(outcome.cached), "report": report}, indent=2, sort_keys=True))
        else:
            _print_targets(report)
            click.echo(f"report: {outcome.dist_dir / REPORT_HTML}")
            click.echo(f"dist:   {outcome.dist_dir}/")
        missed = missed_gates(report)
        if missed and not as_json:
            _print_missed(missed, stderr)
    return missed


def _run_worker(inputs: RunInputs, cache_dir: Path | None, dist_dir: Path | None, quiet: bool,
                startup_timeout: float, peer_timeout: float, as_json: bool) -> None:
    from tfspec.runtime.distribute import PeerTimeouts
    from tfspec.runtime.fit import is_ci
    from tfspec.runtime.worker import run_worker

    log = (lambda line: click.echo(line, err=True)) if as_json else click.echo
    outcome = run_worker(inputs, cache_dir=cache_dir, dist_dir=dist_dir, quiet=quiet or is_ci() or as_json,
                         timeouts=PeerTimeouts(startup=startup_timeout, heartbeat=peer_timeout), log=log)
    if as_json:
        click.echo(json.dumps({"ok": True, **outcome.to_json()}, indent=2, sort_keys=True))


def _print_targets(report: dict) -> None:
    """Every stage on the test split: the trained Keras model, each compression stage, each target.

    ``drop`` is always measured from the trained model (positive = worse; for an error metric such as
    mae it is the increase), so what compression cost is visible and gated."""
    from rich.console import Console
    from rich.table import Table

    baseline = report["baseline"]
    metric = report.get("metric") or baseline.get("metric") or "accuracy"
    change = "increase" if metric == "mae" else "drop"
    table = Table(title=f"{metric} on the test split ({change} from the trained model)")
    for column in ("stage", "kind", metric, change, "size", "gzip", "p50 ms", "p95 ms", "gates"):
        table.add_column(column)
    stages = report.get("stages") or []
    naive = report.get("naive_baseline")
    if naive:  # what ignoring the input scores: every model must beat it (training.naive_baseline)
        table.add_row("naive", "baseline", f"{naive['value']:.4f}", "-", "-", "-", "-", "-", "-")
    missed_models = {c["model"] for c in report.get("model_checks") or [] if not c["passed"]}
    for stage in stages:
        final = stage is stages[-1]
        latency = (baseline.get("latency_ms") or {}) if final else {}
        table.add_row(stage["label"], "keras" if stage["kind"] == "train" else stage["kind"], f"{stage['value']:.4f}",
                      "-" if stage["kind"] == "train" else f"{stage['change_from_trained']:+.4f}",
                      _kib(stage["size_bytes"]), _kib(stage.get("gzip_bytes")), _ms(latency.get("p50")),
                      _ms(latency.get("p95")), "[red]MISSED[/red]" if f"{stage['label']} model" in missed_models else "-")
    if not stages and baseline.get("value") is not None:
        latency = baseline.get("latency_ms") or {}
        table.add_row("keras", "baseline", f"{baseline['value']:.4f}", "-",
                      _kib(baseline.get("size_bytes")), "-", _ms(latency.get("p50")), _ms(latency.get("p95")), "-")
    for name, target in report["targets"].items():
        m = target["metrics"]
        value = m.get("value", m.get("accuracy"))
        drop = m.get("drop_from_trained", m.get("accuracy_drop"))
        table.add_row(name, target["kind"], f"{value:.4f}", f"{drop:+.4f}", _kib(m["size_bytes"]),
                      _kib(m.get("gzip_bytes")), _ms(m["latency_ms_p50"]), _ms(m["latency_ms_p95"]),
                      "passed" if target["passed"] else "[red]MISSED[/red]")
    console = Console(width=120)
    console.print(table)
    compared = _released_table(report, metric)
    if compared is not None:
        console.print(compared)
    for line in report.get("warnings") or []:
        console.print(f"[bold red]WARNING:[/bold red] {line}")


def _released_table(report: dict, metric: str) -> Any:
    """Each target against its released model (``targets[].released``), both measured in this run on the same
    test split: ``worse by`` is positive when the candidate is worse; None when no target names one."""
    from rich.table import Table

    rows = [(name, target, target["released"]) for name, target in report["targets"].items() if target.get("released")]
    if not rows:
        return None
    table = Table(title=f"against the released model ({metric} on the same test split; worse by > 0: the candidate "
                        "is worse)")
    table.add_column("target")
    table.add_column("released model", overflow="fold")  # where it is: folded, never cut
    for column in (f"released {metric}", f"candidate {metric}", "worse by", "size", "p95", "vs_released"):
        table.add_column(column)
    for name, target, released in rows:
        gates = [g for g in target["gates"] if g["name"].startswith("vs_released.")]
        verdict = "-" if not gates else ("passed" if all(g["passed"] for g in gates) else "[red]MISSED[/red]")
        if not released.get("found"):
            value = target["metrics"].get("value", target["metrics"].get("accuracy"))
            table.add_row(name, "none found: first release", "-", f"{value:.4f}", "-", "-", "-", "-")
            continue
        change = released["change"]
        table.add_row(name, released["description"], f"{released['metrics']['value']:.4f}",
                      f"{released['candidate']['value']:.4f}",
                      f"{change['worse_by']:+.4f}", f"{change['size_growth_percent']:+.1f} %",
                      f"{change['latency_growth_percent']:+.1f} %", verdict)
    return table


def _print_missed(missed: list[tuple[str, str, float, float]], stderr: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title="missed gates")
    for column in ("target", "gate", "limit", "value"):
        table.add_column(column)
    for target, gate, limit, value in missed:
        table.add_row(target, gate, f"{limit:g}", f"{value:.4g}")
    Console(width=120, file=stderr).print(table)
    print(f"{len(missed)} gate{'s' if len(missed) != 1 else ''} missed", file=stderr, flush=True)


def _kib(size: int | None) -> str:
    return "-" if size is None else f"{size / 1024:.1f} KiB"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"
