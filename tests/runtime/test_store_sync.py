"""The s3:// store copy of a tf_serving Deployment, run for real: the rendered ``sync-store.sh`` with the
rendered containers' environment, the AWS CLI (the ``awscli`` package of the test extra; the pods run the
``amazon/aws-cli`` v2 image, whose ``s3api``/``s3 cp`` commands used here are the same) against moto's S3
server on 127.0.0.1, after ``tfspec run``'s own upload code filled the store.

The folder it leaves is then judged by TF Serving's file-system poller rule (tests/oracles/tf_serving.py):
only whole versions, under their number, nothing half-copied that the poller would take for a version.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import tfspec
from oracles import tf_serving as tfs
from storage_emulators import s3_server
from tfspec.runtime.model_store import LAST_FILE, open_store, prune_versions, upload_version

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "digits" / "deploy.yaml"
BUCKET = "models"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh S3-compatible server on 127.0.0.1 with an empty bucket; its endpoint URL."""
    with s3_server(monkeypatch, BUCKET) as url:
        yield url


def _aws() -> str:
    found = Path(sys.executable).parent / "aws"
    if not found.is_file():
        pytest.fail("the AWS CLI is not installed next to the test's Python (pip install -e '.[test]')", pytrace=False)
    return str(found)


def _rendered(tmp_path: Path, labels: dict[str, int] | None = None) -> dict[str, str]:
    tree = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    serving = next(t for t in tree["targets"] if t["name"] == "serving")
    serving["model_store"] = {"base_path": f"s3://{BUCKET}/digits", "credentials": {"kubernetes_secret": "digits-store"},
                              "endpoint_url": "http://minio.storage:9000", "region": "eu-west-1"}
    serving["version_labels"] = labels or {}
    if not labels:
        serving.pop("version_labels")
    spec = tmp_path / "spec" / "deploy.yaml"
    spec.parent.mkdir(parents=True, exist_ok=True)
    spec.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    result = tfspec.compile(str(spec), environ={})
    assert result.ok, "\n".join(str(d) for d in result.diagnostics)
    return result.files


def _deployment(files: dict[str, str], name: str = "deployment.yaml") -> tuple[dict[str, Any], dict[str, Any]]:
    """(the Deployment, its ConfigMap)."""
    deployment = yaml.safe_load(files[f"serving/kubernetes/{name}"])
    config = yaml.safe_load(files[f"serving/kubernetes/{name.replace('deployment', 'configmap')}"])
    return deployment, config


def _model(folder: Path, tag: str) -> Path:
    (folder / "variables").mkdir(parents=True)
    (folder / LAST_FILE).write_bytes(b"graph " + tag.encode())
    (folder / "variables" / "variables.index").write_bytes(b"index " + tag.encode())
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(b"data " + tag.encode())
    return folder


def _environment(container: dict[str, Any], tmp_path: Path, url: str) -> dict[str, str]:
    """The container's environment, with only the in-cluster addresses replaced by local ones."""
    env = {e["name"]: e["value"] for e in container["env"]}
    credentials = tmp_path / "credentials"
    credentials.write_text("[default]\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    env.update(SYNC_DEST=str(tmp_path / "models" / "digits"), STORE_ENDPOINT=url, HOME=str(tmp_path),
               AWS_SHARED_CREDENTIALS_FILE=str(credentials))
    # Nothing but the mounted file: the keys of the test process must not leak in.
    return {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
            "PATH": f"{Path(_aws()).parent}:{os.environ['PATH']}", **env}


def _script(config: dict[str, Any], tmp_path: Path) -> Path:
    script = tmp_path / "sync-store.sh"
    script.write_text(config["data"]["sync-store.sh"], encoding="utf-8")
    return script


