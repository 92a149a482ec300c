"""tf.distribute for the train step: one strategy per ``training.distribution``, and what follows from it.

The train step asks :func:`strategy_for` for a :class:`Distributed` and then

* builds and compiles its model inside ``distributed.scope()``;
* batches its training data with ``distributed.global_batch_size(per_replica)`` and passes the dataset
  through ``distributed.dataset(ds)`` (auto-sharding by ``DATA`` for in-memory arrays);
* builds its optimizer from ``distributed.optimizer_params(params)`` (the learning rate scaled by the
  number of replicas only when the spec sets ``scale_learning_rate``);
* saves with :meth:`Distributed.save_model` (under ``multi_worker_mirrored`` only the chief writes the
  real file; the other workers write to ``workertemp_<index>`` beside it and remove it: the upstream
  multi-worker saving convention).

Kinds (``tfspec.spec.training.Distribution``):

* ``default``: the default strategy, one replica.
* ``mirrored``: ``MirroredStrategy`` over ``devices`` (``GPU:0``, ``CPU:1``...), or every visible GPU, or
  the CPU when there is none.
* ``multi_worker_mirrored``: ``MultiWorkerMirroredStrategy``; the cluster comes from ``TF_CONFIG`` or the
  Indexed Job variables (:mod:`tfspec.compiler.tf_config`, the contract the gpu_cluster manifests use).
  A peer that disappears is detected by the strategy's health check, tuned by :class:`PeerTimeouts`,
  so a surviving worker fails within a bounded time instead of waiting forever in a collective.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tfspec.compiler.tf_config import ENV_TF_CONFIG, tf_config_from_environment
from tfspec.spec.errors import TfspecError

from .tf import import_tf

__all__ = [
    "DistributionError",
    "PeerFailureError",
    "PeerTimeouts",
    "Distributed",
    "strategy_for",
    "distribution_params",
    "is_chief",
    "worker_temp_path",
    "scale_learning_rate",
    "peer_failures",
    "peer_failure_message",
]

_COMMUNICATION = {"auto": "AUTO", "ring": "RING", "nccl": "NCCL"}


class DistributionError(TfspecError):
    """``training.distribution`` cannot be honoured on this machine or cluster."""


class PeerFailureError(TfspecError):
    """Another worker of a multi-worker run stopped answering; the run must be restarted."""


@dataclasses.dataclass(frozen=True)
class PeerTimeouts:
    """How a multi-worker run notices a dead peer (seconds).

    Attributes:
        startup: longest wait for every worker to join the cluster at start-up (0: forever).
        interval: pause between two health checks of every peer.
        check: timeout of one health check of one peer.
        retries: failed checks in a row before a peer counts as down.
        collective: timeout of every collective (all-reduce) of training; ``None``: no per-collective
            limit, rely on the health check (a slow first step may otherwise be mistaken for a dead peer).
    """

    startup: float = 600.0
    interval: float = 5.0
    check: float = 5.0
    retries: int = 3

    collective: float | None = None

    @property
    def detection_bound(self) -> float:
        """Longest time between a peer's death and the surviving workers' error (one full check cycle)."""
        return self.interval + self.retries * self.check


def distribution_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """``training.distribution`` from a train (or compression) step's params (``params["fit"]["distribution"]``)."""
    fit = params.get("fit", params)
    distribution = dict(fit.get("distribution") or {})
    distribution.setdefault("kind", "default")
    distribution.setdefault("devices", None)
    distribution.setdefault("scale_learning_rate", False)
    distribution.setdefault("communication", "auto")
    return distribution


def is_chief(tf_config: Mapping[str, Any]) -> bool:
    """Chief of a MultiWorkerMirroredStrategy cluster: the ``chief`` task, or worker 0 when there is none."""
    task = tf_config.get("task", {})
    if task.get("type") == "chief":
        return True
    has_chief = bool(tf_config.get("cluster", {}).get("chief"))
    return task.get("type") == "worker" and task.get("index") == 0 and not has_chief


def worker_temp_path(path: Path, task_index: int) -> Path:
    """Where a non-chief worker writes ``path``: ``<parent>/workertemp_<index>/<name>`` (upstream convention)."""
    return path.parent / f"workertemp_{task_index}" / path.name


def scale_learning_rate(optimizer: Mapping[str, Any], factor: float) -> dict[str, Any]:
    """The optimizer params with every learning rate of its schedule multiplied by ``factor``."""
    out = dict(optimizer)
    rate = out.get("learning_rate")
    if factor == 1 or rate is None:
        return out
    if isinstance(rate, (int, float)):
        out["learning_rate"] = rate * factor
        return out
    schedule = dict(rate)
    if "initial" in schedule:
        schedule["initial"] = schedule["initial"] * factor
    if "values" in schedule:
        schedule["values"] = [value * factor for value in schedule["values"]]
    if "min_learning_rate" in schedule:
        schedule["min_learning_rate"] = schedule["min_learning_rate"] * factor
    out["learning_rate"] = schedule
    return out


