"""tf.distribute for the train step: one strategy per ``training.distribution``, and what follows from it.

The train step asks :func:`strategy_for` for a :class:`Distributed` and then

* builds and compiles its model inside ``distributed.scope()``;
* batches its training data with ``distributed.global_batch_size(per_replica)`` and passes the dataset
  through ``distributed.dataset(ds)`` (auto-sharding by ``DATA`` for in-memory arrays);
* compiles with ``replicas=distributed.replicas`` (``runtime.fit.compile_model`` scales the learning rate
  by it only when the spec sets ``scale_learning_rate``);
* writes per-worker files through ``distributed.write_path(path)``: under ``multi_worker_mirrored`` only
  the chief writes the real path, the other workers ``workertemp_<index>/`` beside it (the upstream
  multi-worker saving convention; :meth:`Distributed.save_model` saves a model that way). In worker mode
  (:mod:`tfspec.runtime.worker`) a non-chief worker's whole step cache is such a temporary folder.

Kinds (the plan's ``DistributionParams``, ``fit.distribution``):

* ``default``: the default strategy, one replica.
* ``mirrored``: ``MirroredStrategy`` over ``devices`` (``GPU:0``, ``CPU:1``...), or every visible GPU, or
  the CPU when there is none.
* ``multi_worker_mirrored``: ``MultiWorkerMirroredStrategy``; the cluster comes from ``TF_CONFIG`` or the
  Indexed Job variables (:mod:`tfspec.base.tf_config`, the contract the gpu_cluster manifests use).
  A peer that disappears is detected by TensorFlow's coordination service (heartbeats, limits in
  :class:`PeerTimeouts`), so a surviving worker fails within a bounded time instead of waiting forever in
  a collective, and a worker whose peers never start gives up after the start-up limit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tfspec.base.tf_config import ENV_COMPLETION_INDEX, ENV_TF_CONFIG, ENV_WORKER_HOSTS, tf_config_from_environment
from tfspec.base.errors import TfspecError
from tfspec.plan import DistributionParams

from .errors import StepError
from .tf import import_tf

__all__ = [
    "DistributionError",
    "WorkerEnvironmentError",
    "PeerFailureError",
    "PeerTimeouts",
    "ENV_STARTUP_TIMEOUT",
    "ENV_PEER_TIMEOUT",
    "Distributed",
    "strategy_for",
    "is_chief",
    "worker_temp_path",
    "peer_failures",
    "peer_failure_message",
]

_COMMUNICATION = {"auto": "AUTO", "ring": "RING", "nccl": "NCCL"}
ENV_STARTUP_TIMEOUT = "TFSPEC_STARTUP_TIMEOUT"
ENV_PEER_TIMEOUT = "TFSPEC_PEER_TIMEOUT"


class DistributionError(StepError):
    """``training.distribution`` cannot be honoured on this machine (points at the spec line)."""


class WorkerEnvironmentError(TfspecError):
    """A worker's environment variables are unusable."""


class PeerFailureError(TfspecError):
    """Another worker of a multi-worker run stopped answering; the run must be restarted."""


@dataclasses.dataclass(frozen=True)
class PeerTimeouts:
    """How long a multi-worker run waits for its peers (seconds).

    TensorFlow's coordination service (led by the chief) watches every worker's heartbeat; a worker that
    stops answering for ``heartbeat`` seconds aborts the collectives of the others with
    ``UnavailableError``, so a surviving worker fails instead of waiting forever in an all-reduce.

    Attributes:
        startup: longest wait for every worker to register with the chief at start-up.
        heartbeat: silence after which a peer counts as dead (TensorFlow's default is 10 s).
        collective: timeout of every collective (all-reduce) of training; ``None``: no per-collective
            limit, rely on the heartbeat (a slow first step could otherwise be taken for a dead peer).
    """

    startup: float = 600.0
    heartbeat: float = 10.0
    collective: float | None = None

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> "PeerTimeouts":
        """``TFSPEC_STARTUP_TIMEOUT`` and ``TFSPEC_PEER_TIMEOUT`` (seconds) over the defaults."""
        values: dict[str, float] = {}
        for variable, field in ((ENV_STARTUP_TIMEOUT, "startup"), (ENV_PEER_TIMEOUT, "heartbeat")):
            if variable in environ:
                try:
                    values[field] = float(environ[variable])
                except ValueError:
                    raise WorkerEnvironmentError(f"{variable} is not a number of seconds: {environ[variable]!r}") from None
                if values[field] <= 0:
                    raise WorkerEnvironmentError(f"{variable} must be positive, got {environ[variable]!r}")
        return cls(**values)


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


