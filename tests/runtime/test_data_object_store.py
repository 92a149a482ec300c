"""Data in a bucket: a moto server on 127.0.0.1 stands in for S3, gcp-storage-emulator for GCS (each
started and stopped here).

The spec names the bucket, the endpoint and the *names* of the credential variables; `tfspec run` trains,
verifies and bundles from the bucket, and `tfspec plan` fingerprints the objects by their listing (ETags).
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from moto import server as moto_server
from runtime_testing import invoke

from tfspec.plan import StorageParams

BUCKET = "tfspec-data"
KEY_ENV, SECRET_ENV = "TFSPEC_TEST_S3_KEY", "TFSPEC_TEST_S3_SECRET"

SPEC = """\
api_version: tfspec/v1
name: bucket
version: 1
data:
  source: {{kind: tfrecord, path: 's3://{bucket}/shards/*.tfrecord', features: {{pixels: {{dtype: float32, shape: [64]}}}}, label: digit}}
  num_classes: 10
  split: {{validation: 0.1, test: 0.2, seed: 7}}
  preprocessing: {{rescale: 0.0625}}
  external_locations: {external}
  storage:
    endpoint_url: {endpoint}
    credentials: {{access_key_id_env: {key_env}, secret_access_key_env: {secret_env}}}
model:
  kind: sequential
  input_shape: [64]
  layers:
    - {{type: dense, units: 32, activation: relu}}
    - {{type: dense, units: 10, activation: softmax}}
training: {{epochs: 6, batch_size: 32, optimizer: {{kind: adam, learning_rate: 0.005}}}}
targets:
  - {{kind: tflite, name: phone, gates: {{max_accuracy_drop: 0.05}}}}
"""


@pytest.fixture()
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, object]]:
    """A moto S3 server on 127.0.0.1 with one bucket; the credentials live in the variables the spec names."""
    import boto3

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        monkeypatch.setenv(KEY_ENV, "testing-key")
        monkeypatch.setenv(SECRET_ENV, "testing-secret")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing-key",
                              aws_secret_access_key="testing-secret", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    finally:
        server.stop()


def digit_shards(shards: int = 3) -> list[bytes]:
    """The digits set as ``shards`` TFRecord files' bytes."""
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    buffers = [io.BytesIO() for _ in range(shards)]
    for n, (x, y) in enumerate(zip(digits.data.astype(np.float32), digits.target)):
        record = tf.train.Example(features=tf.train.Features(feature={
            "pixels": tf.train.Feature(float_list=tf.train.FloatList(value=x.tolist())),
            "digit": tf.train.Feature(int64_list=tf.train.Int64List(value=[int(y)]))})).SerializeToString()
        buffers[n % shards].write(_framed(record))
    return [buffer.getvalue() for buffer in buffers]


def upload_digit_shards(client: object, shards: int = 3) -> None:
    for i, body in enumerate(digit_shards(shards)):
        client.put_object(Bucket=BUCKET, Key=f"shards/part-{i:02d}.tfrecord", Body=body)


def _framed(record: bytes) -> bytes:
    """One TFRecord frame (written here with TensorFlow's own writer to get the CRCs right)."""
    import tempfile

    import tensorflow as tf

    with tempfile.NamedTemporaryFile(suffix=".tfrecord") as handle:
        with tf.io.TFRecordWriter(handle.name) as writer:
            writer.write(record)
        return Path(handle.name).read_bytes()


def write_spec(tmp_path: Path, endpoint: str, external: bool = True) -> Path:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.format(bucket=BUCKET, endpoint=endpoint, external=str(external).lower(), key_env=KEY_ENV,
                                secret_env=SECRET_ENV), encoding="utf-8")
    return spec


