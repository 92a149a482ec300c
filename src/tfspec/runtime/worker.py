"""Worker mode (``tfspec run SPEC --worker``): one process of a multi-worker training job.

Every worker of a gpu_cluster job runs the same command. Each one

1. reads its cluster from ``TF_CONFIG`` (TFJob), or derives it from ``JOB_COMPLETION_INDEX`` and
   ``TFSPEC_WORKER_HOSTS`` (JobSet, Indexed Job) with :func:`tfspec.base.tf_config.tf_config_from_environment`,
   the same contract the manifests are rendered from;
2. runs the training part of the plan (the ``train`` step and the steps it reads, i.e. ``data``) under
   ``MultiWorkerMirroredStrategy``; the train step gets its strategy from :mod:`tfspec.runtime.distribute`;
3. on the chief (the ``chief`` task, or worker 0): uses the shared step cache (``--cache-dir``), so the
   trained model becomes the cache entry a later ``tfspec run`` on the same cache starts from, and writes
   ``model.keras``, ``history.json``, ``metrics.json`` and ``worker.json`` to ``--dist-dir``;
4. on every other worker: runs the same steps into ``<cache>/workertemp_<index>/`` (the upstream
   multi-worker saving convention: non-chief workers write to temporary paths), removes it, exits 0.

The ``BackupAndRestore`` checkpoint of the train step lives in the shared cache
(``<cache>/checkpoints/<fingerprint>/``) for every worker, so restarting all workers resumes from the
last finished epoch. A training step that already finished on the chief is not run again: every worker
sees it in the shared cache and exits at once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tfspec.base.tf_config import ENV_TF_CONFIG, tf_config_from_environment
from tfspec.plan import Plan, Step, TrainParams

from .cache import StepCache, default_cache_dir
from .context import METRICS_FILE
from .distribute import ENV_PEER_TIMEOUT, ENV_STARTUP_TIMEOUT, PeerTimeouts, is_chief, strategy_for
from .errors import StepError, reported_as_step_errors
from .executor import (CHECKPOINTS_DIR, RunInputs, _execute, _write_dist, check_dist_dir, default_dist_dir, dist_producer,
                       dist_protected, step_module)

__all__ = ["WorkerResult", "run_worker", "training_steps", "WORKER_FILE", "DIST_FILES"]

WORKER_FILE = "worker.json"
DIST_FILES = ("model.keras", "history.json", METRICS_FILE)


@dataclasses.dataclass(frozen=True)
class WorkerResult:
    """What one worker did.

    Attributes:
        chief: this worker wrote the real outputs.
        task_index: index of this worker in the cluster.
        tf_config: the cluster description it trained with.
        ran: ids of the steps this worker executed.
        cached: ids of the steps found in the (shared or temporary) cache.
        metrics: the train step's metrics (``replicas``, ``epochs_run``, ``resumed_from_epoch``, accuracy...).
        dist_dir: where the chief wrote the model (``None`` on other workers).
    """

    chief: bool
    task_index: int
    tf_config: dict[str, Any]
    ran: tuple[str, ...]
    cached: tuple[str, ...]
    metrics: dict[str, Any]
    dist_dir: Path | None

    def to_json(self) -> dict[str, Any]:
        return {"chief": self.chief, "task_index": self.task_index, "tf_config": self.tf_config,
                "ran": list(self.ran), "cached": list(self.cached), "metrics": self.metrics,
                "dist": str(self.dist_dir) if self.dist_dir is not None else None}


def training_steps(plan: Plan) -> list[Step]:
    """The ``train`` step and every step it reads from, in plan order."""
    needed = {"train"}
    for step in reversed(plan.steps):
        if step.id in needed:
            needed.update(step.inputs)
    return [step for step in plan.steps if step.id in needed]


def run_worker(run: RunInputs, *, cache_dir: Path | None = None, dist_dir: Path | None = None,
               environ: Mapping[str, str] | None = None, timeouts: PeerTimeouts | None = None,
               quiet: bool = False, log: Callable[[str], None] | None = None) -> WorkerResult:
    """Run this process's share of a multi-worker training job (see the module docstring)."""
    plan = run.plan
    log = log or (lambda line: print(line, flush=True))
    environ = os.environ if environ is None else environ
    train = plan.step("train")
    assert isinstance(train.params, TrainParams)
    distribution = train.params.fit.distribution
    kind = distribution.kind
    tf_config = tf_config_from_environment(environ)
    expected = distribution.workers
    size = sum(len(tf_config["cluster"].get(job, [])) for job in ("chief", "worker"))
    if kind != "multi_worker_mirrored" and size > 1:
        # one worker alone may train with any strategy (e.g. placement over its GPUs); several train one
        # model together only with MultiWorkerMirroredStrategy
        raise StepError(("training", "distribution", "kind"),
                        f"{size} workers train one model together only with multi_worker_mirrored, "
                        f"this spec asks for {kind}",
                        "set training.distribution.kind: multi_worker_mirrored, or run one worker"
                        ).locate(run.locate)
    if expected is not None and size != expected:
        raise StepError(("training", "distribution", "workers"),
                        f"the spec trains on {expected} workers, the cluster in the environment has {size}: "
                        f"{tf_config['cluster']}").locate(run.locate)
    # The train step builds its strategy from the process environment: give it this exact cluster.
    os.environ[ENV_TF_CONFIG] = json.dumps(tf_config, sort_keys=True)
    if timeouts is not None:
        os.environ[ENV_STARTUP_TIMEOUT] = repr(timeouts.startup)
        os.environ[ENV_PEER_TIMEOUT] = repr(timeouts.heartbeat)
    chief = is_chief(tf_config)
    index = int(tf_config["task"]["index"])
    shared = StepCache(Path(cache_dir) if cache_dir is not None else default_cache_dir(Path(run.root)))
    dist = Path(dist_dir) if dist_dir is not None else default_dist_dir(plan)
    if chief:
        check_dist_dir(run, dist)
    role = "chief" if chief else "worker"
    log(f"{role} {index} of {len(tf_config['cluster'].get('worker', []))}: {json.dumps(tf_config, sort_keys=True)}")
    steps = training_steps(plan)
    if not shared.has(train.fingerprint):
        # join the cluster before the data step runs any TensorFlow op (collective ops are configured at
        # program start); the train step's strategy_for returns this same strategy
        with reported_as_step_errors(train.id, run.locate):
            strategy_for(distribution)
    if shared.has(train.fingerprint):
        log(f"cached  train (already trained in {shared.path(train.fingerprint)})")
        metrics = json.loads((shared.path(train.fingerprint) / METRICS_FILE).read_text("utf-8"))
        written = _write_chief_dist(run, dist, shared.path(train.fingerprint), tf_config) if chief else None
        return WorkerResult(chief, index, tf_config, (), tuple(s.id for s in steps), metrics, written)
    cache = shared if chief else StepCache(shared.root / f"workertemp_{index}")
    ran: list[str] = []
    cached: list[str] = []
    entries: dict[str, Path] = {}
    metrics = {}
    try:
        for step in steps:
            if cache.has(step.fingerprint):
                log(f"cached  {step.id}")
                cached.append(step.id)
            else:
                log(f"run     {step.id}")
                start = time.perf_counter()
                # The BackupAndRestore checkpoint lives in the shared cache for every worker; the chief's
                # cache entry is the shared one, so it removes it once cached.
                _execute(step, run, cache, entries, module=step_module(step, plan), quiet=quiet, log=log,
                         checkpoints=shared.root / CHECKPOINTS_DIR, keep_checkpoint=not chief)
                log(f"        {step.id} took {time.perf_counter() - start:.1f} s")
                ran.append(step.id)
            entries[step.id] = cache.path(step.fingerprint)
        metrics = json.loads((entries["train"] / METRICS_FILE).read_text("utf-8"))
        written = _write_chief_dist(run, dist, entries["train"], tf_config) if chief else None
    finally:
        if not chief:
            shutil.rmtree(cache.root, ignore_errors=True)
    log(f"{role} {index} done: {metrics.get('replicas')} replicas in sync"
        + (f", model written to {written}" if written else ", temporary outputs removed"))
    return WorkerResult(chief, index, tf_config, tuple(ran), tuple(cached), metrics, written)


def _write_chief_dist(run: RunInputs, dist: Path, entry: Path, tf_config: dict[str, Any]) -> Path:
    def fill(staging: Path) -> None:
        for name in DIST_FILES:
            if (entry / name).is_file():
                shutil.copyfile(entry / name, staging / name)
        (staging / WORKER_FILE).write_text(json.dumps({"tf_config": tf_config}, indent=2, sort_keys=True) + "\n",
                                           encoding="utf-8")

    _write_dist(dist, fill, dist_producer(run.plan), dist_protected(run))
    return dist
