"""Where the build finds a target's released model, and what goes into the plan (no TensorFlow here).

A model store is listed on local servers of both kinds — moto's S3 server and gcp-storage-emulator (GCS's
JSON API), each on 127.0.0.1 and stopped at the end of its test —, filled with SavedModel-shaped versions by
the runtime's own upload code: the build picks the newest *complete* version below the spec's (or the one
named), records each file's name, size and ETag/generation in the ``released`` step, downloads nothing, and
the fingerprints follow the store. Local released models (a dist folder, a SavedModel, a ``.tflite``) are
digested like every other input. The upload waits for every gate of the run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from storage_emulators import free_port, gcs_server, s3_server
from tfspec.cli import cli
from tfspec.runtime.model_store import LAST_FILE, PinnedVersions, open_store, upload_version

BUCKET = "models"

SPEC = """\
api_version: tfspec/v1
name: digits
version: {version}
data:
  source: {{kind: sklearn_digits}}
model:
  kind: sequential
  input_shape: [64]
  layers:
    - {{type: dense, name: logits, units: 10, activation: softmax}}
training:
  epochs: 1
targets:
{targets}
"""

SERVING = """\
  - kind: {kind}
    name: serving
    model_store: {{base_path: "{base}"{endpoint}}}
    released: {released}
    gates: {{vs_released: {{max_accuracy_drop: 0.0}}}}
"""


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh S3-compatible server on 127.0.0.1 with an empty bucket; its endpoint URL."""
    with s3_server(monkeypatch, BUCKET) as url:
        yield url