def data_fingerprint(spec: Path) -> str:
    result = invoke("plan", str(spec), "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    steps = plan["steps"] if "steps" in plan else plan["plan"]["steps"]
    return next(s["fingerprint"] for s in steps if s["id"] == "data")


def test_a_spec_whose_data_is_in_a_bucket_trains_verifies_and_bundles(tmp_path: Path, s3: tuple) -> None:
    endpoint, client = s3
    upload_digit_shards(client)
    spec = write_spec(tmp_path, endpoint)
    before = data_fingerprint(spec)
    assert data_fingerprint(spec) == before  # the listing is stable: nothing changed
    result = invoke("run", str(spec), "--quiet", "--json", "--cache-dir", str(tmp_path / "cache"),
                    "--dist-dir", str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["report"]
    assert report["targets"]["phone"]["passed"] is True
    assert report["targets"]["phone"]["metrics"]["accuracy"] >= 0.85
    assert list((tmp_path / "dist").rglob("*.tflite"))
    manifest = next((tmp_path / "cache").glob("*/manifest.json"))
    files = json.loads(manifest.read_text())["files"]
    assert [f["name"] for f in files] == [f"s3://{BUCKET}/shards/part-{i:02d}.tfrecord" for i in range(3)]
    # nothing secret is written anywhere: only the variable names
    for path in [*(tmp_path / "cache").rglob("*.json"), *(tmp_path / "dist").rglob("*.json")]:
        assert "testing-secret" not in path.read_text(errors="replace")
    # a rewritten object has a new ETag: the data step's fingerprint changes without a download
    client.put_object(Bucket=BUCKET, Key="shards/part-02.tfrecord", Body=b"")
    assert data_fingerprint(spec) != before


def test_a_bucket_location_needs_the_opt_in(tmp_path: Path, s3: tuple) -> None:
    endpoint, client = s3
    upload_digit_shards(client, shards=1)
    spec = write_spec(tmp_path, endpoint, external=False)
    result = invoke("validate", str(spec))
    assert result.exit_code == 2
    assert "data.source.path: s3://tfspec-data/shards/*.tfrecord is outside the spec's folder" in result.output
    assert "data.external_locations: true" in result.output


@pytest.fixture()
def gcs() -> Iterator[tuple[str, object]]:
    """A fresh in-memory GCS emulator on 127.0.0.1 with one bucket, and a gcsfs client of it."""
    import socket

    from gcp_storage_emulator.server import create_server
    from gcsfs.core import GCSFileSystem

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    try:
        endpoint = f"http://127.0.0.1:{port}"
        yield endpoint, GCSFileSystem(endpoint_url=endpoint, token="anon", skip_instance_cache=True)
    finally:
        server.stop()


def test_a_spec_whose_data_is_in_a_gcs_bucket_trains_verifies_and_bundles(tmp_path: Path, gcs: tuple) -> None:
    endpoint, fs = gcs
    for i, body in enumerate(digit_shards()):
        fs.pipe_file(f"{BUCKET}/shards/part-{i:02d}.tfrecord", body)
    spec = tmp_path / "deploy.yaml"
    text = SPEC.format(bucket=BUCKET, endpoint=endpoint, external="true", key_env=KEY_ENV, secret_env=SECRET_ENV)
    spec.write_text(text.replace("s3://", "gs://").replace(
        f"    credentials: {{access_key_id_env: {KEY_ENV}, secret_access_key_env: {SECRET_ENV}}}\n", ""),
        encoding="utf-8")
    before = data_fingerprint(spec)
    result = invoke("run", str(spec), "--quiet", "--json", "--cache-dir", str(tmp_path / "cache"),
                    "--dist-dir", str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)["report"]
    assert report["targets"]["phone"]["passed"] is True
    assert report["targets"]["phone"]["metrics"]["accuracy"] >= 0.85
    assert list((tmp_path / "dist").rglob("*.tflite"))
    manifest = json.loads(next((tmp_path / "cache").glob("*/manifest.json")).read_text())
    assert [f["name"] for f in manifest["files"]] == [f"gs://{BUCKET}/shards/part-{i:02d}.tfrecord" for i in range(3)]
    assert sum(manifest["counts"].values()) == 1797  # every record of every shard was read
    # a rewritten object has a new generation/ETag: the fingerprint changes without a download
    fs.pipe_file(f"{BUCKET}/shards/part-02.tfrecord", b"")
    assert data_fingerprint(spec) != before


def test_a_gcs_shard_is_read_in_large_blocks(gcs: tuple, caplog: pytest.LogCaptureFixture) -> None:
    """gcsfs' default file cache sent one HTTP request per small read (three per record): a shard of 600
    records cost 1,800 requests. The reader keeps its own 8 MiB buffer: a few requests per shard."""
    import logging

    import tensorflow as tf

    from tfspec.runtime.sources import _object_record_batches

    endpoint, fs = gcs
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "shard.tfrecord"
        with tf.io.TFRecordWriter(str(path)) as writer:
            for n in range(600):
                writer.write(bytes([n % 256]) * 300)
        fs.pipe_file(f"{BUCKET}/shards/big.tfrecord", path.read_bytes())
    caplog.set_level(logging.DEBUG, logger="gcsfs")
    storage = StorageParams(endpoint_url=endpoint, access_key_id_env="AWS_ACCESS_KEY_ID",
                            secret_access_key_env="AWS_SECRET_ACCESS_KEY").model_dump_json().encode()
    batches = list(_object_record_batches(f"gs://{BUCKET}/shards/big.tfrecord".encode(), storage, 256))
    assert [len(records) for _, records in batches] == [256, 256, 88]
    assert batches[2][0][-1] == 599 and batches[2][1][-1] == bytes([599 % 256]) * 300
    requests = [r for r in caplog.records if r.name.startswith("gcsfs") and r.getMessage().startswith("GET")]
    assert 1 <= len(requests) <= 5, len(requests)  # the object's metadata, then its bytes
