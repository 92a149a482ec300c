"""Gates against the released model, end to end: ``tfspec run`` measures the candidate and the released model on
the same test split, a worse candidate fails the run (exit 1, the gate named) and nothing is uploaded; a better
one passes and is uploaded.

The model stores are local servers on 127.0.0.1 (moto's S3 server, gcp-storage-emulator), stopped at the end
of each test; the runs are in this process (TensorFlow loads once). The digits set and a few epochs keep each
run short: one epoch is reliably worse than three, six reliably better.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runtime_testing import FAST_SPEC, invoke
from storage_emulators import gcs_server, s3_server
from tfspec.runtime.model_store import LAST_FILE, PinnedVersions, open_store, versions_in

pytestmark = pytest.mark.slow

BUCKET = "models"


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


def _fast_spec(epochs: int) -> str:
    """The runtime fixture's digits spec with ``epochs`` epochs and no targets (each test adds its own)."""
    text = FAST_SPEC.read_text("utf-8").replace("epochs: 12", f"epochs: {epochs}")
    return text[:text.index("targets:")] + "targets:\n"


def _store_spec(tmp_path: Path, kind: str, store: str, version: int, epochs: int, first: bool = False) -> Path:
    text = _fast_spec(epochs).replace("version: 3", f"version: {version}") + f"""\
  - kind: {kind}
    name: serving
    model_store: {{base_path: "{store}"}}
    released: {{kind: model_store, allow_first_release: {'true' if first else 'false'}}}
    gates: {{vs_released: {{max_accuracy_drop: 0.0}}}}
"""
    spec = tmp_path / "deploy.yaml"
    spec.write_text(text, encoding="utf-8")
    return spec


def _objects(store: Any) -> dict[str, bytes]:
    """Every object under the store's prefix with its content, as a second client sees it."""
    inner = store.inner if isinstance(store, PinnedVersions) else store
    return {f"{name}/{key}": inner.read(f"{name}/{key}") for name in inner.children() for key in inner.keys(name)}


def _run(spec: Path, dist: Path) -> Any:
    return invoke("run", str(spec), "--dist-dir", str(dist), "--quiet")


@pytest.mark.parametrize("backend", ["s3-tf_serving", "gs-kserve"])
def test_a_worse_candidate_fails_and_leaves_the_store_a_better_one_is_released(backend: str, tmp_path: Path,
                                                                                request: pytest.FixtureRequest) -> None:
    if backend == "s3-tf_serving":
        endpoint = request.getfixturevalue("s3")
        kind, base = "tf_serving", f"s3://{BUCKET}/digits"
        store: Any = open_store(base, endpoint)
        endpoint_text = f'", endpoint_url: "{endpoint}'  # spliced into the model_store mapping
    else:
        request.getfixturevalue("gcs")
        kind, base = "kserve", f"gs://{BUCKET}/digits"
        store = PinnedVersions(open_store(base))
        endpoint_text = ""
    location = base + endpoint_text

    # v1: the first release (nothing to compare with), uploaded
    first = _run(_store_spec(tmp_path, kind, location, version=1, epochs=3, first=True), tmp_path / "dist1")
    assert first.exit_code == 0, first.output
    assert "a first release, nothing to compare with" in first.output, first.output
    compared = json.loads((tmp_path / "dist1" / "report.json").read_text("utf-8"))["targets"]["serving"]["released"]
    assert compared["found"] is False and compared["first_release"] is True
    assert versions_in(store) == [1]
    released = _objects(store)

    # v2: one epoch, worse than v1 on the same test split: the gate fails the run, nothing is uploaded
    worse = _run(_store_spec(tmp_path, kind, location, version=2, epochs=1), tmp_path / "dist2")
    assert worse.exit_code == 1, worse.output
    assert "vs_released.max_accuracy_drop" in worse.stderr
    assert "not uploaded, the run missed serving: vs_released.max_accuracy_drop" in worse.output
    assert _objects(store) == released  # not one object added, changed or removed
    report = json.loads((tmp_path / "dist2" / "report.json").read_text("utf-8"))
    compared = report["targets"]["serving"]["released"]
    assert compared["found"] and compared["version"] == 1 and compared["contract"] == "checked"
    assert compared["change"]["worse_by"] > 0
    assert compared["candidate"]["accuracy"] < compared["metrics"]["accuracy"]
    assert len(compared["per_class"]) == len(compared["candidate_per_class"]) == 10
    assert report["passed"] is False

    # v3: six epochs, better than v1: passes, and is uploaded beside it
    better = _run(_store_spec(tmp_path, kind, location, version=3, epochs=6), tmp_path / "dist3")
    assert better.exit_code == 0, better.output
    assert versions_in(store) == [1, 3]
    report = json.loads((tmp_path / "dist3" / "report.json").read_text("utf-8"))
    gate = next(g for g in report["targets"]["serving"]["gates"] if g["name"] == "vs_released.max_accuracy_drop")
    assert gate["passed"] and gate["value"] <= 0.0
    page = (tmp_path / "dist3" / "report.html").read_text("utf-8")
    assert "Against the released model" in page and f"{base} version 1" in page
    # the uploaded version carries its input contract for the next comparison
    info = json.loads(store.read(f"3/assets.extra/tfspec_model_info.json"))
    assert info["input_contract"] == "preprocessed" and info["normalization"]["rescale"] == 0.0625
    assert store.read(f"3/{LAST_FILE}")