@pytest.fixture
def gcs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh in-memory GCS emulator on 127.0.0.1 with an empty bucket (``STORAGE_EMULATOR_HOST``)."""
    with gcs_server(monkeypatch, BUCKET):
        yield


@pytest.fixture(params=["s3-tf_serving", "gs-kserve"])
def store(request: pytest.FixtureRequest) -> dict[str, Any]:
    """A model store on a local server: S3 for a tf_serving target, GCS for a kserve one (``N/N/`` layout)."""
    if request.param == "s3-tf_serving":
        endpoint = request.getfixturevalue("s3")
        return {"kind": "tf_serving", "base": f"s3://{BUCKET}/digits", "endpoint": f', endpoint_url: "{endpoint}"',
                "client": open_store(f"s3://{BUCKET}/digits", endpoint)}
    request.getfixturevalue("gcs")
    return {"kind": "kserve", "base": f"gs://{BUCKET}/digits", "endpoint": "",
            "client": PinnedVersions(open_store(f"gs://{BUCKET}/digits"))}


def _version_dir(tmp_path: Path, name: str, complete: bool = True) -> Path:
    """A SavedModel-shaped folder (the store and the build treat its files as opaque)."""
    folder = tmp_path / "versions" / name
    (folder / "variables").mkdir(parents=True)
    if complete:
        (folder / LAST_FILE).write_bytes(b"graph " + name.encode())
    (folder / "variables" / "variables.index").write_bytes(b"index " + name.encode())
    return folder


def _put(store: dict[str, Any], tmp_path: Path, version: int, content: str | None = None) -> None:
    upload_version(store["client"], _version_dir(tmp_path, content or f"v{version}"), version, content or f"v{version}")


def _spec(tmp_path: Path, store: dict[str, Any], version: int, released: str = "{kind: model_store}") -> Path:
    text = SPEC.format(version=version, targets=SERVING.format(kind=store["kind"], base=store["base"],
                                                             endpoint=store["endpoint"], released=released))
    path = tmp_path / "deploy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _build(spec: Path) -> tuple[int, str, dict[str, Any] | None]:
    """``tfspec build`` in this process: exit code, stderr, and the plan it wrote (None on an error)."""
    out = spec.parent / "build"
    result = CliRunner().invoke(cli, ["build", str(spec), "--out", str(out)], catch_exceptions=False)
    plan = out / "plan.json"
    return result.exit_code, result.stderr, json.loads(plan.read_text("utf-8")) if result.exit_code == 0 else None


def _steps(plan: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in plan["steps"]}


def test_the_newest_complete_version_below_this_one_is_the_released_one(store: dict[str, Any], tmp_path: Path) -> None:
    for version in (1, 2, 4):
        _put(store, tmp_path, version)
    store["client"].put_file("3/variables/variables.index", _version_dir(tmp_path, "v3", complete=False)
                             / "variables" / "variables.index")  # a version still uploading: no saved_model.pb
    code, stderr, plan = _build(_spec(tmp_path, store, version=4))
    assert code == 0, stderr
    released = _steps(plan)["serving.released"]["params"]
    pinned = "/2/2" if store["kind"] == "kserve" else "/2"
    assert released["version"] == 2 and released["location"] == store["base"] + pinned
    assert [f["name"] for f in released["files"]] == ["assets.extra/tfspec_upload.json", LAST_FILE,
                                                      "variables/variables.index"]
    assert all(f["digest"] for f in released["files"])  # each object's ETag or generation
    assert released["contract"] == {"signature": "serving_default", "output_key": "outputs",
                                    "inputs": [{"name": "inputs", "dtype": "float32", "shape": [64]}],
                                    "input_contract": "preprocessed"}
    compare = _steps(plan)["serving.compare"]
    assert compare["inputs"] == ["export", "data", "serving.released"]
    assert compare["params"]["found"] is True and compare["params"]["description"] == f"{store['base']} version 2"
    assert {k: v for k, v in compare["params"]["gates"].items() if v is not None} == {"max_accuracy_drop": 0.0}
    # named: that version, even when a newer one is below this spec's
    code, stderr, plan = _build(_spec(tmp_path, store, version=4, released="{kind: model_store, version: 1}"))
    assert code == 0, stderr
    assert _steps(plan)["serving.released"]["params"]["version"] == 1


def test_the_fingerprints_follow_the_store_and_nothing_is_downloaded(store: dict[str, Any], tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    _put(store, tmp_path, 1)
    spec = _spec(tmp_path, store, version=2)
    import fsspec.spec

    def no_download(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the build downloaded an object")

    # every read of an object's bytes goes through these (s3fs and gcsfs implement them)
    for name in ("open", "cat", "cat_file", "get", "get_file", "_cat_file", "_get_file", "_open"):
        for cls in _filesystem_classes():
            monkeypatch.setattr(cls, name, no_download, raising=False)
    monkeypatch.setattr(fsspec.spec.AbstractFileSystem, "open", no_download)
    first = _steps(_build(spec)[2])
    again = _steps(_build(spec)[2])
    assert first["serving.released"]["fingerprint"] == again["serving.released"]["fingerprint"]
    # version 1 rewritten in the store (another upload under the same number): the comparison re-runs, the
    # training does not
    store["client"].delete([f"1/{LAST_FILE}"])
    store["client"].put_file(f"1/{LAST_FILE}", _version_dir(tmp_path, "rewritten") / LAST_FILE)
    rewritten = _steps(_build(spec)[2])
    for step in ("serving.released", "serving.compare", "serving.upload"):
        assert rewritten[step]["fingerprint"] != first[step]["fingerprint"], step
    # the candidate's own steps, its bundle and so the image tags derived from it do not follow the store
    for step in ("data", "train", "evaluate", "export", "serving.verify", "serving.bundle", "serving.render"):
        assert rewritten[step]["fingerprint"] == first[step]["fingerprint"], step


def _filesystem_classes() -> list[type]:
    import gcsfs.core
    import s3fs

    return [s3fs.S3FileSystem, gcsfs.core.GCSFileSystem]


def test_an_empty_store_is_an_error_unless_a_first_release_is_allowed(store: dict[str, Any], tmp_path: Path) -> None:
    _put(store, tmp_path, 3)  # only versions above: none is below version 2
    code, stderr, _ = _build(_spec(tmp_path, store, version=2))
    assert code == 2
    assert "deploy.yaml:17:5: targets[0].released: no released model found: looked for a version below 2 in " \
           f"{store['base']} (complete versions there: 3); the gates vs_released.max_accuracy_drop compare with it" \
           in stderr, stderr
    assert not (tmp_path / "build").exists()
    code, stderr, plan = _build(_spec(tmp_path, store, version=2, released="{kind: model_store, allow_first_release: true}"))
    assert code == 0, stderr
    steps = _steps(plan)
    assert "serving.released" not in steps
    assert steps["serving.compare"]["params"]["found"] is False
    assert steps["serving.compare"]["inputs"] == ["export", "data"]


def test_an_unreachable_store_is_an_error_at_the_released_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    store = {"kind": "tf_serving", "base": "s3://models/digits", "endpoint": f', endpoint_url: "http://127.0.0.1:{free_port()}"'}
    code, stderr, _ = _build(_spec(tmp_path, store, version=2))
    assert code == 2
    assert "deploy.yaml:17:5: targets[0].released: cannot list the model store: " in stderr, stderr
    assert "(hint: check targets[0].model_store (endpoint, credentials) and the bucket)" in stderr


LOCAL = """\
  - kind: tflite
    name: android
    released: {android}
  - kind: tf_serving
    name: serving
    released: {serving}
