"""Helpers of the distributed-training tests: free local ports, worker processes, logical CPU devices."""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from tfspec_testing import ROOT, tfspec_command

from tfspec.base.tf_config import ENV_COMPLETION_INDEX, ENV_TF_CONFIG, ENV_WORKER_HOSTS

DATA = ROOT / "tests" / "data" / "distributed"
WORKERS_SPEC = DATA / "digits_workers.yaml"

_CLUSTER_VARIABLES = (ENV_TF_CONFIG, ENV_COMPLETION_INDEX, ENV_WORKER_HOSTS, "TFSPEC_STARTUP_TIMEOUT",
                      "TFSPEC_PEER_TIMEOUT", "CI")


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that were free on 127.0.0.1 a moment ago."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def local_hosts(count: int) -> list[str]:
    return [f"127.0.0.1:{port}" for port in free_ports(count)]


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without any cluster variable (and without CI, so epochs are logged)."""
    env = {k: v for k, v in os.environ.items() if k not in _CLUSTER_VARIABLES}
    env.update(extra)
    return env


@dataclasses.dataclass
class Worker:
    """One ``tfspec run --worker`` process; stdout and stderr go to files under ``logs``."""

    index: int
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path

    def wait(self, timeout: float) -> int:
        return self.process.wait(timeout=timeout)

    def out(self) -> str:
        return self.stdout.read_text("utf-8", errors="replace")

    def err(self) -> str:
        return self.stderr.read_text("utf-8", errors="replace")

    def json(self) -> dict[str, Any]:
        return json.loads(self.out())

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=30)


def start_worker(spec: Path, index: int, hosts: list[str], cache: Path, dist: Path, logs: Path, *args: str,
                 env: dict[str, str] | None = None) -> Worker:
    """Start worker ``index`` the way an Indexed Job pod does: JOB_COMPLETION_INDEX + TFSPEC_WORKER_HOSTS."""
    logs.mkdir(parents=True, exist_ok=True)
    stdout = logs / f"worker{index}.{time.monotonic_ns()}.out"
    stderr = stdout.with_suffix(".err")
    environment = env if env is not None else clean_env()
    environment = {**environment, ENV_COMPLETION_INDEX: str(index), ENV_WORKER_HOSTS: ",".join(hosts)}
    command = [*tfspec_command(), "run", str(spec), "--worker", "--cache-dir", str(cache), "--dist-dir", str(dist),
               *args]
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=environment, cwd=str(logs))
    return Worker(index, process, stdout, stderr)


def stop_all(workers: list[Worker]) -> None:
    for worker in workers:
        worker.kill()


def run_with_logical_cpus(script: str, *args: str, timeout: float = 600) -> dict[str, Any]:
    """Run ``script`` in a fresh interpreter that first splits the CPU into 2 logical devices.

    Logical devices must be configured before TensorFlow initialises, which a shared pytest process
    cannot promise; the script prints one JSON object as its last stdout line.
    """
    prelude = (
        "from tfspec.runtime.tf import import_tf\n"
        "tf, keras = import_tf()\n"
        "cpu = tf.config.list_physical_devices('CPU')[0]\n"
        "tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)\n"
        "assert len(tf.config.list_logical_devices('CPU')) == 2\n"
    )
    completed = subprocess.run([sys.executable, "-c", prelude + script, *args], capture_output=True, text=True,
                               timeout=timeout, env=clean_env(), cwd=str(ROOT))
    assert completed.returncode == 0, completed.stderr[-4000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])
