"""The remote step cache (``--store s3://...``) against moto's S3 server on 127.0.0.1: entries go up with
their completion marker last, an entry without it counts as absent, downloads are all or nothing, and a
bad store URL, missing credentials or a missing bucket is one line with exit code 2."""

from __future__ import annotations

import shutil
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime_testing import FAST_SPEC, invoke
from tfspec.runtime.cache import COMPLETE_MARKER, StepCache
from tfspec.runtime.remote_cache import (RemoteCacheError, RemoteStore, download_entry, open_remote, remote_has,
                                         upload_entry)

BUCKET = "tfspec-cache"
KEY_ENV, SECRET_ENV = "TFSPEC_TEST_STORE_KEY", "TFSPEC_TEST_STORE_SECRET"
FP = "ab" * 32


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 with one empty bucket; credentials in the variables named above only."""
    import boto3
    from moto.server import ThreadedMotoServer

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")  # no credentials from elsewhere
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv(KEY_ENV, "testing")
    monkeypatch.setenv(SECRET_ENV, "testing")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # the kernel picks a free port
    server.start()
    url = "http://{}:{}".format(*server.get_host_and_port())
    try:
        urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=30).close()
        boto3.client("s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing",
                     region_name="us-east-1").create_bucket(Bucket=BUCKET)
        yield url
    finally:
        server.stop()


def _location(endpoint: str, url: str = f"s3://{BUCKET}/team/digits") -> RemoteStore:
    return RemoteStore(url, endpoint, None, KEY_ENV, SECRET_ENV)


def _entry(tmp_path: Path) -> Path:
    """A finished local entry (as the executor leaves it)."""
    cache = StepCache(tmp_path / "made")
    with cache.writing(FP, "train") as scratch:
        (scratch / "model.keras").write_bytes(b"weights")
        (scratch / "logs").mkdir()
        (scratch / "logs" / "history.json").write_text("{}", "utf-8")
    return cache.path(FP)


def test_an_entry_goes_up_with_its_marker_last_and_comes_back_whole(endpoint: str, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_remote(_location(endpoint))
    order: list[str] = []
    put = store.put_file
    monkeypatch.setattr(store, "put_file", lambda relative, path: (order.append(relative), put(relative, path)))
    assert not remote_has(store, FP)
    upload_entry(store, FP, _entry(tmp_path))
    assert order[-1] == f"cache/{FP}/{COMPLETE_MARKER}"
    assert sorted(order[:-1]) == [f"cache/{FP}/logs/history.json", f"cache/{FP}/model.keras"]
    assert remote_has(store, FP)
    keys = store.client.list_objects_v2(Bucket=BUCKET)["Contents"]
    assert all(item["Key"].startswith(f"team/digits/cache/{FP}/") for item in keys)

    fresh = StepCache(tmp_path / "fresh")
    entry = download_entry(store, FP, "train", fresh)
    assert fresh.has(FP) and (entry / "model.keras").read_bytes() == b"weights"
    assert (entry / "logs" / "history.json").read_text("utf-8") == "{}"


def test_an_entry_without_its_marker_is_absent_and_never_downloaded(endpoint: str, tmp_path: Path) -> None:
    store = open_remote(_location(endpoint))
    store.put_file(f"cache/{FP}/model.keras", _entry(tmp_path) / "model.keras")  # a pod killed mid-upload
    assert not remote_has(store, FP)
    fresh = StepCache(tmp_path / "fresh")
    with pytest.raises(RemoteCacheError, match="is not in the store .*run that step first"):
        download_entry(store, FP, "train", fresh)
    assert not fresh.has(FP) and not (fresh.root / FP).exists()


@pytest.mark.parametrize("url, message", [
    ("http://bucket/prefix", "give s3://BUCKET/PREFIX"),
    ("s3://", "give s3://BUCKET/PREFIX"),
    ("gs://bucket/prefix", "give s3://BUCKET/PREFIX"),
    ("s3://no-such-bucket/prefix", "bucket 'no-such-bucket' cannot be used"),
])
def test_a_bad_store_is_one_line_and_exit_2(endpoint: str, tmp_path: Path, url: str, message: str) -> None:
    plan = _built_plan(tmp_path)
    result = invoke("run", "--plan", str(plan), "--step", "data", "--store", url, "--store-endpoint", endpoint,
                    "--store-key-env", KEY_ENV, "--store-secret-env", SECRET_ENV)
    assert result.exit_code == 2, result.output
    assert message in result.stderr and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1


def test_missing_credentials_are_one_line_and_exit_2(endpoint: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _built_plan(tmp_path)
    monkeypatch.delenv(SECRET_ENV)
    result = invoke("run", "--plan", str(plan), "--step", "data", "--store", f"s3://{BUCKET}/x",
                    "--store-endpoint", endpoint, "--store-key-env", KEY_ENV, "--store-secret-env", SECRET_ENV)
    assert result.exit_code == 2, result.output
    assert result.stderr == (f"error: --store s3://{BUCKET}/x: the variable {SECRET_ENV} is not set (the credentials "
                             f"are {KEY_ENV} and {SECRET_ENV})\n")
    monkeypatch.delenv(KEY_ENV)
    result = invoke("run", "--plan", str(plan), "--step", "data", "--store", f"s3://{BUCKET}/x",
                    "--store-endpoint", endpoint, "--store-key-env", KEY_ENV, "--store-secret-env", SECRET_ENV)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(f"error: --store s3://{BUCKET}/x: no credentials: set {KEY_ENV} and {SECRET_ENV}")


def test_store_needs_plan_and_step_or_publish(tmp_path: Path) -> None:
    plan = _built_plan(tmp_path)
    for args in (["--plan", str(plan), "--store", "s3://b/p"],
                 ["--plan", str(plan), "--step", "data", "--publish", "--store", "s3://b/p"],
                 ["--plan", str(plan), "--publish"]):
        result = invoke("run", *args)
        assert result.exit_code == 2 and "--store goes with --plan" in result.output, args


def test_a_step_runs_once_then_is_cached_from_the_store(endpoint: str, tmp_path: Path) -> None:
    plan = _built_plan(tmp_path)
    pod = tmp_path / "pod"
    pod.mkdir()
    shutil.copyfile(plan, pod / "plan.json")  # nothing but the plan: the rendered files stay behind
    args = ["run", "--plan", str(pod / "plan.json"), "--step", "data", "--store", f"s3://{BUCKET}/team/digits",
            "--store-endpoint", endpoint, "--store-key-env", KEY_ENV, "--store-secret-env", SECRET_ENV, "--quiet",
            "--cache-dir", str(tmp_path / "scratch-1")]
    first = invoke(*args)
    assert first.exit_code == 0, first.output
    assert "run     data" in first.stdout and "stored  data" in first.stdout
    args[-1] = str(tmp_path / "scratch-2")
    second = invoke(*args)
    assert second.exit_code == 0, second.output
    assert "cached  data (in the store)" in second.stdout and "run     data" not in second.stdout
    assert not (tmp_path / "scratch-2").exists()  # nothing downloaded for a stored step
    # the next step finds its input in the store and nowhere else
    train = invoke(*args[:3], "--step", "evaluate", *args[5:-1], str(tmp_path / "scratch-3"))
    assert train.exit_code == 2, train.output
    assert "step train: its entry" in train.stderr and "run that step first" in train.stderr


def _built_plan(tmp_path: Path) -> Path:
    spec = tmp_path / "spec" / "deploy.yaml"
    spec.parent.mkdir(exist_ok=True)
    shutil.copyfile(FAST_SPEC, spec)
    result = invoke("build", str(spec), "--out", str(tmp_path / "build"))
    assert result.exit_code == 0, result.output
    return tmp_path / "build" / "plan.json"


def test_a_store_error_mid_run_is_one_line(endpoint: str, tmp_path: Path) -> None:
    from tfspec.runtime.remote_cache import probe
    from tfspec.running import run_inputs_from_plan_file

    run = run_inputs_from_plan_file(_built_plan(tmp_path), rendered_files=False)
    store = open_remote(_location(endpoint))
    assert probe(run, "data", store) is False
    store.client.delete_bucket(Bucket=BUCKET)  # gone after the start-up check (a lifecycle rule, an operator)
    with pytest.raises(RemoteCacheError) as caught:
        probe(run, "data", store)
    assert str(caught.value) == (f"store s3://{BUCKET}/team/digits: ListObjectsV2 failed: NoSuchBucket "
                                 "The specified bucket does not exist")
