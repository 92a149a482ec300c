"""A SavedModel served as it is, through its own signature, everywhere: the build reads the signature from
``saved_model.pb`` (no TensorFlow in the compiler) and every generated client and ``model_info.json`` uses
its real name, keys, dtypes and shapes; ``signature: classify`` with two outputs (int64 class ids, float
probabilities) verifies the same float output on serving and on tflite.

No TF Serving binary runs here, so the generated clients are run against stand-ins that call the real
SavedModel the way TF Serving does:

* REST: a server on 127.0.0.1 that implements the predict verb's row format as TF Serving documents it
  (https://www.tensorflow.org/tfx/serving/api_rest, "Request format": ``signature_name`` picks the
  signature, each ``instances`` item is an object keyed by the signature's input names; the response's
  ``predictions`` hold each output, an object per instance when there are several) and calls the
  signature with exactly those keys, so a wrong key fails as TF Serving fails.
* gRPC: a server on 127.0.0.1 that serves ``/tensorflow.serving.PredictionService/Predict`` with
  tensorflow-serving-api's own ``predict_pb2`` messages (the real protos) and calls the signature.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime_testing import invoke, read_json
from test_data_object_store import BUCKET, KEY_ENV, SECRET_ENV, s3  # noqa: F401  (s3 is a fixture)
from test_saved_model_as_is import make_tf1_half_plus_two

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import tensorflow as tf  # noqa: E402

from tfspec.compiler.pipeline import compile_spec  # noqa: E402
from tfspec.compiler.saved_model_signatures import read_signatures  # noqa: E402

WEIGHTS = np.array([[2.0, -1.0, 0.0], [0.0, 2.0, -1.0], [-1.0, 0.0, 2.0], [0.5, 0.5, 0.5]], dtype=np.float32)

SPEC = """\
api_version: tfspec/v1
name: species
version: 1
data:
  source: {{kind: npz, path: data.npz, features: x, labels: y}}
  split: {{validation: 0.1, test: 0.3, seed: 3}}
model: {{kind: saved_model, path: species_model, input_shape: [4], serve_as_is: true{extra}}}
training: {{loss: sparse_categorical_crossentropy, metrics: [accuracy]}}
targets:
  - {{kind: tf_serving, name: serving, warmup: {{requests: 2}}, gates: {{max_accuracy_drop: 0.01}}}}
  - kind: tflite
    name: phone
    quantization: {{kind: none}}
    android: {{package: com.example.species, asset_pack: {{name: species_model}}}}
    gates: {{max_accuracy_drop: 0.01}}
"""


def make_species_module(path: Path, two_float_outputs: bool = False) -> None:
    """A ``tf.Module`` without ``serving_default``: ``classify`` (features -> species_id int64, species_probs
    float) and ``logits`` (features -> logits)."""

    class Species(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = tf.Variable(WEIGHTS)

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
        def classify(self, features: Any) -> dict[str, Any]:
            logits = tf.matmul(features, self.w) * 4.0
            out = {"species_id": tf.argmax(logits, axis=1), "species_probs": tf.nn.softmax(logits)}
            if two_float_outputs:
                out = {"species_logits": logits, "species_probs": tf.nn.softmax(logits)}
            return out

        @tf.function(input_signature=[tf.TensorSpec([None, 4], tf.float32, name="features")])
        def logits(self, features: Any) -> dict[str, Any]:
            return {"logits": tf.matmul(features, self.w)}

    module = Species()
    tf.saved_model.save(module, str(path), signatures={"classify": module.classify.get_concrete_function(),
                                                       "logits": module.logits.get_concrete_function()})


@pytest.fixture(scope="module")
def species_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("species") / "species_model"
    make_species_module(path)
    return path


def _project(tmp_path: Path, model: Path, extra: str = ", signature: classify") -> Path:
    import shutil

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 4)).astype(np.float32)
    np.savez(tmp_path / "data.npz", x=x, y=np.argmax(x @ WEIGHTS, axis=1).astype(np.int64))
    shutil.copytree(model, tmp_path / "species_model")
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.format(extra=extra), encoding="utf-8")
    return spec


# --- the compiler's reader against TensorFlow's own -----------------------------------------------------

def _tf_signatures(path: Path) -> dict[str, Any]:
    """Signatures as TensorFlow's generated protos read them (the reader must agree)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel.FromString((path / "saved_model.pb").read_bytes())
    graph = next(g for g in proto.meta_graphs if "serve" in g.meta_info_def.tags)
    out = {}
    for name, signature in graph.signature_def.items():
        if name.startswith("__saved_model_"):  # TensorFlow's own init/train op entries, not signatures
            continue
        def tensors(infos: Any) -> dict[str, Any]:
            return {key: (tf.as_dtype(info.dtype).name,
                          None if info.tensor_shape.unknown_rank else
                          tuple(None if d.size < 0 else d.size for d in info.tensor_shape.dim))
                    for key, info in infos.items()}
        out[name] = (signature.method_name, tensors(signature.inputs), tensors(signature.outputs))
    return out


