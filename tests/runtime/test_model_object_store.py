"""A SavedModel model and a SavedModel teacher in an S3 bucket (a moto server on 127.0.0.1): staged into a
temporary local folder before loading, fingerprinted by the bucket listing, allowed only with the opt-in."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from runtime_testing import invoke
from test_data_object_store import BUCKET, KEY_ENV, SECRET_ENV, s3  # noqa: F401  (s3 is a fixture)

from tfspec.plan import StorageParams
from tfspec.runtime.tf import import_tf

STORAGE = "{{endpoint_url: {endpoint}, credentials: {{access_key_id_env: {key}, secret_access_key_env: {secret}}}}}"
SPEC = """\
api_version: tfspec/v1
name: remote
version: 1
data:
  source: {{kind: sklearn_digits}}
  split: {{validation: 0.1, test: 0.2, seed: 7}}
  preprocessing: {{rescale: 0.0625}}
model:
  kind: saved_model
  path: 's3://{bucket}/models/base'
  input_shape: [64]
  external_locations: {external}
  storage: {storage}
training: {{epochs: 2, batch_size: 32, optimizer: {{kind: adam, learning_rate: 0.002}}}}
compression:
  - kind: distill
    teacher: {{kind: saved_model, path: 's3://{bucket}/models/base', external_locations: true, storage: {storage}}}
    student: [{{type: dense, name: small, units: 16, activation: relu}}, {{type: dense, name: out, units: 10, activation: softmax}}]
    epochs: 4
    learning_rate: 0.005
targets:
  - {{kind: tflite, name: phone}}
"""


def upload_trained_model(client: object, folder: Path) -> None:
    """A small digits classifier, trained here, saved as a SavedModel and put under ``models/base/``."""
    from sklearn.datasets import load_digits

    _, keras = import_tf()
    digits = load_digits()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(digits.data.astype(np.float32) * 0.0625, digits.target, epochs=15, batch_size=32, verbose=0)
    model.save(str(folder))
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        client.put_object(Bucket=BUCKET, Key=f"models/base/{path.relative_to(folder).as_posix()}",
                          Body=path.read_bytes())


def write_spec(tmp_path: Path, endpoint: str, external: bool = True) -> Path:
    storage = STORAGE.format(endpoint=endpoint, key=KEY_ENV, secret=SECRET_ENV)
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.format(bucket=BUCKET, storage=storage, external=str(external).lower()), encoding="utf-8")
    return spec


def plan_fingerprints(spec: Path) -> dict[str, str]:
    result = invoke("plan", str(spec), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    steps = plan["steps"] if "steps" in plan else plan["plan"]["steps"]
    return {s["id"]: s["fingerprint"] for s in steps}


def test_a_saved_model_and_a_teacher_in_a_bucket_are_staged_and_loaded(tmp_path: Path, s3: tuple) -> None:  # noqa: F811
    endpoint, client = s3
    upload_trained_model(client, tmp_path / "built")
    spec = write_spec(tmp_path, endpoint)
    before = plan_fingerprints(spec)
    result = invoke("run", str(spec), "--quiet", "--json", "--cache-dir", str(tmp_path / "cache"),
                    "--dist-dir", str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["report"]
    steps = {s["id"]: s for s in report["steps"]}
    # the staged model is the trained one (fine-tuning starts from it), and so is the teacher
    assert steps["train"]["metrics"]["accuracy"] >= 0.9
    assert steps["compress.0.distill"]["metrics"]["teacher"]["accuracy"] >= 0.9
    assert list((tmp_path / "dist").rglob("*.tflite"))
    # no staged copy is left behind, nothing secret is written
    assert not [p for p in (tmp_path / "cache").rglob("saved_model.pb") if "staged" in str(p)]
    for path in [*(tmp_path / "cache").rglob("*.json"), *(tmp_path / "dist").rglob("*.json")]:
        assert "testing-secret" not in path.read_text(errors="replace")
    # a rewritten object changes the train and distill fingerprints (by the listing, nothing downloaded)
    client.put_object(Bucket=BUCKET, Key="models/base/fingerprint.pb", Body=b"changed")
    after = plan_fingerprints(spec)
    assert after["train"] != before["train"] and after["compress.0.distill"] != before["compress.0.distill"]


def test_a_model_in_a_bucket_needs_the_opt_in(tmp_path: Path, s3: tuple) -> None:  # noqa: F811
    endpoint, _ = s3
    result = invoke("validate", str(write_spec(tmp_path, endpoint, external=False)))
    assert result.exit_code == 2
    assert "model.path: s3://tfspec-data/models/base is outside the spec's folder" in result.output
    assert "model.external_locations: true" in result.output
    assert "Traceback" not in result.output


def test_a_missing_model_folder_in_a_bucket_is_named(tmp_path: Path, s3: tuple) -> None:  # noqa: F811
    endpoint, _ = s3
    spec = write_spec(tmp_path, endpoint)  # a prefix no test writes (moto keeps its buckets per process)
    spec.write_text(spec.read_text().replace("models/base", "models/absent"), encoding="utf-8")
    result = invoke("plan", str(spec))
    assert result.exit_code == 2, result.output
    assert "model.path: no object matches s3://tfspec-data/models/absent" in result.output


def test_a_folder_over_the_staging_limit_is_refused_before_downloading(tmp_path: Path, s3: tuple,  # noqa: F811
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    from tfspec.runtime.staging import StagingError, staged

    endpoint, client = s3
    client.put_object(Bucket=BUCKET, Key="models/big/saved_model.pb", Body=b"x" * 100)
    client.put_object(Bucket=BUCKET, Key="models/big/variables/variables.index", Body=b"y" * 20)
    storage = StorageParams(endpoint_url=endpoint, access_key_id_env=KEY_ENV, secret_access_key_env=SECRET_ENV)
    monkeypatch.setenv("TFSPEC_STAGING_LIMIT", "119")
    before = set(Path(tempfile.gettempdir()).glob("tfspec-staged-*"))
    with pytest.raises(StagingError, match="holds 120 bytes, more than the staging limit of 119"):
        with staged(tmp_path, f"s3://{BUCKET}/models/big", storage):
            pass
    assert set(Path(tempfile.gettempdir()).glob("tfspec-staged-*")) == before  # nothing was downloaded
    monkeypatch.setenv("TFSPEC_STAGING_LIMIT", "120")
    with staged(tmp_path, f"s3://{BUCKET}/models/big", storage) as folder:
        assert (folder / "saved_model.pb").read_bytes() == b"x" * 100
        assert (folder / "variables" / "variables.index").read_bytes() == b"y" * 20
    assert not folder.exists()  # deleted once the caller is done
