"""Run a compiled plan: each step from the cache when its fingerprint is there, otherwise for real.

A step runs into a scratch folder that becomes its cache entry only when it returns (``StepCache``), so
a failed step never enters the cache and earlier entries stay. When every step is done the dist tree
(rendered files, bundled binaries, ``report.json``, ``manifest.json``) replaces the old one in one swap.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import json
import os
import shutil
import tempfile
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tfspec.base.atomic import recover_interrupted_swap, remove_dead_staging, staging_prefix, swap_into_place
from tfspec.base.digests import file_sha256
from tfspec.base.outputs import (MANIFEST, OutputPathError, Producer, Protected, check_output_path, check_replaceable,
                                 manifest_json)
from tfspec.plan import MODEL_STEP_KINDS, PLAN_FILE, Plan, Step, step_kind

from .cache import StepCache, default_cache_dir
from .context import METRICS_FILE, StepContext
from .errors import Locator, StepError, StepFailed, reported_as_step_errors
from .report import REPORT_FILE, build_report
from .report_html import REPORT_HTML, write_report_html
from .tf import import_tf, reset_random_state, tf_loaded

__all__ = ["RunInputs", "RunReport", "StepFailed", "run_plan", "run_step", "default_dist_dir", "step_module",
           "CHECKPOINTS_DIR", "dist_producer", "dist_protected", "check_dist_dir"]

CHECKPOINTS_DIR = "checkpoints"
# tfspec 0.1 named dist staging folders without their owner (``.<name>.<8 random>.tmp``): no run can tell a
# live one from a dead one, but none stays for an hour (the folder is filled and swapped in seconds)
_LEGACY_STAGING_AGE_S = 3600


@dataclasses.dataclass(frozen=True)
class RunInputs:
    """Everything ``tfspec run`` needs: the plan and what it points at, nothing of the spec.

    Attributes:
        plan: the plan.
        root: the folder relative input paths in step params are resolved against.
        rendered: the files ``tfspec build`` rendered (relative path → text), laid into the dist folder.
        locate: key path → ``file:line:col`` of that key in the spec, for errors (None: messages without).
    """

    plan: Plan
    root: Path
    rendered: Mapping[str, str]
    locate: Locator | None = None


@dataclasses.dataclass(frozen=True)
class RunReport:
    """The outcome of :func:`run_plan`.

    Attributes:
        report: the ``report.json`` content.
        ran: ids of the steps executed in this run.
        cached: ids of the steps taken from the cache.
        dist_dir: where the dist tree was written.
        cache_dir: the step cache used.
    """

    report: dict[str, Any]
    ran: tuple[str, ...]
    cached: tuple[str, ...]
    dist_dir: Path
    cache_dir: Path

    @property
    def passed(self) -> bool:
        return bool(self.report["passed"])


def default_dist_dir(plan: Plan) -> Path:
    """``dist/<name>/`` (``dist/<name>-<env>/`` with an overlay), relative to the working directory."""
    return Path("dist") / plan.spec.dist_name


def dist_producer(plan: Plan) -> Producer:
    """What a dist folder's ``manifest.json`` records: a ``dist`` output of the plan's spec."""
    return Producer("dist", plan.name, plan.environment)


def dist_protected(run: RunInputs) -> tuple[Protected, ...]:
    """Paths a dist folder must not be or contain: the current folder and the folder of the spec and its inputs."""
    return ((os.getcwd(), "the current folder"), (Path(run.root), "the spec's folder (the plan's root)"))


def check_dist_dir(run: RunInputs, dist_dir: Path) -> None:
    """Raise :class:`OutputPathError` unless ``dist_dir`` may be replaced by this run's dist: checked before
    anything runs, so a wrong ``--dist-dir`` is refused at once, not after hours of training."""
    check_replaceable(dist_dir, dist_producer(run.plan), dist_protected(run), option="--dist-dir")


def step_module(step: Step, plan: Plan) -> Any:
    """The module ``tfspec.runtime.steps.<kind>``; a clear error when this runtime lacks it."""
    try:
        return importlib.import_module(f"tfspec.runtime.steps.{step.kind}")
    except ModuleNotFoundError as error:
        if error.name not in (f"tfspec.runtime.steps.{step.kind}", None):
            raise
        path: tuple[str | int, ...] = ("compression", step.params.index) if step_kind(step.kind).stage else ()
        raise StepError(path, f"this runtime has no {step.kind!r} step (tfspec.runtime.steps.{step.kind})",
                        "install a tfspec with that compression technique, or remove the stage") from None


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def _copy_into(staging: Path, entry: Path, outputs: tuple[str, ...], owner: dict[str, str], step_id: str) -> None:
    for output in outputs:
        source = entry / output
        files = [source] if source.is_file() else sorted(f for f in source.rglob("*") if f.is_file())
        for file in files:
            relative = file.relative_to(entry).as_posix()
            check_output_path(relative)
            if relative in owner:
                if (staging / relative).read_bytes() == file.read_bytes():
                    continue  # the same file from render and bundle (labels.txt): no conflict
                raise OutputPathError(f"{relative} is written by both {owner[relative]} and {step_id}")
            owner[relative] = step_id
            target = staging / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(file, target)


def _remove_dead_dist_staging(dist_dir: Path) -> list[str]:
    """Staging folders of ``dist_dir`` left by killed runs: owner gone, or the old unowned name and stale."""
    removed = remove_dead_staging(dist_dir.parent, dist_dir.name)
    legacy = re.compile(rf"\.{re.escape(dist_dir.name)}\.[a-z0-9_]{{8}}\.tmp")
    with contextlib.suppress(OSError):
        for entry in os.scandir(dist_dir.parent):
            if legacy.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False) \
                    and time.time() - entry.stat(follow_symlinks=False).st_mtime > _LEGACY_STAGING_AGE_S:
                shutil.rmtree(entry.path, ignore_errors=True)
                removed.append(entry.name)
    return removed


def _write_dist(dist_dir: Path, fill: Callable[[Path], None], producer: Producer,
                protected: tuple[Protected, ...] = ()) -> None:
    """Fill a staging folder, add ``manifest.json`` and swap it with ``dist_dir`` in one step (only where
    :func:`tfspec.base.outputs.check_replaceable` allows it)."""
    check_replaceable(dist_dir, producer, protected, option="--dist-dir")
    dist_dir = Path(dist_dir).absolute()
    dist_dir.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted_swap(dist_dir)
    _remove_dead_dist_staging(dist_dir)
    # the owner in the name lets the next run remove what a kill during the copy or the swap left
    staging = Path(tempfile.mkdtemp(prefix=staging_prefix(dist_dir.name), suffix=".tmp", dir=dist_dir.parent))
    try:
        fill(staging)
        entries = {f.relative_to(staging).as_posix(): file_sha256(f) for f in sorted(staging.rglob("*")) if f.is_file()}
        (staging / MANIFEST).write_text(manifest_json(entries, producer), encoding="utf-8")
        if not swap_into_place(staging, dist_dir):
            return
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(staging, ignore_errors=True)


def _cache(run: RunInputs, cache_dir: Path | None) -> StepCache:
    return StepCache(Path(cache_dir) if cache_dir is not None else default_cache_dir(Path(run.root)))


def _execute(step: Step, run: RunInputs, cache: StepCache, inputs: dict[str, Path], *, module: Any, quiet: bool,
             log: Callable[[str], None], checkpoints: Path | None = None, keep_checkpoint: bool = False
             ) -> dict[str, Any]:
    """Run one step into its cache entry (checkpoints kept until it is cached); returns its metrics."""
    checkpoint = (checkpoints or cache.root / CHECKPOINTS_DIR) / step.fingerprint
    # A step's output must follow from its fingerprint alone, not from the steps this process ran before
    # (TensorFlow combines op seeds with the global seed): each pod of a workflow runs one step, fresh.
    reset_random_state()
    with reported_as_step_errors(step.id, run.locate):
        with cache.writing(step.fingerprint, step.id) as scratch:
            context = StepContext(step=step, plan=run.plan, root=Path(run.root).absolute(), out=scratch,
                                  inputs={i: inputs[i] for i in step.inputs if i in inputs}, quiet=quiet, log=log,
                                  checkpoint_dir=checkpoint)
            metrics = module.run(context)
            context.write_json(METRICS_FILE, metrics)
    if keep_checkpoint:
        return metrics
    shutil.rmtree(checkpoint, ignore_errors=True)
    with contextlib.suppress(OSError):
        checkpoint.parent.rmdir()  # only when no other step left a checkpoint
    return metrics


def _load_tensorflow(log: Callable[[str], None]) -> None:
    if not tf_loaded():  # seconds of silence otherwise, before the first step's own line
        log("loading TensorFlow...")
        import_tf()


def _modules(run: RunInputs, steps: tuple[Step, ...] | list[Step]) -> dict[str, Any]:
    try:
        return {step.kind: step_module(step, run.plan) for step in steps if step_kind(step.kind).runs}
    except StepError as error:
        raise error.locate(run.locate) from None


def run_step(run: RunInputs, step_id: str, *, cache_dir: Path | None = None, quiet: bool = False,
             force: bool = False, log: Callable[[str], None] | None = None) -> Path:
    """Run one step in isolation (what a pod of a cluster runs): its inputs must be in the cache already.

    Returns the step's cache entry; an entry already there is kept unless ``force``.
    """
    log = log or (lambda line: print(line, flush=True))
    try:
        step = run.plan.step(step_id)
    except KeyError:
        raise StepError((), f"the plan has no step {step_id!r} (its steps: {', '.join(s.id for s in run.plan.steps)})"
                        ) from None
    if not step_kind(step.kind).runs:
        raise StepError((), f"step {step_id} is a {step.kind} step: tfspec build wrote its files, nothing runs")
    cache = _cache(run, cache_dir)
    missing = [i for i in step.inputs if not cache.has(run.plan.step(i).fingerprint)]
    if missing:
        raise StepError((), f"step {step_id} needs the outputs of {', '.join(missing)}, not in the cache {cache.root}",
                        "run those steps first (tfspec run --plan ... --step ID), or share their cache entries")
    if cache.has(step.fingerprint) and not force:
        log(f"cached  {step.id}")
        return cache.path(step.fingerprint)
    module = _modules(run, [step])[step.kind]
    _load_tensorflow(log)
    log(f"run     {step.id}")
    inputs = {i: cache.path(run.plan.step(i).fingerprint) for i in step.inputs}
    _execute(step, run, cache, inputs, module=module, quiet=quiet, log=log)
    return cache.path(step.fingerprint)


def run_plan(run: RunInputs, *, cache_dir: Path | None = None, dist_dir: Path | None = None,
             quiet: bool = False, force: bool = False, log: Callable[[str], None] | None = None) -> RunReport:
    """Execute ``run.plan``; returns what ran and the report (missed gates do not raise here)."""
    plan = run.plan
    log = log or (lambda line: print(line, flush=True))
    cache = _cache(run, cache_dir)
    dist = Path(dist_dir) if dist_dir is not None else default_dist_dir(plan)
    check_dist_dir(run, dist)
    modules = _modules(run, plan.steps)
    for name in [*cache.sweep(), *_remove_dead_dist_staging(dist)]:
        log(f"removed {name}, the unfinished output of a killed run")
    entries: dict[str, Path] = {}
    outputs: dict[str, dict[str, Any]] = {}
    histories: dict[str, dict[str, list[float]]] = {}
    records: list[dict[str, Any]] = []
    ran: list[str] = []
    cached: list[str] = []
    for step in plan.steps:
        record = {"id": step.id, "kind": step.kind, "target": step.target, "fingerprint": step.fingerprint,
                  "inputs": list(step.inputs)}
        if not step_kind(step.kind).runs:
            files = sorted(step.params.files)
            outputs[step.id] = {"files": files}
            records.append({**record, "cached": True, "duration_s": 0.0, "metrics": {"files": len(files)}})
            continue
        start = time.perf_counter()
        if cache.has(step.fingerprint) and not force:
            entry = cache.path(step.fingerprint)
            metrics = _read_json(entry / METRICS_FILE)
            cached.append(step.id)
            log(f"cached  {step.id}")
            was_cached = True
        else:
            if not tf_loaded():  # seconds of process start-up, not the first step's own work
                _load_tensorflow(log)
                start = time.perf_counter()
            log(f"run     {step.id}")
            metrics = _execute(step, run, cache, entries, module=modules[step.kind], quiet=quiet, log=log)
            entry = cache.path(step.fingerprint)
            ran.append(step.id)
            was_cached = False
        entries[step.id] = entry
        outputs[step.id] = metrics
        if step.kind in MODEL_STEP_KINDS and (entry / "history.json").is_file():
            histories[step.id] = _read_json(entry / "history.json")
        duration = time.perf_counter() - start
        records.append({**record, "cached": was_cached, "duration_s": round(duration, 3), "metrics": metrics})
    report = build_report(plan, records, outputs, histories)

    def fill(staging: Path) -> None:
        owner: dict[str, str] = {}
        # The plan as run, its root relative to the dist folder: the dist says how it was made.
        dist_plan = plan.model_copy(update={"root": Path(os.path.relpath(Path(run.root).absolute(),
                                                                          dist.absolute())).as_posix()})
        for path, text in sorted({**run.rendered, PLAN_FILE: dist_plan.to_text()}.items()):
            check_output_path(path)
            owner[path] = "render"
            target = staging / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", newline="\n")
        for step in plan.steps:
            if step.kind == "bundle":
                _copy_into(staging, entries[step.id], step.outputs, owner, step.id)
        (staging / REPORT_FILE).write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        previous_page = dist / REPORT_HTML
        if not ran and previous_page.is_file():
            # Nothing ran: the models and metrics are those of the page already there; keep it instead of
            # spending seconds on matplotlib (`tfspec report` redraws it with the cache flags).
            shutil.copy2(previous_page, staging / REPORT_HTML)
        else:
            log("writing report...")
            write_report_html(staging, report)

    _write_dist(dist, fill, dist_producer(plan), dist_protected(run))
    summary = f"{len(ran)} step{'s' if len(ran) != 1 else ''} ran, {len(cached)} cached"
    log(f"{summary}; wrote {dist}")
    return RunReport(report, tuple(ran), tuple(cached), dist, cache.root)
