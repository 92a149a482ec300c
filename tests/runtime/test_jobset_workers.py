"""Two workers trained exactly as the rendered JobSet's pods would run them, on 127.0.0.1.

The JobSet is rendered from the spec; each worker's environment is what the kubelet gives pod ``i`` of the
Job the JobSet controller creates (its env list with the downward-API ``jobset-name`` label resolved,
``$(VAR)`` expanded, ``JOB_COMPLETION_INDEX`` set) and its command is the training image's ENTRYPOINT and
CMD. Only what a laptop cannot provide is substituted: each worker's DNS name
``<jobset>-worker-0-<i>.<jobset>:<port>`` becomes ``127.0.0.1:<free port>``, the shared volume's mount path
a temporary folder, the spec folder of the image the rendered spec copy.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml
from _distributed_support import WORKERS_SPEC, clean_env, free_ports

from tfspec.compiler.pipeline import compile_spec
from tfspec.compiler.targets.gpu_cluster import SPEC_DIR
from tfspec.base.tf_config import ENV_COMPLETION_INDEX, ENV_WORKER_HOSTS, tf_config_for
from tfspec_testing import jobset_child_job, pod_environment, tfspec_command

pytestmark = pytest.mark.slow

WORKER_TIMEOUT = 300


def _docker_words(dockerfile: str, instruction: str) -> list[str]:
    """The exec-form words of ENTRYPOINT or CMD (backslash continuations joined)."""
    joined = re.sub(r"\\\n\s*", "", dockerfile)
    match = re.search(rf"^{instruction} (\[.*\])$", joined, re.MULTILINE)
    assert match, f"no exec-form {instruction} in the Dockerfile"
    return json.loads(match.group(1))


def _build(tmp_path: Path) -> Path:
    text = WORKERS_SPEC.read_text("utf-8").replace("operator: indexed_job", "operator: jobset")
    text = text.replace("epochs: 8", "epochs: 5")
    assert "operator: jobset" in text and "epochs: 5" in text
    spec = tmp_path / "digits.yaml"
    spec.write_text(text, encoding="utf-8")
    result = compile_spec(spec, environ={})
    assert result.ok, [d.format() for d in result.diagnostics]
    out = tmp_path / "build"
    for path, content in result.files.items():
        (out / path).parent.mkdir(parents=True, exist_ok=True)
        (out / path).write_text(content, encoding="utf-8")
    return out


def test_two_workers_train_on_the_jobsets_tf_config_contract(tmp_path: Path) -> None:
    build = _build(tmp_path)
    jobset = yaml.safe_load((build / "cluster/kubernetes/jobset.yaml").read_text("utf-8"))
    job = jobset_child_job(jobset)
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert "command" not in container and "args" not in container  # the image's ENTRYPOINT and CMD run
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "data")
    dockerfile = (build / "cluster/Dockerfile").read_text("utf-8")
    command = _docker_words(dockerfile, "ENTRYPOINT") + _docker_words(dockerfile, "CMD")
    assert command[0] == "tfspec"

    volume = tmp_path / "volume"
    local_command = [*tfspec_command(), *(word.replace(SPEC_DIR, str(build / "cluster" / "spec"))
                                          .replace(mount, str(volume)) for word in command[1:])]
    assert local_command.count("--worker") == 1

    environments = [pod_environment(job, index) for index in range(2)]
    name = jobset["metadata"]["name"]
    cluster_hosts = environments[0][ENV_WORKER_HOSTS].split(",")
    assert cluster_hosts == [f"{name}-worker-0-{i}.{name}:2222" for i in range(2)]
    local_hosts = [f"127.0.0.1:{port}" for port in free_ports(2)]
    to_local = dict(zip(cluster_hosts, local_hosts))

    logs = tmp_path / "logs"
    logs.mkdir()
    processes = []
    try:
        for index, env in enumerate(environments):
            assert env[ENV_COMPLETION_INDEX] == str(index)
            env = {**env, ENV_WORKER_HOSTS: ",".join(to_local[h] for h in env[ENV_WORKER_HOSTS].split(",")),
                   "HOME": str(tmp_path / "home")}  # the pod's HOME is its /tmp emptyDir
            with open(logs / f"worker{index}.out", "wb") as out, open(logs / f"worker{index}.err", "wb") as err:
                processes.append(subprocess.Popen(local_command, stdout=out, stderr=err, cwd=str(logs),
                                                  env={**clean_env(), **env}))
        codes = [p.wait(WORKER_TIMEOUT) for p in processes]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait(30)
    output = ["".join((logs / f"worker{i}.{kind}").read_text("utf-8", errors="replace") for kind in ("out", "err"))
              for i in range(2)]
    assert codes == [0, 0], "\n".join(text[-3000:] for text in output)
    for index, text in enumerate(output):
        role = "chief" if index == 0 else "worker"
        expected = tf_config_for(local_hosts, index)
        assert f"{role} {index} of 2: {json.dumps(expected, sort_keys=True)}" in text, text[-3000:]
        assert re.search(r"done: 2 replicas in sync", text)
    # The chief (index 0, whose success ends the Job) wrote the model to the shared volume's dist folder.
    dist = volume / "dist"
    assert json.loads((dist / "worker.json").read_text("utf-8"))["tf_config"] == tf_config_for(local_hosts, 0)
    metrics = json.loads((dist / "metrics.json").read_text("utf-8"))
    assert metrics["replicas"] == 2 and metrics["accuracy"] >= 0.8
    assert (dist / "model.keras").is_file()
    assert not (volume / "cache" / "workertemp_1").exists()