LOCAL = """\
  - kind: tflite
    name: phone
    quantization: {{kind: {quantization}}}
{phone}
  - kind: tf_serving
    name: serving
{serving}
"""


def _local_spec(tmp_path: Path, quantization: str, phone: str = "", serving: str = "", model: str = "",
                data: str = "") -> Path:
    text = _fast_spec(2) + LOCAL.format(quantization=quantization, phone=phone, serving=serving)
    if model:
        text = text.replace("  input_shape: [64]\n", f"  input_shape: [64]\n{model}")
    if data:
        text = text.replace("  preprocessing: {rescale: 0.0625}", data)
    spec = tmp_path / "deploy.yaml"
    spec.write_text(text, encoding="utf-8")
    return spec


def test_a_released_dist_folder_and_the_input_contract(tmp_path: Path) -> None:
    """A previous dist folder as the released model of a tflite and a tf_serving target; a candidate that no
    longer takes the released model's inputs is refused with the reason, before anything trains."""
    first = _run(_local_spec(tmp_path, "int8"), tmp_path / "dist")
    assert first.exit_code == 0, first.output
    shutil.copytree(tmp_path / "dist", tmp_path / "releases" / "digits")
    released = "    released: {kind: dist, path: releases/digits}\n"

    # a float .tflite is about three times the int8 one: the size gate against the released model fails
    grown = _run(_local_spec(tmp_path, "none", released + "    gates: {vs_released: {max_size_growth_percent: 10}}",
                             released + "    gates: {vs_released: {max_accuracy_drop: 0.0}}"), tmp_path / "dist")
    assert grown.exit_code == 1, grown.output
    report = json.loads((tmp_path / "dist" / "report.json").read_text("utf-8"))
    phone, serving = report["targets"]["phone"], report["targets"]["serving"]
    size_gate = next(g for g in phone["gates"] if g["name"] == "vs_released.max_size_growth_percent")
    assert not size_gate["passed"] and size_gate["value"] > 100
    assert phone["released"]["description"] == "dist releases/digits/phone/digits.tflite"
    # the same training, so the same SavedModel quality: not worse
    assert serving["passed"] and serving["released"]["change"]["worse_by"] == 0.0
    assert serving["released"]["description"] == "dist releases/digits/serving/models/digits/3"
    assert "vs_released.max_size_growth_percent" in grown.stderr

    # another input key: the released SavedModel's signature takes "inputs", the candidate's "pixels"
    renamed = _run(_local_spec(tmp_path, "int8", serving=released, model="  input_name: pixels\n"), tmp_path / "dist")
    assert renamed.exit_code == 2, renamed.output
    assert ("deploy.yaml:31:5: targets[1].released: dist releases/digits/serving/models/digits/3 does not take the "
            "candidate's input contract: signature 'serving_default' takes inputs, the candidate pixels") \
        in renamed.stderr, renamed.stderr
    assert "run     train" not in renamed.output  # refused before training

    # the preprocessing moved into the model: clients of the released model send preprocessed examples
    raw = _run(_local_spec(tmp_path, "int8", phone=released,
                           data="  preprocessing: {rescale: 0.0625, in_model: true}"), tmp_path / "dist")
    assert raw.exit_code == 2, raw.output
    assert ("targets[0].released: dist releases/digits/phone/digits.tflite does not take the candidate's input "
            "contract: its preprocessing runs in the client (preprocessed inputs), the candidate's inside the model "
            "(raw inputs)") in raw.stderr, raw.stderr
