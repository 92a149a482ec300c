"""The proof of the Argo workflow without a cluster: its pods' commands, one process per step.

``tfspec build`` renders the WorkflowTemplate of the digits spec (its ``workflow`` section points at moto's
S3 server on 127.0.0.1); each DAG task's command, read from the rendered template, runs in a process of its
own whose working folder holds nothing but the ``plan.json`` of the rendered ConfigMap, in the DAG's order.
The store is the only thing the processes share; the last task publishes the dist to it. The published
dist must carry the same metrics as a local ``tfspec run`` of the same spec and byte-identical
deterministic files (:data:`DETERMINISTIC`); the other files differ for the reasons in :data:`DIFFERING`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from runtime_testing import FAST_SPEC, invoke, read_json
from tfspec.plan import Plan

pytestmark = pytest.mark.slow

BUCKET = "tfspec-workflows"
PREFIX = "team/digits"
KEY_ENV, SECRET_ENV = "TFSPEC_TEST_STORE_KEY", "TFSPEC_TEST_STORE_SECRET"
TFSPEC = Path(sys.executable).parent / "tfspec"

# The digits example, small: one int8 phone target and the served SavedModel, a few epochs.
SPEC_TEXT = FAST_SPEC.read_text("utf-8").replace("epochs: 12", "epochs: 4").replace(
    "  - kind: tflite\n    name: float\n    quantization: {kind: none}\n", "")

WORKFLOW = """\
workflow:
  image: registry.example.com/ml/digits-cluster:3
  store: s3://{bucket}/{prefix}
  endpoint_url: {endpoint}
  credentials: {{access_key_id_env: {key_env}, secret_access_key_env: {secret_env}}}
"""

# Files of the dist that the same spec and the same tool versions make byte for byte, wherever each step ran.
DETERMINISTIC = (
    "android/digits_model/src/main/assets/digits.tflite",
    "android/digits_model/src/main/assets/labels.txt",
    "android/digits_model/src/main/assets/model_info.json",
    "serving/models/digits/3/variables/variables.data-00000-of-00001",
    "serving/models/digits/3/variables/variables.index",
    "serving/models/digits/3/assets.extra/tf_serving_warmup_requests",
)
# Files that differ, and why:
DIFFERING = {
    "report.json": "step durations and each step's `cached` flag (a pod that finds an entry in the store "
                   "reports it cached; the publish step reports every step cached)",
    "report.html": "drawn from report.json (durations, cache flags)",
    "manifest.json": "lists the sha256 of the files above, and the local dist also lists the rendered files",
    "plan.json": "its `root` is relative to the dist folder, which differs",
    "serving/models/digits/3/saved_model.pb": "TensorFlow names the traced functions with a process-wide "
                                              "counter (``__inference_..._<uid>``): it depends on what the "
                                              "process traced before",
    "serving/models/digits/3/fingerprint.pb": "hashes saved_model.pb",
}
# Metrics measured by the clock (latency) are compared by neither run. These may differ: the SavedModel's
# sizes follow saved_model.pb (see above); the gzip size of the Keras model file follows ``model.keras``,
# whose metadata records when it was saved (``date_saved``), so its compressed size can move by a byte.
# clock readings (a phase's seconds) and the machine's load average while latencies were measured
TIMED = {"latency_ms", "latency_ms_p50", "latency_ms_p95", "seconds", "latency_load_1m"}
MAY_DIFFER_METRICS = {
    "export.size_bytes", "serving.bundle.size_bytes",
    *(f"{where}.{size}" for where in ("serving.verify.metrics", "targets.serving.metrics")
      for size in ("size_bytes", "size_kb", "gzip_bytes")),
    "evaluate.stages.0.gzip_bytes",
    *(f"{where}.baseline.gzip_bytes" for where in ("evaluate", "android.verify", "serving.verify")),
}


@pytest.fixture
def store(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 with an empty bucket; the processes get the credentials by variable name."""
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        server.stop()


def _pod(tmp_path: Path, name: str, plan_text: str, command: list[str]) -> str:
    """One process in an empty folder holding only plan.json, as a pod of the workflow runs it; its stdout."""
    work = tmp_path / "pods" / name
    scratch, home = work / "tmp", work / "home"  # the pod's writable emptyDir volumes
    scratch.mkdir(parents=True)
    home.mkdir()
    (work / "plan.json").write_text(plan_text, "utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({KEY_ENV: "testing", SECRET_ENV: "testing", "AWS_DEFAULT_REGION": "us-east-1", "TMPDIR": str(scratch),
                "HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true",
                "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert command[:4] == ["tfspec", "run", "--plan", "/plan/plan.json"], command
    # the pod's command, but for where plan.json is mounted
    done = subprocess.run([str(TFSPEC), "run", "--plan", "plan.json", *command[4:]],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (name, done.stdout[-3000:], done.stderr[-3000:])
    # the scratch cache is gone with the process: the store holds everything the step made
    assert sorted(p.name for p in work.iterdir()) == ["home", "plan.json", "tmp"] and not any(scratch.iterdir()), name
    return done.stdout


def _workflow(build: Path) -> tuple[str, list[tuple[str, list[str], list[str]]]]:
    """The rendered ConfigMap's plan.json and each DAG task: (name, dependencies, its container's command)."""
    config_map = yaml.safe_load((build / "workflow" / "configmap.yaml").read_text("utf-8"))
    template = yaml.safe_load((build / "workflow" / "workflowtemplate.yaml").read_text("utf-8"))
    templates = {t["name"]: t for t in template["spec"]["templates"]}
    tasks = []
    for task in templates["plan"]["dag"]["tasks"]:
        container = templates[task["template"]]["container"]
        command = container["command"] + container["args"]
        for parameter in task.get("arguments", {}).get("parameters", []):
            command = [word.replace("{{inputs.parameters.%s}}" % parameter["name"], parameter["value"])
                       for word in command]
        tasks.append((task["name"], task.get("dependencies", []), command))
    return config_map["data"]["plan.json"], tasks


def _download(endpoint: str, prefix: str, into: Path) -> None:
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing", aws_secret_access_key="testing",
                          region_name="us-east-1")
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix + "/"):
        for item in page.get("Contents", []):
            target = into / item["Key"][len(prefix) + 1:]
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(BUCKET, item["Key"], str(target))


