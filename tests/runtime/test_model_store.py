"""The model store against local object-storage servers on 127.0.0.1: moto's S3-compatible server mode
and gcp-storage-emulator (GCS's JSON API), each stopped at the end of its test.

The store logic talks to a real S3 REST endpoint: uploads appear only once complete (saved_model.pb is
copied last, the temporary prefix is not a version), versions are never overwritten with other content,
pruning keeps the newest N and the named ones, and ``tfspec run`` refuses to push when a label names a
version the store lacks.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime_testing import FAST_SPEC, invoke
from storage_emulators import gcs_server, s3_server
from tfspec.runtime.model_store import (LAST_FILE, MARKER, PinnedVersions, S3Store, StoreError, open_store,
                                        prune_versions, upload_version, versions_in)

BUCKET = "models"


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh S3-compatible server on 127.0.0.1 with an empty bucket; stopped at the end."""
    with s3_server(monkeypatch, BUCKET) as url:
        yield url


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh in-memory GCS emulator on 127.0.0.1 with an empty bucket; stopped at the end."""
    with gcs_server(monkeypatch, BUCKET):
        yield


@pytest.fixture(params=["s3", "gs"])
def store(request: pytest.FixtureRequest) -> Any:
    """``<scheme>://models/digits`` on a local server of that scheme."""
    if request.param == "s3":
        return open_store(f"s3://{BUCKET}/digits", request.getfixturevalue("endpoint"))
    request.getfixturevalue("gcs")
    return open_store(f"gs://{BUCKET}/digits")


def _model_dir(tmp_path: Path, name: str = "model") -> Path:
    """A SavedModel-shaped folder (the store treats files as opaque)."""
    folder = tmp_path / name
    (folder / "variables").mkdir(parents=True)
    (folder / LAST_FILE).write_bytes(b"graph " + name.encode())
    (folder / "variables" / "variables.index").write_bytes(b"index")
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(b"data")
    return folder


def _all_keys(store: Any) -> list[str]:
    """Every object of the bucket, as a second client sees it."""
    if isinstance(store, S3Store):
        return sorted(item["Key"] for item in store.client.list_objects_v2(Bucket=BUCKET).get("Contents", []))
    return sorted(blob.name for blob in store.bucket.client.list_blobs(BUCKET))


