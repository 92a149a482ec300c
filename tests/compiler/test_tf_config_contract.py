"""The TF_CONFIG contract from the manifest side: what the rendered gpu_cluster files promise is what the
worker mode reads (the runtime side runs for real in tests/runtime/test_distributed_workers.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tfspec.commands.run import run as run_command
from tfspec.compiler.pipeline import compile_spec
from tfspec.base.tf_config import (ENV_COMPLETION_INDEX, ENV_TF_CONFIG, ENV_WORKER_HOSTS, TFJOB_PORT,
                                   ClusterConfigError, indexed_job_hosts, tf_config_for, tf_config_from_environment)
from tfspec_testing import ROOT, pod_environment

SPEC = ROOT / "tests" / "data" / "distributed" / "digits_workers.yaml"


def _compile(tmp_path: Path, operator: str, workers: int = 3) -> dict[str, str]:
    text = SPEC.read_text("utf-8").replace("operator: indexed_job", f"operator: {operator}")
    text = text.replace("workers: 2\n    gpus_per_worker", f"workers: {workers}\n    gpus_per_worker")
    text = text.replace("workers: 2, communication", f"workers: {workers}, communication")
    path = tmp_path / "digits.yaml"
    path.write_text(text, encoding="utf-8")
    result = compile_spec(path)
    assert result.ok, [d.format() for d in result.diagnostics]
    return result.files


def _docker_words(dockerfile: str, instruction: str) -> list[str]:
    """The exec-form words of ENTRYPOINT or CMD (backslash continuations joined)."""
    joined = re.sub(r"\\\n\s*", "", dockerfile)
    match = re.search(rf"^{instruction} (\[.*\])$", joined, re.MULTILINE)
    assert match, f"no exec-form {instruction} in the Dockerfile"
    return json.loads(match.group(1))


def _container(job: dict) -> dict:
    return job["spec"]["template"]["spec"]["containers"][0]


def test_indexed_job_pods_derive_the_cluster_the_manifest_describes(tmp_path: Path) -> None:
    files = _compile(tmp_path, "indexed_job", workers=3)
    job = yaml.safe_load(files["cluster/kubernetes/job.yaml"])
    service = yaml.safe_load(files["cluster/kubernetes/service.yaml"])
    assert job["spec"]["completionMode"] == "Indexed"
    workers = job["spec"]["completions"]
    assert workers == job["spec"]["parallelism"] == 3
    env = pod_environment(job, 0)  # what the kubelet gives pod 0 (downward API, $(VAR) expanded)
    assert ENV_TF_CONFIG not in env  # derived in the pod, not baked into the manifest
    name, subdomain = job["metadata"]["name"], job["spec"]["template"]["spec"]["subdomain"]
    assert subdomain == service["metadata"]["name"] and service["spec"]["clusterIP"] == "None"
    port = _container(job)["ports"][0]["containerPort"]
    assert service["spec"]["ports"][0]["port"] == port
    hosts = indexed_job_hosts(name, subdomain, workers, port)
    # Kubernetes names Indexed Job pod i "<job>-<i>"; with the subdomain that is the host in the list.
    assert hosts == [f"{name}-{i}.{subdomain}:{port}" for i in range(workers)]
    assert env[ENV_WORKER_HOSTS] == ",".join(hosts)
    for index in range(workers):
        pod_env = {**env, ENV_COMPLETION_INDEX: str(index)}
        config = tf_config_from_environment(pod_env)
        assert config == tf_config_for(hosts, index)
        assert config == {"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index}}


_POD_TEMPLATES = {
    "indexed_job": ("job.yaml", lambda doc: doc["spec"]["template"]),
    "tfjob": ("tfjob.yaml", lambda doc: doc["spec"]["tfReplicaSpecs"]["Worker"]["template"]),
    "jobset": ("jobset.yaml", lambda doc: doc["spec"]["replicatedJobs"][0]["template"]["spec"]["template"]),
}


@pytest.mark.parametrize("operator", ["jobset", "indexed_job", "tfjob"])
def test_the_training_image_runs_the_worker_mode_on_the_shared_volume(tmp_path: Path, operator: str) -> None:
    files = _compile(tmp_path, operator)
    dockerfile = files["cluster/Dockerfile"]
    entrypoint, cmd = _docker_words(dockerfile, "ENTRYPOINT"), _docker_words(dockerfile, "CMD")
    assert entrypoint[:2] == ["tfspec", "run"]
    filename, pod_template = _POD_TEMPLATES[operator]
    pod = pod_template(yaml.safe_load(files[f"cluster/kubernetes/{filename}"]))["spec"]
    container = pod["containers"][0]
    assert "command" not in container and "args" not in container  # the image's ENTRYPOINT and CMD run
    mount = next(m["mountPath"] for m in container["volumeMounts"] if m["name"] == "data")
    # The words parse as the real `tfspec run` command line: worker mode, cache and dist on the volume.
    context = run_command.make_context("run", entrypoint[2:] + cmd)
    assert context.params["worker"] is True
    assert str(context.params["cache_dir"]).startswith(mount + "/")
    assert str(context.params["dist_dir"]).startswith(mount + "/")
    assert context.params["spec"].startswith("/") and context.params["spec"].endswith("digits.yaml")
    spec_file = context.params["spec"].rsplit("/", 1)[1]
    assert f"cluster/spec/{spec_file}" in files


def test_tfjob_workers_read_the_tf_config_the_operator_injects(tmp_path: Path) -> None:
    files = _compile(tmp_path, "tfjob", workers=3)
    tfjob = yaml.safe_load(files["cluster/kubernetes/tfjob.yaml"])
    worker = tfjob["spec"]["tfReplicaSpecs"]["Worker"]
    assert list(tfjob["spec"]["tfReplicaSpecs"]) == ["Worker"]  # no Chief replica: worker 0 is the chief
    assert worker["replicas"] == 3
    container = worker["template"]["spec"]["containers"][0]
    assert container["name"] == "tensorflow"
    assert container["ports"][0]["containerPort"] == TFJOB_PORT
    # The operator's TF_CONFIG: lower-case replica type, one Service per replica, port 2222.
    hosts = [f"digits-cluster-worker-{i}.default.svc:{TFJOB_PORT}" for i in range(3)]
    for index in range(3):
        injected = json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": index},
                               "environment": "cloud"})
        config = tf_config_from_environment({ENV_TF_CONFIG: injected, ENV_COMPLETION_INDEX: "7"})
        assert config["cluster"] == {"worker": hosts}
        assert config["task"] == {"type": "worker", "index": index}  # TF_CONFIG wins over the Indexed Job path


@pytest.mark.parametrize("environ, message", [
    ({}, "worker mode needs TF_CONFIG, or JOB_COMPLETION_INDEX with TFSPEC_WORKER_HOSTS"),
    ({ENV_TF_CONFIG: "{not json"}, "TF_CONFIG is not a valid cluster description"),
    ({ENV_TF_CONFIG: json.dumps({"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}})},
     "task type must be worker or chief"),
    ({ENV_TF_CONFIG: json.dumps({"sparseCluster": {"worker": {"0": "a:1"}}, "task": {"type": "worker", "index": 0}})},
     "TF_CONFIG is not a valid cluster description: 'cluster'"),
    ({ENV_COMPLETION_INDEX: "2", ENV_WORKER_HOSTS: "a:1,b:1"}, "worker index 2 is outside the cluster of 2 workers"),
    ({ENV_COMPLETION_INDEX: "one", ENV_WORKER_HOSTS: "a:1,b:1"}, "JOB_COMPLETION_INDEX is not a number: 'one'"),
])
def test_unusable_worker_environments_are_refused_clearly(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ClusterConfigError, match=re.escape(message)):
        tf_config_from_environment(environ)
