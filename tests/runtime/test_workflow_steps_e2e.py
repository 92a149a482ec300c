"""The proof of the Argo workflow without a cluster: its pods' commands, one process per step.

Each step of the digits plan runs as ``tfspec run --plan plan.json --step ID --store s3://...`` in a process
of its own whose working folder holds nothing but ``plan.json`` (what the WorkflowTemplate's ConfigMap
mounts), in the DAG's order; moto's S3 server on 127.0.0.1 is the only thing the processes share. A last
process publishes the dist to the store. The published dist must carry the same metrics as a local
``tfspec run`` of the same spec and byte-identical deterministic files (:data:`DETERMINISTIC`); the other
files differ for the reasons in :data:`DIFFERING`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

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
# Metrics measured by the clock (latency) are compared by neither run; the SavedModel's sizes follow
# saved_model.pb (see above), so they differ by the length of those function names.
TIMED = {"latency_ms", "latency_ms_p50", "latency_ms_p95"}
DIFFERING_METRICS = {
    "export.size_bytes", "serving.bundle.size_bytes",
    *(f"{where}.{size}" for where in ("serving.verify.metrics", "targets.serving.metrics")
      for size in ("size_bytes", "size_kb", "gzip_bytes")),
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


def _pod(tmp_path: Path, name: str, plan: Path, command: list[str], endpoint: str) -> dict[str, Any]:
    """One process in an empty folder holding only plan.json, as a pod of the workflow runs it."""
    work = tmp_path / "pods" / name
    scratch, home = work / "tmp", work / "home"  # the pod's writable emptyDir volumes
    scratch.mkdir(parents=True)
    home.mkdir()
    shutil.copyfile(plan, work / "plan.json")
    env = {key: value for key, value in os.environ.items() if not key.startswith("AWS_")}
    env.update({KEY_ENV: "testing", SECRET_ENV: "testing", "AWS_DEFAULT_REGION": "us-east-1", "TMPDIR": str(scratch),
                "HOME": str(home), "AWS_EC2_METADATA_DISABLED": "true",
                "TF_CPP_MIN_LOG_LEVEL": "2"})
    store_args = ["--store", f"s3://{BUCKET}/{PREFIX}", "--store-endpoint", endpoint, "--store-key-env", KEY_ENV,
                  "--store-secret-env", SECRET_ENV]
    done = subprocess.run([str(TFSPEC), "run", "--plan", "plan.json", *command, *store_args, "--quiet", "--json"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (name, done.stdout[-3000:], done.stderr[-3000:])
    # the scratch cache is gone with the process: the store holds everything the step made
    assert sorted(p.name for p in work.iterdir()) == ["home", "plan.json", "tmp"] and not any(scratch.iterdir()), name
    return json.loads(done.stdout)


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
    spec.write_text(SPEC_TEXT, "utf-8")
    built = invoke("build", str(spec), "--out", str(tmp_path / "build"))
    assert built.exit_code == 0, built.output
    plan_file = tmp_path / "build" / "plan.json"
    plan = Plan.from_json(plan_file.read_bytes())

    # the workflow's DAG, walked in the plan's (topological) order, one process per step
    steps = [s for s in plan.steps if s.kind != "render"]
    for step in steps:
        outcome = _pod(tmp_path, step.id, plan_file, ["--step", step.id], store)
        assert outcome["status"] == "ran", step.id
    again = _pod(tmp_path, "again", plan_file, ["--step", "train"], store)  # a retried pod: nothing re-runs
    assert again["status"] == "cached"
    published = _pod(tmp_path, "publish", plan_file, ["--publish"], store)
    assert published["url"] == f"s3://{BUCKET}/{PREFIX}/dist/digits/"
    assert [s["id"] for s in published["report"]["steps"] if s["cached"]] == [s.id for s in plan.steps]

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
    local_metrics = _flat({s["id"]: s["metrics"] for s in local_report["steps"]} | {"targets": local_report["targets"]})
    remote_metrics = _flat({s["id"]: s["metrics"] for s in remote_report["steps"]} | {"targets": remote_report["targets"]})
    assert local_metrics.keys() == remote_metrics.keys()
    assert {k for k in local_metrics if local_metrics[k] != remote_metrics[k]} == DIFFERING_METRICS
    assert remote_report["passed"] is True and any(k.endswith(".accuracy") for k in local_metrics)


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