"""


def _local_spec(tmp_path: Path, android: str, serving: str) -> Path:
    path = tmp_path / "deploy.yaml"
    path.write_text(SPEC.format(version=3, targets=LOCAL.format(android=android, serving=serving)), encoding="utf-8")
    return path


def test_a_previous_dist_folder_gives_each_target_its_artifact(tmp_path: Path) -> None:
    dist = tmp_path / "releases" / "digits"
    assets = dist / "android" / "digits_model" / "src" / "main" / "assets"
    assets.mkdir(parents=True)
    (assets / "digits.tflite").write_bytes(b"TFL3 model")
    (assets / "model_info.json").write_text('{"input_contract": "preprocessed"}', encoding="utf-8")
    (assets / "labels.txt").write_text("0\n", encoding="utf-8")
    for version in (1, 2):
        folder = dist / "serving" / "models" / "digits" / str(version)
        (folder / "variables").mkdir(parents=True)
        (folder / LAST_FILE).write_bytes(b"graph %d" % version)
        (folder / "variables" / "variables.index").write_bytes(b"index")
    spec = _local_spec(tmp_path, "{kind: dist, path: releases/digits}", "{kind: dist, path: releases/digits}")
    code, stderr, plan = _build(spec)
    assert code == 0, stderr
    steps = _steps(plan)
    android = steps["android.released"]["params"]
    assert android["location"] == "releases/digits/android/digits_model/src/main/assets"
    assert [f["name"] for f in android["files"]] == ["digits.tflite", "model_info.json"]  # not labels.txt
    assert android["model_file"] == "digits.tflite" and android["model_info"] == "model_info.json"
    assert android["contract"]["signature"] is None and android["contract"]["inputs"][0]["shape"] == [64]
    serving = steps["serving.released"]["params"]
    assert serving["location"] == "releases/digits/serving/models/digits/2" and serving["version"] == 2
    assert serving["model_info"] is None  # no assets.extra/tfspec_model_info.json: the contract is assumed
    (dist / "serving" / "models" / "digits" / "2" / "variables" / "variables.index").write_bytes(b"retrained")
    after = _steps(_build(spec)[2])
    assert after["serving.compare"]["fingerprint"] != steps["serving.compare"]["fingerprint"]
    assert after["android.compare"]["fingerprint"] == steps["android.compare"]["fingerprint"]


def test_a_saved_model_and_a_tflite_file_by_path(tmp_path: Path) -> None:
    folder = tmp_path / "releases" / "serving"
    (folder / "variables").mkdir(parents=True)
    (folder / LAST_FILE).write_bytes(b"graph")
    (tmp_path / "releases" / "digits.tflite").write_bytes(b"TFL3")
    code, stderr, plan = _build(_local_spec(tmp_path, "{kind: tflite, path: releases/digits.tflite}",
                                            "{kind: saved_model, path: releases/serving}"))
    assert code == 0, stderr
    steps = _steps(plan)
    assert steps["android.released"]["params"]["files"][0]["name"] == "digits.tflite"
    assert steps["android.released"]["params"]["description"] == "file releases/digits.tflite"
    assert steps["serving.released"]["params"]["description"] == "SavedModel releases/serving"
    code, stderr, _ = _build(_local_spec(tmp_path, "{kind: tflite, path: releases/digits.tflite}",
                                         "{kind: saved_model, path: releases/missing}"))
    assert code == 0, stderr  # no vs_released gate on these targets: nothing needs it, nothing is compared


def test_the_released_steps_come_before_training_and_the_upload_after_every_gate(s3: str, tmp_path: Path) -> None:
    """A released model that cannot be compared is refused before anything trains; a run that misses any gate
    (of any target, or the naive baseline) uploads nothing: the upload's inputs are every gate."""
    store = {"kind": "tf_serving", "base": f"s3://{BUCKET}/digits", "endpoint": f', endpoint_url: "{s3}"'}
    text = _spec(tmp_path, store, version=2, released="{kind: model_store, allow_first_release: true}").read_text("utf-8")
    text += "  - {kind: tflite, name: android, released: {kind: tflite, path: old.tflite}}\n"
    (tmp_path / "old.tflite").write_bytes(b"TFL3")
    (tmp_path / "deploy.yaml").write_text(text, encoding="utf-8")
    code, stderr, plan = _build(tmp_path / "deploy.yaml")
    assert code == 0, stderr
    order = [step["id"] for step in plan["steps"]]
    assert order.index("android.released") < order.index("train")
    assert order[-1] == "serving.upload"
    upload = _steps(plan)["serving.upload"]
    assert upload["inputs"] == ["serving.bundle", "evaluate", "serving.verify", "serving.compare", "android.verify",
                                "android.compare"]


def test_targets_without_a_released_model_keep_their_plans(tmp_path: Path) -> None:
    """``vs_released`` is left out of the verify params: the plans (and image tags) of specs that do not use
    it are what they were."""
    path = tmp_path / "deploy.yaml"
    path.write_text(SPEC.format(version=1, targets="  - {kind: tf_serving, name: serving, gates: {min_accuracy: 0.5}}"),
                    encoding="utf-8")
    code, stderr, plan = _build(path)
    assert code == 0, stderr
    steps = _steps(plan)
    assert "vs_released" not in steps["serving.verify"]["params"]["gates"]
    assert not [step for step in steps if step.endswith((".released", ".compare"))]