def _tree(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _fill(url: str, tmp_path: Path, versions: list[int]) -> Any:
    store = open_store(f"s3://{BUCKET}/digits", url)
    for version in versions:
        upload_version(store, _model(tmp_path / f"bundle-{version}", str(version)), version, f"fp-{version}")
    return store


@pytest.mark.slow  # the AWS CLI starts a Python process per call: 10 s to a minute per test, with load
def test_the_init_container_copies_whole_versions_where_tf_serving_polls(endpoint: str, tmp_path: Path) -> None:
    store = _fill(endpoint, tmp_path, [1, 2, 3])
    # An upload still running: files of version 4 without its saved_model.pb, and a temporary prefix.
    store.client.put_object(Bucket=BUCKET, Key="digits/4/variables/variables.index", Body=b"index 4")
    store.client.put_object(Bucket=BUCKET, Key="digits/.tfspec-upload-5-abc/saved_model.pb", Body=b"graph 5")
    files = _rendered(tmp_path)
    deployment, config = _deployment(files)
    (initial,) = deployment["spec"]["template"]["spec"]["initContainers"]
    assert initial["command"] == ["/bin/sh", "/etc/tfserving/sync-store.sh"]
    script = _script(config, tmp_path)
    result = subprocess.run(["/bin/sh", str(script)], env=_environment(initial, tmp_path, endpoint),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    dest = tmp_path / "models" / "digits"
    assert sorted(os.listdir(dest)) == ["1", "2", "3"]  # no half version 4, no temporary folder
    assert _tree(dest / "3") == ["assets.extra/tfspec_upload.json", "saved_model.pb",
                                 "variables/variables.data-00000-of-00001",
                                 "variables/variables.index"]
    assert (dest / "3" / LAST_FILE).read_bytes() == b"graph 3"
    # What TF Serving then does with the folder, for the rendered models.config (base_path /models/digits).
    (model,) = tfs.parse_models_config(config["data"]["models.config"])
    assert model.base_path == "/models/digits"
    loaded = {model.name: tfs.aspired_versions(model, os.listdir(dest))}
    assert tfs.version_for_request([model], loaded, "digits") == 3

    # The next round: version 1 pruned from the store, version 5 uploaded, version 4 finished.
    prune_versions(store, 2, [])
    _fill(endpoint, tmp_path / "more", [5])
    store.client.put_object(Bucket=BUCKET, Key="digits/4/saved_model.pb", Body=b"graph 4")
    result = subprocess.run(["/bin/sh", str(script)], env=_environment(initial, tmp_path, endpoint),
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(os.listdir(dest)) == ["2", "3", "4", "5"]
    assert "version 1: removed" in result.stdout


@pytest.mark.slow
def test_a_labelled_deployment_copies_only_its_version(endpoint: str, tmp_path: Path) -> None:
    _fill(endpoint, tmp_path, [2, 3])
    files = _rendered(tmp_path, labels={"stable": 2, "canary": 3})
    for name, version in (("deployment.yaml", 2), ("deployment-canary.yaml", 3)):
        deployment, config = _deployment(files, name)
        (initial,) = deployment["spec"]["template"]["spec"]["initContainers"]
        folder = tmp_path / name
        folder.mkdir()
        result = subprocess.run(["/bin/sh", str(_script(config, folder))], env=_environment(initial, folder, endpoint),
                                capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout + result.stderr
        dest = folder / "models" / "digits"
        assert os.listdir(dest) == [str(version)]
        (model,) = tfs.parse_models_config(config["data"]["models.config"])
        loaded = {"digits": tfs.aspired_versions(model, os.listdir(dest))}
        assert tfs.version_for_request([model], loaded, "digits") == version


@pytest.mark.slow
def test_the_sync_container_picks_up_new_versions_and_stops_on_sigterm(endpoint: str, tmp_path: Path) -> None:
    _fill(endpoint, tmp_path, [1])
    files = _rendered(tmp_path)
    deployment, config = _deployment(files)
    keeper = deployment["spec"]["template"]["spec"]["containers"][1]
    assert keeper["name"] == "store-sync"
    env = _environment(keeper, tmp_path, endpoint)
    assert env["SYNC_ONCE"] == "0"
    env["SYNC_POLL_SECONDS"] = "1"
    process = subprocess.Popen(["/bin/sh", str(_script(config, tmp_path))], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, start_new_session=True)
    dest = tmp_path / "models" / "digits"
    try:
        deadline = time.monotonic() + 120
        while not (dest / "1").is_dir() and time.monotonic() < deadline:
            time.sleep(0.5)
        _fill(endpoint, tmp_path / "later", [2])
        while not (dest / "2").is_dir() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert sorted(os.listdir(dest)) == ["1", "2"]
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0  # the pod's termination does not wait for the grace period
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    shutil.rmtree(tmp_path / "models", ignore_errors=True)