@dataclasses.dataclass
class Distributed:
    """A strategy and the facts the train step needs about it.

    Attributes:
        kind: ``default``, ``mirrored`` or ``multi_worker_mirrored``.
        strategy: the ``tf.distribute.Strategy``.
        replicas: ``strategy.num_replicas_in_sync``.
        devices: the devices of the local replicas.
        scale_lr: whether the learning rate is multiplied by ``replicas`` (the spec's ``scale_learning_rate``).
        chief: whether this process writes the real outputs.
        task_index: this worker's index (0 outside multi-worker runs).
        workers: number of workers (1 outside multi-worker runs).
        tf_config: the cluster description given to TensorFlow (multi-worker only).
        resolved: the cluster as the strategy's cluster resolver read it back (multi-worker only).
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
    resolved: dict[str, Any] | None = None

    @property
    def multi_worker(self) -> bool:
        return self.kind == "multi_worker_mirrored"

    def scope(self) -> contextlib.AbstractContextManager[Any]:
        """Build and compile the model inside this scope (variables become distributed)."""
        return self.strategy.scope()

    def global_batch_size(self, per_replica: int) -> int:
        """Batch size of one step over all replicas (the spec's ``batch_size`` is per replica)."""
        return per_replica * self.replicas

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
                        "tf_config": self.tf_config, "resolved": self.resolved})
        return out


def _local_devices(tf: Any, device_type: str) -> list[str]:
    return [d.name for d in tf.config.list_logical_devices(device_type)]


def _canonical(device: str) -> str:
    """``GPU:0`` → ``/device:GPU:0``."""
    return device if device.startswith("/") else f"/device:{device}"


def _mirrored(tf: Any, distribution: DistributionParams) -> Distributed:
    listed = distribution.devices
    scale_lr = distribution.scale_learning_rate
    if listed:
        available = {name.split("device:")[-1] for name in _local_devices(tf, "GPU") + _local_devices(tf, "CPU")}
        for index, device in enumerate(listed):
            if device not in available:
                raise DistributionError(
                    ("training", "distribution", "devices", index), f"device {device} is not available here "
                    f"(visible: {', '.join(sorted(available)) or 'none'})")
        devices = [_canonical(d) for d in listed]
    else:
        devices = _local_devices(tf, "GPU") or ["/device:CPU:0"]
    strategy = tf.distribute.MirroredStrategy(devices=devices)
    return Distributed("mirrored", strategy, strategy.num_replicas_in_sync, tuple(devices), scale_lr)


def _first_line(error: BaseException) -> str:
    text = getattr(error, "message", None) or str(error)
    return next((line.strip() for line in text.splitlines() if line.strip()), type(error).__name__)[:300]


_WATCHDOG = """
import os, select, signal, sys
parent, seconds, message = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
ready, _, _ = select.select([sys.stdin], [], [], seconds)
if not ready:
    sys.stderr.write("error: " + message + "\\n")
    sys.stderr.flush()
    os.kill(parent, signal.SIGKILL)
"""


@contextlib.contextmanager
def _watchdog(seconds: float, message: str) -> Iterator[None]:
    """Kill this process with ``message`` if the block has not finished after ``seconds``.

    Joining the cluster blocks inside TensorFlow's C++ runtime while holding the GIL, so neither a Python
    exception, a timer thread nor a signal handler can end it; and the coordination service's own
    registration timeout does not end a lone chief's wait (checked with TensorFlow 2.21). A small
    watchdog process can: it waits on a pipe that this block closes when it finishes (or when this
    process dies), and otherwise prints ``message`` and kills this process.
    """
    watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG, str(os.getpid()), str(seconds), message],
                                stdin=subprocess.PIPE)
    try:
        yield
    finally:
        assert watchdog.stdin is not None
        watchdog.stdin.close()
        watchdog.wait()


def _configure_coordination(tf_config: Mapping[str, Any], timeouts: PeerTimeouts) -> None:
    """Set up TensorFlow's coordination service with our timeouts, before the strategy does it with its own.

    MultiWorkerMirroredStrategy configures the service (leader: the chief, or worker 0) only when nothing
    configured it yet, with no start-up limit; doing it first with the same jobs and leader bounds both the
    start-up wait and the dead-peer detection.
    """
    from tensorflow.compiler.xla.tsl.protobuf import coordination_config_pb2  # noqa: PLC0415
    from tensorflow.python.distribute import multi_worker_util  # noqa: PLC0415
    from tensorflow.python.eager import context  # noqa: PLC0415
    from tensorflow.python.training import server_lib  # noqa: PLC0415

    if context.context().coordination_service is not None:
        return
    cluster_spec = server_lib.ClusterSpec(dict(tf_config["cluster"]))
    jobs = [coordination_config_pb2.CoordinatedJob(name=job, num_tasks=cluster_spec.num_tasks(job))
            for job in ("chief", "worker") if job in cluster_spec.jobs]
    context.context().configure_coordination_service(
        service_type="standalone",
        service_leader=multi_worker_util.coordination_leader(cluster_spec),
        coordinated_jobs=jobs,
        cluster_register_timeout_in_ms=int(timeouts.startup * 1000),
        heartbeat_timeout_in_ms=int(timeouts.heartbeat * 1000),
    )