def _read(path: Path) -> dict[str, Any]:
    with (path / "saved_model.pb").open("rb") as stream:
        found = read_signatures(stream, (path / "saved_model.pb").stat().st_size)
    return {name: (s.method, {t.key: (t.dtype, t.shape) for t in s.inputs}, {t.key: (t.dtype, t.shape) for t in s.outputs})
            for name, s in found.items()}


def test_the_reader_agrees_with_tensorflows_protos(species_model: Path, tmp_path: Path) -> None:
    read = _read(species_model)
    assert read == _tf_signatures(species_model)
    assert read["classify"][1] == {"features": ("float32", (None, 4))}
    assert read["classify"][2] == {"species_id": ("int64", (None,)), "species_probs": ("float32", (None, 3))}
    tf1 = tmp_path / "half"
    make_tf1_half_plus_two(tf1)  # a TF1 builder export: predict, regress (strings in) and classify
    assert _read(tf1) == _tf_signatures(tf1)
    assert _read(tf1)["regress_x_to_y"][1]["inputs"][0] == "string"


# --- what the build writes ------------------------------------------------------------------------------

def test_clients_use_the_chosen_signature(species_model: Path, tmp_path: Path) -> None:
    result = compile_spec(_project(tmp_path, species_model))
    assert result.ok, [d.format() for d in result.diagnostics]
    request = json.loads(result.files["serving/clients/request.json"])
    assert request == {"signature_name": "classify", "instances": [{"features": [0.0, 0.0, 0.0, 0.0]}]}
    grpc_client = result.files["serving/clients/predict_grpc.py"]
    assert "SIGNATURE_NAME = 'classify'" in grpc_client and "INPUTS = {'features': ((4,), 'float32')}" in grpc_client
    assert "OUTPUT_NAME = 'species_probs'" in grpc_client and "(also: species_id)" in grpc_client
    assert "signature classify" in result.files["serving/clients/predict_rest.sh"]
    kotlin = result.files["phone/app-snippets/src/main/java/com/example/species/SpeciesClassifier.kt"]
    assert 'const val SIGNATURE_KEY = "classify"' in kotlin and 'const val OUTPUT_KEY = "species_probs"' in kotlin
    assert "runSignature(mapOf(INPUT_KEY to input), mapOf(OUTPUT_KEY to output), SIGNATURE_KEY)" in kotlin
    steps = {s.id: s.params for s in result.plan.steps}
    assert steps["serving.verify"].output_name == "species_probs"
    assert steps["phone.verify"].output_key == "species_probs" and steps["phone.bundle"].output_key == "species_probs"
    assert steps["phone.bundle"].input_name == "features"