def test_one_process_per_step_through_the_store_matches_a_local_run(store: str, tmp_path: Path) -> None:
    spec = tmp_path / "spec" / "deploy.yaml"
    spec.parent.mkdir()
    spec.write_text(SPEC_TEXT + WORKFLOW.format(bucket=BUCKET, prefix=PREFIX, endpoint=store, key_env=KEY_ENV,
                                                secret_env=SECRET_ENV), "utf-8")
    built = invoke("build", str(spec), "--out", str(tmp_path / "build"))
    assert built.exit_code == 0, built.output
    plan_text, tasks = _workflow(tmp_path / "build")
    plan = Plan.from_json(plan_text)
    assert [name for name, _, _ in tasks] == [s.id.replace(".", "-") for s in plan.steps if s.kind != "render"] + \
        ["publish"]

    # the workflow's DAG in its (topological) order, one process per task
    done: set[str] = set()
    for name, dependencies, command in tasks:
        assert set(dependencies) <= done, name
        out = _pod(tmp_path, name, plan_text, command)
        if name == "publish":
            assert f"published s3://{BUCKET}/{PREFIX}/dist/digits/" in out
        else:
            step = command[command.index("--step") + 1]
            assert f"run     {step}" in out and f"stored  {step}" in out, out
        done.add(name)
    again = _pod(tmp_path, "again", plan_text, tasks[1][2])  # a retried pod: nothing runs again
    assert "cached  train (in the store)" in again and "run " not in again

    local = invoke("run", str(spec), "--dist-dir", str(tmp_path / "local"), "--cache-dir", str(tmp_path / "cache"),
                   "--quiet", "--json")
    assert local.exit_code == 0, local.output
    remote = tmp_path / "remote"
    _download(store, f"{PREFIX}/dist/digits", remote)

    # the published dist: what the steps made (the rendered files stay in the build folder / Git)
    local_files = {p.relative_to(tmp_path / "local").as_posix() for p in (tmp_path / "local").rglob("*") if p.is_file()}
    remote_files = {p.relative_to(remote).as_posix() for p in remote.rglob("*") if p.is_file()}
    rendered = {f for s in plan.steps if s.kind == "render" for f in s.params.files}
    assert remote_files <= local_files and local_files - remote_files <= rendered
    assert set(DETERMINISTIC) | set(DIFFERING) <= remote_files
    for name in DETERMINISTIC:
        assert (remote / name).read_bytes() == (tmp_path / "local" / name).read_bytes(), name
    assert read_json(remote / "manifest.json")["files"].keys() == remote_files - {"manifest.json"}

    # the same metrics, step by step and per target, but for the clock's and those of the differing files
    local_report, remote_report = read_json(tmp_path / "local" / "report.json"), read_json(remote / "report.json")
    assert all(step["cached"] for step in remote_report["steps"])  # publishing runs nothing
    local_metrics, remote_metrics = (
        _flat({s["id"]: s["metrics"] for s in report["steps"]} | {"targets": report["targets"]})
        for report in (local_report, remote_report))
    assert local_metrics.keys() == remote_metrics.keys()
    assert {k for k in local_metrics if local_metrics[k] != remote_metrics[k]} <= MAY_DIFFER_METRICS
    accuracies = [k for k in local_metrics if k.endswith(".accuracy")]
    assert len(accuracies) >= 4 and all(local_metrics[k] == remote_metrics[k] for k in accuracies)
    assert remote_report["passed"] is True


def _flat(value: Any, prefix: str = "") -> dict[str, Any]:
    """``{"a.b.0.c": leaf}``, without the timed keys."""
    if isinstance(value, dict):
        items = [(k, v) for k, v in value.items() if k not in TIMED]
    elif isinstance(value, list):
        items = list(enumerate(value))
    else:
        return {prefix: value}
    out: dict[str, Any] = {}
    for key, item in items:
        out.update(_flat(item, f"{prefix}.{key}" if prefix else str(key)))
    return out