@dataclasses.dataclass
class Distributed:
    """A strategy and the facts the train step needs about it.

    Attributes:
        kind: ``default``, ``mirrored`` or ``multi_worker_mirrored``.
        strategy: the ``tf.distribute.Strategy``.
        replicas: ``strategy.num_replicas_in_sync``.
        devices: the devices of the local replicas.
        scale_lr: whether the learning rate is multiplied by ``replicas``.
        chief: whether this process writes the real outputs.
        task_index: this worker's index (0 outside multi-worker runs).
        workers: number of workers (1 outside multi-worker runs).
        tf_config: the cluster description used (multi-worker only).
    """

    kind: str
    strategy: Any
    replicas: int
    devices: tuple[str, ...]
    scale_lr: bool = False
    chief: bool = True
    task_index: int = 0
    workers: int = 1
    tf_config: dict[str, Any] | None = None

    @property
    def multi_worker(self) -> bool:
        return self.kind == "multi_worker_mirrored"

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """Build and compile the model inside this scope (variables become distributed)."""
        return self.strategy.scope()

    def global_batch_size(self, per_replica: int) -> int:
        """Batch size of one step over all replicas (the spec's ``batch_size`` is per replica)."""
        return per_replica * self.replicas

    def learning_rate_factor(self) -> float:
        return float(self.replicas) if self.scale_lr else 1.0

    def optimizer_params(self, optimizer: Mapping[str, Any]) -> dict[str, Any]:
        """The spec's optimizer params, with the learning rate scaled when the spec asks for it."""
        return scale_learning_rate(optimizer, self.learning_rate_factor())

    def dataset(self, dataset: Any) -> Any:
        """``dataset`` with auto-sharding by ``DATA`` (in-memory arrays have no files to shard by)."""
        if not self.multi_worker:
            return dataset
        tf, _ = import_tf()
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
        return dataset.with_options(options)

    def write_path(self, path: Path) -> Path:
        """``path`` on the chief, a per-worker temporary path beside it on the other workers."""
        if self.chief:
            return Path(path)
        temp = worker_temp_path(Path(path), self.task_index)
        temp.parent.mkdir(parents=True, exist_ok=True)
        return temp

    def save_model(self, model: Any, path: Path, **save_kwargs: Any) -> Path | None:
        """Save on every worker (saving may run collectives); keep only the chief's file.

        Returns the path written, or ``None`` on a non-chief worker (its temporary copy is removed).
        """
        target = self.write_path(Path(path))
        model.save(str(target), **save_kwargs)
        if self.chief:
            return target
        shutil.rmtree(target.parent, ignore_errors=True)
        return None

    def describe(self) -> dict[str, Any]:
        """JSON facts for metrics and logs."""
        out: dict[str, Any] = {"kind": self.kind, "replicas": self.replicas, "devices": list(self.devices),
                               "scale_learning_rate": self.scale_lr}
        if self.multi_worker:
            out.update({"workers": self.workers, "task_index": self.task_index, "chief": self.chief,
                        "tf_config": self.tf_config})
        return out


def _local_devices(tf: Any, device_type: str) -> list[str]:
    return [d.name for d in tf.config.list_logical_devices(device_type)]


def _canonical(device: str) -> str:
    """``GPU:0`` → ``/device:GPU:0``."""
    return device if device.startswith("/") else f"/device:{device}"


def _mirrored(tf: Any, distribution: Mapping[str, Any], scale_lr: bool) -> Distributed:
    listed = distribution.get("devices")
    if listed:
        available = {name.split("device:")[-1] for name in _local_devices(tf, "GPU") + _local_devices(tf, "CPU")}
        for index, device in enumerate(listed):
            if device not in available:
                raise DistributionError(
                    f"training.distribution.devices[{index}]: device {device} is not available here "
                    f"(visible: {', '.join(sorted(available)) or 'none'})")
        devices = [_canonical(d) for d in listed]
    else:
        devices = _local_devices(tf, "GPU") or ["/device:CPU:0"]
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    return Distributed("mirrored", strategy, strategy.num_replicas_in_sync, tuple(devices), scale_lr)