def test_an_unknown_or_ambiguous_signature_is_refused_at_validate(species_model: Path, tmp_path: Path) -> None:
    spec = _project(tmp_path, species_model, extra="")  # the default, serving_default: not in this model
    result = invoke("validate", str(spec))
    assert result.exit_code == 2
    line = " ".join(result.output.split())
    assert "deploy.yaml:7:" in line and "model.signature: the SavedModel has no signature 'serving_default'" in line
    assert "classify, logits" in line and "Traceback" not in result.output

    spec.write_text(SPEC.format(extra=", signature: classify, output_name: species_id"), encoding="utf-8")
    line = " ".join(invoke("validate", str(spec)).output.split())
    assert "model.output_name: output 'species_id' of signature 'classify' is int64" in line

    two = tmp_path / "two"
    two.mkdir()
    make_species_module(two / "m", two_float_outputs=True)
    spec = _project(two, two / "m")
    result = invoke("validate", str(spec))
    assert result.exit_code == 2
    assert "has 2 float outputs (species_logits (float32), species_probs (float32)) and the spec names none" in \
        " ".join(result.output.split())
    spec.write_text(SPEC.format(extra=", signature: classify, output_name: species_probs"), encoding="utf-8")
    assert invoke("validate", str(spec)).exit_code == 0


# --- the generated clients against the real signature ------------------------------------------------------