def _multi_worker(tf: Any, distribution: DistributionParams, environ: Mapping[str, str],
                  timeouts: PeerTimeouts) -> Distributed:
    scale_lr = distribution.scale_learning_rate
    if not any(name in environ for name in (ENV_TF_CONFIG, ENV_COMPLETION_INDEX, ENV_WORKER_HOSTS)):
        # No cluster around (a plain `tfspec run` of a cluster spec): one local worker, as
        # MultiWorkerMirroredStrategy without TF_CONFIG is. On one CPU that is one replica with no peer to
        # reduce with, which the default strategy computes without MultiWorkerMirroredStrategy's per-step
        # collectives (the digits example trained 5 x slower under it: 46.1 s against 9.2 s, load ~6.5).
        local = _local_devices(tf, "GPU")
        strategy = tf.distribute.get_strategy() if len(local) <= 1 else tf.distribute.MultiWorkerMirroredStrategy()
        return Distributed("multi_worker_mirrored", strategy, strategy.num_replicas_in_sync,
                           tuple(local or ["/device:CPU:0"]), scale_lr)
    tf_config = tf_config_from_environment(environ)
    # MultiWorkerMirroredStrategy reads the cluster from TF_CONFIG (TFConfigClusterResolver); an Indexed
    # Job worker has it only in derived form, so write the derived value where TensorFlow looks.
    os.environ[ENV_TF_CONFIG] = json.dumps(tf_config, sort_keys=True)
    _configure_coordination(tf_config, timeouts)
    implementation = getattr(tf.distribute.experimental.CommunicationImplementation,
                             _COMMUNICATION[distribution.communication])
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=implementation, timeout_seconds=timeouts.collective)
    message = (f"training.distribution: worker {tf_config['task']['index']} could not join the cluster "
               f"{tf_config['cluster']} within {timeouts.startup:g} s; start every worker (or raise "
               f"{ENV_STARTUP_TIMEOUT} to wait longer)")
    try:
        with _watchdog(timeouts.startup, message):
            strategy = tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    except (RuntimeError, tf.errors.OpError) as error:
        raise PeerFailureError(
            f"training.distribution: worker {tf_config['task']['index']} could not join the cluster "
            f"{tf_config['cluster']} within {timeouts.startup:g} s ({_first_line(error)}); start every worker "
            f"(raise {ENV_STARTUP_TIMEOUT} to wait longer)") from None
    resolver = strategy.cluster_resolver
    workers = len(tf_config["cluster"].get("worker", [])) + len(tf_config["cluster"].get("chief", []))
    local = _local_devices(tf, "GPU") or ["/device:CPU:0"]
    return Distributed("multi_worker_mirrored", strategy, strategy.num_replicas_in_sync, tuple(local), scale_lr,
                       chief=is_chief(tf_config), task_index=int(resolver.task_id), workers=workers,
                       tf_config=tf_config,
                       resolved={"cluster": {job: list(tasks) for job, tasks in resolver.cluster_spec().as_dict().items()},
                                 "task": {"type": resolver.task_type, "index": int(resolver.task_id)}})


_MULTI_WORKER: dict[str, Distributed] = {}


def strategy_for(distribution: DistributionParams, *, environ: Mapping[str, str] | None = None,
                 timeouts: PeerTimeouts | None = None) -> Distributed:
    """The strategy a step's ``fit.distribution`` asks for.

    Args:
        distribution: the plan's distribution params.
        environ: where ``TF_CONFIG`` / ``JOB_COMPLETION_INDEX`` are read (``os.environ`` by default).
        timeouts: dead-peer detection of ``multi_worker_mirrored``.
    """
    kind = distribution.kind
    scale_lr = distribution.scale_learning_rate
    tf, _ = import_tf()
    if kind == "default":
        strategy = tf.distribute.get_strategy()
        return Distributed("default", strategy, strategy.num_replicas_in_sync, ("default",), scale_lr)
    if kind == "mirrored":
        return _mirrored(tf, distribution)
    if kind == "multi_worker_mirrored":
        environ = os.environ if environ is None else environ
        # one strategy per process and cluster: a worker creates it before its data step runs TensorFlow
        # ops (collective ops must be configured before the first op), the train step then gets the same one
        key = json.dumps([distribution.model_dump(mode="json"), {k: environ.get(k) for k in
                          (ENV_TF_CONFIG, ENV_COMPLETION_INDEX, ENV_WORKER_HOSTS)}], sort_keys=True, default=str)
        if key not in _MULTI_WORKER:
            _MULTI_WORKER[key] = _multi_worker(tf, distribution, environ, timeouts or PeerTimeouts.from_environ(environ))
        return _MULTI_WORKER[key]
    raise DistributionError(("training", "distribution", "kind"), f"unknown kind {kind!r}")


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