def _multi_worker(tf: Any, distribution: Mapping[str, Any], scale_lr: bool, environ: Mapping[str, str],
                  timeouts: PeerTimeouts) -> Distributed:
    tf_config = tf_config_from_environment(environ)
    # MultiWorkerMirroredStrategy reads the cluster from TF_CONFIG (TFConfigClusterResolver); an Indexed
    # Job worker has it only in derived form, so write the derived value where TensorFlow looks.
    os.environ[ENV_TF_CONFIG] = json.dumps(tf_config, sort_keys=True)
    from tensorflow.python.distribute import collective_all_reduce_strategy as car  # noqa: PLC0415

    # The strategy's own peer health check, tightened from its 30 s default so a dead peer aborts
    # pending collectives with UnavailableError within PeerTimeouts.detection_bound seconds; the
    # start-up barrier gets a limit too (the default waits forever for a worker that never comes).
    extended = car.CollectiveAllReduceExtended
    extended._check_health_interval = timeouts.interval
    extended._check_health_timeout = timeouts.check
    extended._check_health_retry_limit = timeouts.retries
    extended._check_health_initial_timeout = timeouts.startup
    implementation = getattr(tf.distribute.experimental.CommunicationImplementation,
                             _COMMUNICATION[distribution.get("communication") or "auto"])
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=implementation, timeout_seconds=timeouts.collective)
    try:
        strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except RuntimeError as error:
        raise PeerFailureError(
            f"training.distribution: the cluster {tf_config['cluster']} did not come together within "
            f"{timeouts.startup:g} s ({error})") from None
    resolver = strategy.cluster_resolver
    workers = len(tf_config["cluster"].get("worker", [])) + len(tf_config["cluster"].get("chief", []))
    local = _local_devices(tf, "GPU") or ["/device:CPU:0"]
    return Distributed("multi_worker_mirrored", strategy, strategy.num_replicas_in_sync, tuple(local), scale_lr,
                       chief=is_chief(tf_config), task_index=int(resolver.task_id), workers=workers,
                       tf_config=tf_config)


def strategy_for(params: Mapping[str, Any], *, environ: Mapping[str, str] | None = None,
                 timeouts: PeerTimeouts | None = None) -> Distributed:
    """The strategy a train step's params ask for (``params["fit"]["distribution"]``).

    Args:
        params: the step's params (or its ``fit`` dict, or the distribution dict itself).
        environ: where ``TF_CONFIG`` / ``JOB_COMPLETION_INDEX`` are read (``os.environ`` by default).
        timeouts: dead-peer detection of ``multi_worker_mirrored``.
    """
    distribution = distribution_params(params if "kind" not in params else {"distribution": params})
    kind = distribution["kind"]
    scale_lr = bool(distribution.get("scale_learning_rate"))
    tf, _ = import_tf()
    if kind == "default":
        strategy = tf.distribute.get_strategy()
        return Distributed("default", strategy, strategy.num_replicas_in_sync, ("default",), scale_lr)
    if kind == "mirrored":
        return _mirrored(tf, distribution, scale_lr)
    if kind == "multi_worker_mirrored":
        return _multi_worker(tf, distribution, scale_lr, os.environ if environ is None else environ,
                             timeouts or PeerTimeouts())
    raise DistributionError(f"training.distribution.kind: unknown kind {kind!r}")


_REASON = re.compile(r"(unhealthy|is down|stopped sending heartbeats|connection reset|connection refused|"
                     r"deadline exceeded|unavailable|timed out|socket closed)", re.IGNORECASE)
_TASK = re.compile(r"/job:(\w+)/(?:replica:\d+/)?task:(\d+)")


def peer_failure_message(distributed: Distributed, error: BaseException) -> str:
    """One line: which worker lost which peer, why, and what to do."""
    text = getattr(error, "message", None) or str(error)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = next((line for line in lines if _REASON.search(line)), lines[0] if lines else type(error).__name__)
    hosts = (distributed.tf_config or {}).get("cluster", {})
    peers = sorted({(job, int(index)) for job, index in _TASK.findall(text)
                    if (job, int(index)) != ("worker", distributed.task_index)})
    named = ", ".join(f"{job} {index} ({hosts[job][index]})" if job in hosts and index < len(hosts[job])
                      else f"{job} {index}" for job, index in peers)
    return (f"training.distribution: worker {distributed.task_index} lost its peer{'s' if len(peers) > 1 else ''} "
            f"{named or 'in the cluster'}: {reason[:300]}; restart every worker to resume from the last "
            "BackupAndRestore checkpoint")


@contextlib.contextmanager
def peer_failures(distributed: Distributed) -> Iterator[None]:
    """Turn the collective errors a dead peer causes into one clear :class:`PeerFailureError`."""
    if not distributed.multi_worker:
        yield
        return
    tf, _ = import_tf()
    try:
        yield
    except (tf.errors.UnavailableError, tf.errors.DeadlineExceededError, tf.errors.CancelledError,
            tf.errors.FailedPreconditionError, tf.errors.InternalError, tf.errors.AbortedError) as error:
        raise PeerFailureError(peer_failure_message(distributed, error)) from None
