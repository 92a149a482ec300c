"""Multi-worker training for real: `tfspec run --worker` processes on 127.0.0.1, as an Indexed Job runs them."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pytest
from _distributed_support import WORKERS_SPEC, local_hosts, start_worker, stop_all

from tfspec.compiler.pipeline import compile_spec
from tfspec.base.tf_config import ENV_COMPLETION_INDEX, ENV_WORKER_HOSTS, tf_config_for, tf_config_from_environment

pytestmark = pytest.mark.slow

WORKER_TIMEOUT = 420


def _contract(hosts: list[str]) -> list[dict]:
    """What the Indexed Job contract derives for index 0 and 1 (the pods' environment)."""
    return [tf_config_from_environment({ENV_COMPLETION_INDEX: str(i), ENV_WORKER_HOSTS: ",".join(hosts)})
            for i in range(len(hosts))]


def test_two_workers_train_together_and_the_chief_writes_the_model(tmp_path: Path) -> None:
    hosts = local_hosts(2)
    cache, dist = tmp_path / "cache", tmp_path / "dist"
    workers = [start_worker(WORKERS_SPEC, i, hosts, cache, dist, tmp_path / "logs", "--quiet", "--json")
               for i in range(2)]
    try:
        codes = [w.wait(WORKER_TIMEOUT) for w in workers]
    finally:
        stop_all(workers)
    assert codes == [0, 0], "\n".join(w.err()[-3000:] for w in workers)
    results = [w.json() for w in workers]
    contract = _contract(hosts)
    assert contract == [tf_config_for(hosts, 0), tf_config_for(hosts, 1)]
    for index, (worker, result) in enumerate(zip(workers, results)):
        metrics = result["metrics"]
        assert result["task_index"] == index
        assert result["tf_config"] == contract[index]
        # What TensorFlow's cluster resolver read back inside the strategy is the contract's cluster.
        assert metrics["distribution"]["resolved"] == contract[index]
        assert metrics["replicas"] == 2
        assert metrics["distribution"]["global_batch_size"] == 2 * 32
        assert re.search(r"done: 2 replicas in sync", worker.err())
        assert result["ran"] == ["data", "train"]
    assert [r["chief"] for r in results] == [True, False]
    assert results[0]["dist"] == str(dist) and results[1]["dist"] is None
    # Only the chief's outputs are kept: the other worker's temporary cache is gone.
    assert not (cache / "workertemp_1").exists()
    assert sorted(p.name for p in dist.iterdir()) == ["history.json", "manifest.json", "metrics.json", "model.keras",
                                                     "worker.json"]
    plan = compile_spec(WORKERS_SPEC).plan
    assert plan is not None
    assert (cache / plan.step("train").fingerprint / "model.keras").is_file()
    assert not (cache / "checkpoints" / plan.step("train").fingerprint).exists()

    from tfspec.runtime.keras_io import load_model

    model = load_model(dist)
    from tfspec.runtime.datasets import load_dataset

    x_test, y_test = load_dataset(cache / plan.step("data").fingerprint).arrays("test")
    accuracy = float(np.mean(np.argmax(model.predict(x_test, verbose=0), axis=1) == y_test))
    assert accuracy >= 0.85
    assert abs(accuracy - results[0]["metrics"]["accuracy"]) < 1e-6

    # Both workers started again on the same cache: training is done, nobody trains twice.
    again = [start_worker(WORKERS_SPEC, i, hosts, cache, dist, tmp_path / "logs", "--quiet", "--json")
             for i in range(2)]
    try:
        assert [w.wait(120) for w in again] == [0, 0]
    finally:
        stop_all(again)
    assert [w.json()["ran"] for w in again] == [[], []]


def _spec_with_epochs(tmp_path: Path, epochs: int) -> Path:
    text = WORKERS_SPEC.read_text("utf-8").replace("epochs: 8", f"epochs: {epochs}")
    assert f"epochs: {epochs}" in text
    path = tmp_path / "digits_workers.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _wait_for(pattern: str, read, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, read()):
            return
        time.sleep(0.2)
    raise AssertionError(f"{pattern!r} did not appear within {timeout} s:\n{read()[-3000:]}")


def test_a_killed_worker_fails_the_other_fast_and_a_restart_resumes(tmp_path: Path) -> None:
    epochs = 12
    spec = _spec_with_epochs(tmp_path, epochs)
    hosts = local_hosts(2)
    cache, dist, logs = tmp_path / "cache", tmp_path / "dist", tmp_path / "logs"
    peer_timeout = ("--peer-timeout", "5")
    workers = [start_worker(spec, i, hosts, cache, dist, logs, *peer_timeout) for i in range(2)]
    try:
        # Epoch 5 begins once epochs 1-4 finished (and were backed up): kill worker 1 there.
        _wait_for(r"Epoch 5/12", workers[0].out, WORKER_TIMEOUT)
        workers[1].process.kill()
        killed_at = time.monotonic()
        code = workers[0].wait(120)
        detected_after = time.monotonic() - killed_at
    finally:
        stop_all(workers)
    assert code != 0
    assert detected_after < 60, f"the chief needed {detected_after:.0f} s to notice"
    error = workers[0].err()
    assert "lost its peer worker 1" in error and hosts[1] in error, error[-3000:]
    assert "restart every worker to resume from the last BackupAndRestore checkpoint" in error
    assert "Traceback" not in error
    assert not dist.exists()

    restarted = [start_worker(spec, i, hosts, cache, dist, logs, "--json", *peer_timeout) for i in range(2)]
    try:
        codes = [w.wait(WORKER_TIMEOUT) for w in restarted]
    finally:
        stop_all(restarted)
    assert codes == [0, 0], "\n".join(w.err()[-3000:] for w in restarted)
    for worker in restarted:
        metrics = worker.json()["metrics"]
        resumed = metrics["resumed_from_epoch"]
        assert 4 <= resumed < epochs, metrics
        assert metrics["epochs_run"] == epochs - resumed
        assert metrics["replicas"] == 2
    chief = restarted[0].json()["metrics"]
    assert chief["epochs"] == epochs  # the history covers the epochs of both runs
    assert chief["accuracy"] >= 0.85
    assert "resumed from the checkpoint after epoch" in restarted[0].err()


def test_a_worker_whose_peers_never_come_gives_up_with_a_clear_message(tmp_path: Path) -> None:
    hosts = local_hosts(2)
    start = time.monotonic()
    worker = start_worker(WORKERS_SPEC, 0, hosts, tmp_path / "cache", tmp_path / "dist", tmp_path / "logs",
                          "--quiet", "--startup-timeout", "5")
    try:
        code = worker.wait(180)
    finally:
        stop_all([worker])
    assert code != 0
    assert time.monotonic() - start < 150
    error = worker.err()
    assert f"worker 0 could not join the cluster {{'worker': {hosts!r}}} within 5 s" in error, error[-3000:]


def test_a_plain_run_of_a_cluster_spec_trains_as_one_local_worker(tmp_path: Path) -> None:
    import json
    import subprocess

    from _distributed_support import clean_env
    from tfspec_testing import tfspec_command

    completed = subprocess.run([*tfspec_command(), "run", str(WORKERS_SPEC), "--quiet", "--json", "--cache-dir",
                                str(tmp_path / "cache"), "--dist-dir", str(tmp_path / "dist")],
                               capture_output=True, text=True, timeout=WORKER_TIMEOUT, env=clean_env(), cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    train = next(s for s in json.loads(completed.stdout)["report"]["steps"] if s["id"] == "train")
    assert train["metrics"]["replicas"] == 1
    assert train["metrics"]["distribution"]["kind"] == "multi_worker_mirrored"
    assert train["metrics"]["distribution"]["tf_config"] is None  # no cluster: one local worker
    assert train["metrics"]["distribution"]["workers"] == 1
    assert train["metrics"]["accuracy"] >= 0.85


def _write_shards(folder: Path, shards: int) -> None:
    """The digits set as ``shards`` TFRecord files (64 float features, an int64 label)."""
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True)
    writers = [tf.io.TFRecordWriter(str(folder / f"part-{i:02d}.tfrecord")) for i in range(shards)]
    for n, (x, y) in enumerate(zip(digits.data.astype(np.float32), digits.target)):
        example = tf.train.Example(features=tf.train.Features(feature={
            "pixels": tf.train.Feature(float_list=tf.train.FloatList(value=x.tolist())),
            "digit": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(y)]))}))
        writers[n % shards].write(example.SerializeToString())
    for writer in writers:
        writer.close()


