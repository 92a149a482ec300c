"""runtime.distribute and runtime.worker piece by piece (in this process: default and one-device strategies only)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from _distributed_support import WORKERS_SPEC, clean_env
from click.testing import CliRunner

from tfspec.cli import cli
from tfspec.compiler.pipeline import compile_spec
from tfspec.runtime.distribute import (
    Distributed,
    PeerTimeouts,
    WorkerEnvironmentError,
    is_chief,
    peer_failure_message,
    strategy_for,
    worker_temp_path,
)
from tfspec.runtime.errors import StepError
from tfspec.runtime.tf import import_tf
from tfspec.runtime.worker import run_worker, training_steps
from tfspec.running import run_inputs_from_compiled
from tfspec_testing import EXAMPLE
from runtime_testing import plan_fit

CLUSTER = {"worker": ["10.0.0.1:2222", "10.0.0.2:2222"]}


@pytest.mark.parametrize("config, chief", [
    ({"cluster": CLUSTER, "task": {"type": "worker", "index": 0}}, True),
    ({"cluster": CLUSTER, "task": {"type": "worker", "index": 1}}, False),
    ({"cluster": {**CLUSTER, "chief": ["10.0.0.9:2222"]}, "task": {"type": "worker", "index": 0}}, False),
    ({"cluster": {**CLUSTER, "chief": ["10.0.0.9:2222"]}, "task": {"type": "chief", "index": 0}}, True),
])
def test_the_chief_is_the_chief_task_or_worker_zero(config: dict, chief: bool) -> None:
    assert is_chief(config) is chief


def test_non_chief_workers_write_beside_the_real_path() -> None:
    assert worker_temp_path(Path("/v/cache/abc/model.keras"), 3) == Path("/v/cache/abc/workertemp_3/model.keras")


def test_peer_timeouts_come_from_the_environment() -> None:
    assert PeerTimeouts.from_environ({}) == PeerTimeouts(startup=600.0, heartbeat=10.0)
    assert PeerTimeouts.from_environ({"TFSPEC_STARTUP_TIMEOUT": "30", "TFSPEC_PEER_TIMEOUT": "2.5"}) == PeerTimeouts(
        startup=30.0, heartbeat=2.5)
    with pytest.raises(WorkerEnvironmentError, match="TFSPEC_PEER_TIMEOUT is not a number of seconds: 'soon'"):
        PeerTimeouts.from_environ({"TFSPEC_PEER_TIMEOUT": "soon"})
    with pytest.raises(WorkerEnvironmentError, match="TFSPEC_STARTUP_TIMEOUT must be positive"):
        PeerTimeouts.from_environ({"TFSPEC_STARTUP_TIMEOUT": "0"})


def test_worker_mode_runs_only_the_training_part_of_the_plan() -> None:
    plan = compile_spec(EXAMPLE).plan
    assert plan is not None and len(plan.steps) > 2
    assert [s.id for s in training_steps(plan)] == ["data", "train"]


def test_a_peer_failure_names_the_lost_worker_and_what_to_do() -> None:
    # The text TensorFlow 2.21 raised in a surviving chief when worker 1 was killed (tests above make it for real).
    text = ("Graph execution error:\n\nDetected at node CollectiveReduceV2 defined at (most recent call last):\n"
            "Collective ops is aborted by: Error reported from /job:worker/task:1: The following tasks are unhealthy "
            "(stopped sending heartbeats):\n/job:worker/replica:0/task:1\n")
    distributed = Distributed("multi_worker_mirrored", None, 2, ("/device:CPU:0",), chief=True, task_index=0, workers=2,
                              tf_config={"cluster": CLUSTER, "task": {"type": "worker", "index": 0}})
    message = peer_failure_message(distributed, RuntimeError(text))
    assert message.startswith("training.distribution: worker 0 lost its peer worker 1 (10.0.0.2:2222): Collective ops "
                              "is aborted by: Error reported from /job:worker/task:1: The following tasks are unhealthy")
    assert message.endswith("restart every worker to resume from the last BackupAndRestore checkpoint")


def test_default_and_one_device_mirrored_strategies() -> None:
    default = strategy_for(plan_fit({"distribution": {"kind": "default"}}).distribution)
    assert (default.replicas, default.chief, default.global_batch_size(32)) == (1, True, 32)
    tf, _ = import_tf()
    expected = tuple(d.name for d in tf.config.list_logical_devices("GPU")) or ("/device:CPU:0",)
    mirrored = strategy_for(plan_fit({"distribution": {"kind": "mirrored"}}).distribution)  # every GPU, or the CPU
    assert mirrored.devices == expected and mirrored.replicas == len(expected)
    assert mirrored.describe()["kind"] == "mirrored"


def test_a_multi_worker_spec_without_a_cluster_trains_as_one_local_worker_without_collectives() -> None:
    # one CPU replica and no peer: the default strategy computes the same steps without
    # MultiWorkerMirroredStrategy's per-step collectives (5 x faster on the digits example)
    tf, _ = import_tf()
    local = strategy_for(plan_fit({"distribution": {"kind": "multi_worker_mirrored"}}).distribution, environ={})
    assert (local.kind, local.replicas, local.workers, local.chief, local.tf_config) == (
        "multi_worker_mirrored", 1, 1, True, None)
    assert not isinstance(local.strategy, tf.distribute.MultiWorkerMirroredStrategy)


def test_only_the_chief_keeps_a_saved_model(tmp_path: Path) -> None:
    _, keras = import_tf()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    chief = Distributed("multi_worker_mirrored", None, 2, (), chief=True, task_index=0, workers=2)
    other = Distributed("multi_worker_mirrored", None, 2, (), chief=False, task_index=1, workers=2)
    assert chief.save_model(model, tmp_path / "model.keras") == tmp_path / "model.keras"
    assert other.save_model(model, tmp_path / "model.keras") is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.keras"]
    loaded = keras.models.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(loaded.predict(np.ones((1, 4)), verbose=0), model.predict(np.ones((1, 4)), verbose=0))


def test_worker_mode_refuses_a_spec_that_does_not_train_on_workers(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    # a one-worker cluster may train with the default strategy; a plan run by two workers may not
    spec.write_text(WORKERS_SPEC.read_text("utf-8").replace(
        "{kind: multi_worker_mirrored, workers: 2, communication: ring}", "{kind: default}").replace(
        "    workers: 2\n", "    workers: 1\n"), encoding="utf-8")
    with pytest.raises(StepError) as raised:
        run_worker(run_inputs_from_compiled(compile_spec(spec)), environ={"JOB_COMPLETION_INDEX": "0", "TFSPEC_WORKER_HOSTS": "a:1,b:1"})
    assert re.fullmatch(rf"{re.escape(str(spec))}:\d+:\d+: training\.distribution\.kind: 2 workers train one model "
                        r"together only with multi_worker_mirrored, this spec asks for default \(hint: .*\)",
                        str(raised.value))


def test_worker_mode_refuses_a_cluster_of_the_wrong_size() -> None:
    with pytest.raises(StepError, match=r"training\.distribution\.workers: the spec trains on 2 workers, the cluster "
                                        r"in the environment has 3"):
        run_worker(run_inputs_from_compiled(compile_spec(WORKERS_SPEC)), environ={"JOB_COMPLETION_INDEX": "0", "TFSPEC_WORKER_HOSTS": "a:1,b:1,c:1"})


def test_worker_mode_without_a_cluster_environment_exits_2(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TF_CONFIG", "JOB_COMPLETION_INDEX", "TFSPEC_WORKER_HOSTS"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(cli, ["run", str(WORKERS_SPEC), "--worker"], env=clean_env())
    assert result.exit_code == 2, result.output
    assert ("error: worker mode needs TF_CONFIG, or JOB_COMPLETION_INDEX with TFSPEC_WORKER_HOSTS (set by the "
            "gpu_cluster manifests)") in result.output