def test_an_upload_becomes_visible_with_saved_model_pb_last(store: Any, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    copies: list[str] = []
    copy = store.copy

    def recording_copy(source: str, destination: str) -> None:  # records the order, then copies for real
        copies.append(destination)
        copy(source, destination)

    monkeypatch.setattr(store, "copy", recording_copy)
    assert upload_version(store, _model_dir(tmp_path), 3, "fp-3") is True
    assert copies[-1] == f"3/{LAST_FILE}"  # what a loader reads first arrives last
    assert sorted(copies) == sorted(f"3/{k}" for k in (LAST_FILE, MARKER, "variables/variables.index",
                                                       "variables/variables.data-00000-of-00001"))
    # Nothing is left under the temporary prefix, and it never looked like a version.
    assert _all_keys(store) == sorted(f"digits/{k}" for k in copies)
    assert versions_in(store) == [3]


def test_a_version_is_never_overwritten_with_other_content(store: Any, tmp_path: Path) -> None:
    assert upload_version(store, _model_dir(tmp_path, "a"), 3, "fp-a")
    assert upload_version(store, _model_dir(tmp_path, "b"), 3, "fp-a") is False  # the same bundle: a no-op
    with pytest.raises(StoreError, match="version 3 is already in the store with other content"):
        upload_version(store, _model_dir(tmp_path, "c"), 3, "fp-c")
    assert store.read(f"3/{LAST_FILE}") == b"graph a"


def test_an_interrupted_upload_is_finished(store: Any, tmp_path: Path) -> None:
    upload_version(store, _model_dir(tmp_path), 4, "fp-4")
    store.delete([f"4/{LAST_FILE}"])  # as if the run was killed before the last copy
    assert versions_in(store) == []  # an incomplete version is not a version
    assert upload_version(store, _model_dir(tmp_path, "again"), 4, "fp-4") is True
    assert versions_in(store) == [4]


def test_pruning_keeps_the_newest_and_the_named_versions(store: Any, tmp_path: Path) -> None:
    for version in (1, 2, 3, 4, 5):
        upload_version(store, _model_dir(tmp_path, f"v{version}"), version, f"fp-{version}")
    assert prune_versions(store, keep=2, protected=[2]) == [1, 3]
    assert versions_in(store) == [2, 4, 5]
    assert not [k for k in _all_keys(store) if k.startswith(("digits/1/", "digits/3/"))]


def test_pinned_versions_give_each_version_a_folder_of_its_own(store: Any, tmp_path: Path) -> None:
    """The kserve target's layout: version N under ``N/N/``, so a storageUri of ``<base>/N/`` holds only N."""
    pinned = PinnedVersions(store)
    for version in (3, 30, 31):
        assert upload_version(pinned, _model_dir(tmp_path, f"v{version}"), version, f"fp-{version}") is True
    assert upload_version(pinned, _model_dir(tmp_path, "again"), 3, "fp-3") is False  # the same bundle: a no-op
    assert versions_in(pinned) == [3, 30, 31]
    keys = _all_keys(store)
    assert f"digits/3/3/{LAST_FILE}" in keys and f"digits/30/30/{LAST_FILE}" in keys
    assert not [k for k in keys if k.startswith("digits/3/") and not k.startswith("digits/3/3/")]
    assert not [k for k in keys if ".tfspec-upload-" in k]
    assert prune_versions(pinned, keep=2, protected=[]) == [3]
    assert not [k for k in _all_keys(store) if k.startswith("digits/3/")]
    assert versions_in(pinned) == [30, 31]


def test_other_schemes_are_rejected() -> None:
    with pytest.raises(StoreError, match="hdfs:// is not supported"):
        open_store("hdfs://bucket/digits")


def _spec(tmp_path: Path, endpoint: str, labels: str) -> Path:
    text = FAST_SPEC.read_text("utf-8").replace("epochs: 12", "epochs: 1")
    text = text[:text.index("targets:")] + f"""targets:
  - kind: tf_serving
    name: serving
    version_labels: {labels}
    model_store: {{base_path: "s3://{BUCKET}/digits", endpoint_url: "{endpoint}", keep_versions: 2}}
"""
    spec = tmp_path / "deploy.yaml"
    spec.write_text(text, encoding="utf-8")
    return spec


@pytest.mark.slow
def test_run_refuses_a_label_the_store_lacks_then_uploads(endpoint: str, tmp_path: Path) -> None:
    import tensorflow as tf

    spec = _spec(tmp_path, endpoint, "{stable: 2, canary: 3}")
    store = open_store(f"s3://{BUCKET}/digits", endpoint)
    refused = invoke("run", str(spec), "--dist-dir", str(tmp_path / "dist"), "--quiet")
    assert refused.exit_code == 2, refused.output
    assert "targets[0].model_store.base_path: the store lacks version(s) 2" in refused.stderr
    assert _all_keys(store) == []  # nothing was pushed
    # Version 2 was served before (another build); now the canary goes up beside it.
    upload_version(store, _model_dir(tmp_path, "v2"), 2, "older")
    result = invoke("run", str(spec), "--dist-dir", str(tmp_path / "dist"), "--quiet")
    assert result.exit_code == 0, result.output
    assert versions_in(store) == [2, 3]
    # What TF Serving would load is a complete SavedModel with its serving signature.
    download = tmp_path / "download" / "3"
    for key in store.keys("3"):
        target = download / key
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(store.read(f"3/{key}"))
    assert "serving_default" in tf.saved_model.load(str(download)).signatures
    # The image carries only the configuration.
    assert "COPY models/" not in (tmp_path / "dist" / "serving" / "Dockerfile").read_text("utf-8")