def _tfrecord_workers_spec(tmp_path: Path, shards: int) -> Path:
    _write_shards(tmp_path / "shards", shards)
    text = WORKERS_SPEC.read_text("utf-8").replace(
        "source: {kind: sklearn_digits}",
        "source: {kind: tfrecord, path: 'shards/*.tfrecord', features: {pixels: {dtype: float32, shape: [64]}}, "
        "label: digit}\n  num_classes: 10").replace("epochs: 8", "epochs: 3")
    path = tmp_path / "digits_shards.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("shards", [4, 1])
def test_two_workers_read_disjoint_shards_or_share_one_by_data(tmp_path: Path, shards: int) -> None:
    spec = _tfrecord_workers_spec(tmp_path, shards)
    hosts = local_hosts(2)
    workers = [start_worker(spec, i, hosts, tmp_path / "cache", tmp_path / "dist", tmp_path / "logs", "--json")
               for i in range(2)]
    try:
        codes = [w.wait(WORKER_TIMEOUT) for w in workers]
    finally:
        stop_all(workers)
    assert codes == [0, 0], "\n".join(w.err()[-3000:] for w in workers)
    reads = [w.json()["metrics"]["input"] for w in workers]
    everything = {f"shards/part-{i:02d}.tfrecord" for i in range(shards)}
    if shards >= 2:
        assert [r["sharding"] for r in reads] == ["file", "file"]
        first, second = (set(r["files"]) for r in reads)
        assert first and second and not first & second and first | second == everything
    else:
        assert [r["sharding"] for r in reads] == ["data", "data"]
        assert all(set(r["files"]) == everything for r in reads)
        assert "1 data file(s) for 2 workers" in workers[0].err() + workers[0].out()
    assert workers[0].json()["metrics"]["accuracy"] >= 0.8