@contextlib.contextmanager
def _serve_rest(path: Path, model_name: str) -> Iterator[str]:
    loaded = tf.saved_model.load(str(path))

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802  (http.server's name)
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            name = self.path.split("/")[3].split(":")[0]
            try:
                assert name == model_name and self.path.endswith(":predict"), self.path
                function = loaded.signatures[body.get("signature_name", "serving_default")]
                _, specs = function.structured_input_signature
                instances = body["instances"]
                keys = set(instances[0]) if isinstance(instances[0], dict) else set(specs)
                columns = {key: [i[key] for i in instances] if isinstance(instances[0], dict) else instances
                           for key in keys}
                outputs = function(**{key: tf.constant(value, dtype=specs[key].dtype)
                                      for key, value in columns.items()})
                rows = [{key: value.numpy()[i].tolist() for key, value in outputs.items()}
                        for i in range(len(instances))]
                answer, status = {"predictions": [next(iter(r.values())) if len(r) == 1 else r for r in rows]}, 200
            except Exception as error:  # noqa: BLE001  (TF Serving answers an error object)
                answer, status = {"error": f"{type(error).__name__}: {error}"}, 400
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def _serve_grpc(path: Path) -> Iterator[str]:
    import grpc
    from tensorflow_serving.apis import predict_pb2

    loaded = tf.saved_model.load(str(path))
    seen: list[Any] = []

    def predict(request: Any, context: Any) -> Any:
        seen.append(request)
        function = loaded.signatures[request.model_spec.signature_name or "serving_default"]
        outputs = function(**{key: tf.constant(tf.make_ndarray(tensor)) for key, tensor in request.inputs.items()})
        response = predict_pb2.PredictResponse()
        for key in request.output_filter or outputs:
            response.outputs[key].CopyFrom(tf.make_tensor_proto(outputs[key].numpy()))
        return response

    handler = grpc.method_handlers_generic_handler("tensorflow.serving.PredictionService", {
        "Predict": grpc.unary_unary_rpc_method_handler(predict, request_deserializer=predict_pb2.PredictRequest.FromString,
                                                       response_serializer=predict_pb2.PredictResponse.SerializeToString)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((handler,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.stop(None)


def test_the_rest_and_grpc_clients_call_the_real_signature(species_model: Path, tmp_path: Path) -> None:
    result = compile_spec(_project(tmp_path, species_model))
    assert result.ok
    clients = tmp_path / "clients"
    clients.mkdir()
    for name in ("request.json", "predict_rest.sh", "predict_grpc.py"):
        (clients / name).write_text(result.files[f"serving/clients/{name}"], encoding="utf-8")
    expected = tf.saved_model.load(str(species_model)).signatures["classify"](features=tf.zeros([1, 4]))
    with _serve_rest(species_model, "species") as host:
        done = subprocess.run(["bash", str(clients / "predict_rest.sh"), host], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    prediction = json.loads(done.stdout)["predictions"][0]
    assert prediction["species_probs"] == pytest.approx(expected["species_probs"].numpy()[0].tolist())
    # the client must not need TensorFlow: importing it fails in the client's process
    blocked = "import sys, runpy; sys.modules['tensorflow'] = None; sys.argv = sys.argv[1:]; runpy.run_path(sys.argv[0], run_name='__main__')"
    with _serve_grpc(species_model) as host:
        done = subprocess.run([sys.executable, "-c", blocked, str(clients / "predict_grpc.py"), "--target", host],
                              capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    np.testing.assert_allclose(json.loads(done.stdout), expected["species_probs"].numpy(), rtol=1e-6)


# --- end to end: serving and tflite verify the same output ------------------------------------------------

@pytest.mark.slow
def test_classify_with_two_outputs_verifies_the_float_output_everywhere(species_model: Path, tmp_path: Path) -> None:
    spec = _project(tmp_path, species_model)
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir", str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output
    report = read_json(tmp_path / "dist" / "report.json")
    serving, phone = report["targets"]["serving"]["metrics"], report["targets"]["phone"]["metrics"]
    assert serving["accuracy"] > 0.9 and phone["accuracy"] == pytest.approx(serving["accuracy"], abs=1e-6)
    info = read_json(tmp_path / "dist" / "phone" / "species_model" / "src" / "main" / "assets" / "model_info.json")
    assert info["signature"] == "classify"
    assert info["input"]["name"] == "features" and info["output"]["name"] == "species_probs"
    assert info["output"]["dtype"] == "float32" and info["output"]["shape"] == [1, 3]
    assert info["output_kind"] == "softmax" and info["labels"] == ["0", "1", "2"]


def test_a_saved_model_in_a_bucket_has_its_signature_read_at_build(species_model: Path, tmp_path: Path,
                                                                    s3: tuple) -> None:  # noqa: F811
    """saved_model.pb is read through the same object-store access as the listing (a moto S3 server)."""
    endpoint, client = s3
    for path in sorted(p for p in species_model.rglob("*") if p.is_file()):
        client.put_object(Bucket=BUCKET, Key=f"served/species/{path.relative_to(species_model).as_posix()}",
                          Body=path.read_bytes())
    spec = _project(tmp_path, species_model)
    storage = f"{{endpoint_url: {endpoint}, credentials: {{access_key_id_env: {KEY_ENV}, secret_access_key_env: {SECRET_ENV}}}}}"
    spec.write_text(spec.read_text().replace(
        "path: species_model,", f"path: 's3://{BUCKET}/served/species', external_locations: true, storage: {storage},"),
        encoding="utf-8")
    result = compile_spec(spec)
    assert result.ok, [d.format() for d in result.diagnostics]
    assert json.loads(result.files["serving/clients/request.json"])["signature_name"] == "classify"
    assert result.resolved.output_name == "species_probs" and result.resolved.input_name == "features"


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_saved_model_pb_is_one_clean_error(species_model: Path, tmp_path: Path, damage: str) -> None:
    spec = _project(tmp_path, species_model)
    pb = tmp_path / "species_model" / "saved_model.pb"
    data = pb.read_bytes()
    pb.write_bytes({"truncated": data[: len(data) // 2], "garbage": bytes(range(256)) * 40, "empty": b""}[damage])
    result = invoke("validate", str(spec))
    assert result.exit_code == 2 and "Traceback" not in result.output
    line = " ".join(result.output.split())
    assert "model.path: cannot read the SavedModel's signatures" in line or "saved_model.pb holds no meta graph" in line
