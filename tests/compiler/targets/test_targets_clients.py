"""The generated clients send what TF Serving expects: run against local servers speaking its APIs.

The REST script runs curl against an HTTP server on 127.0.0.1 that checks the request the way TF
Serving's ``/v1/models/<name>:predict`` reads it; the gRPC client runs against a real gRPC server
implementing tensorflow-serving-api's PredictionService, which inspects the PredictRequest.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from concurrent import futures
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import numpy as np

from targets_testing import tool


def _write(tmp_path: Path, files: dict[str, str]) -> Path:
    for path, text in files.items():
        if path.startswith("serving/clients/"):
            target = tmp_path / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    return tmp_path / "serving" / "clients"


def test_rest_client_posts_a_valid_predict_request(tmp_path: Path, builds: dict[str, dict[str, str]]) -> None:
    seen: list[tuple[str, dict[str, Any], str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append((self.path, body, self.headers["Content-Type"]))
            payload = json.dumps({"predictions": [[0.1] * 10]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        clients = _write(tmp_path, builds["gpu-serving"])
        host = f"127.0.0.1:{server.server_port}"
        result = subprocess.run(["bash", str(clients / "predict_rest.sh"), host], capture_output=True, text=True, timeout=60)
        # Canary and rollback by labels: the label picks the version (TF Serving's /labels/<label> path).
        canary = subprocess.run(["bash", str(clients / "predict_rest.sh"), host, "canary"], capture_output=True,
                                text=True, timeout=60)
        bad = subprocess.run(["bash", str(clients / "predict_rest.sh"), host, "x/../y"], capture_output=True,
                             text=True, timeout=60)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert canary.returncode == 0, canary.stderr
    assert bad.returncode == 2 and "not a version label" in bad.stderr
    assert json.loads(result.stdout) == {"predictions": [[0.1] * 10]}
    ((path, body, content_type), (canary_path, _, _)) = seen
    assert canary_path == "/v1/models/digits/labels/canary:predict"
    assert path == "/v1/models/digits:predict"
    assert content_type == "application/json"
    assert body["signature_name"] == "serving_default"
    (instance,) = body["instances"]
    assert list(instance) == ["inputs"]  # the model's input name
    assert np.asarray(instance["inputs"], dtype=np.float32).shape == (64,)


def test_rest_script_is_valid_bash(builds: dict[str, dict[str, str]], tmp_path: Path) -> None:
    script = tmp_path / "predict_rest.sh"
    script.write_text(builds["example"]["serving/clients/predict_rest.sh"])
    assert subprocess.run(["bash", "-n", str(script)], capture_output=True, timeout=30).returncode == 0
    assert tool("curl")


def test_grpc_client_sends_a_predict_request(tmp_path: Path, builds: dict[str, dict[str, str]]) -> None:
    import grpc
    import tensorflow as tf
    from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

    requests: list[predict_pb2.PredictRequest] = []

    class Service(prediction_service_pb2_grpc.PredictionServiceServicer):
        def Predict(self, request: predict_pb2.PredictRequest, context: Any) -> predict_pb2.PredictResponse:  # noqa: N802
            requests.append(request)
            response = predict_pb2.PredictResponse()
            response.model_spec.CopyFrom(request.model_spec)
            response.outputs["outputs"].CopyFrom(tf.make_tensor_proto(np.full((1, 10), 0.1, dtype=np.float32)))
            return response

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(Service(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        clients = _write(tmp_path, builds["gpu-serving"])
        result = subprocess.run([sys.executable, str(clients / "predict_grpc.py"), "--target", f"127.0.0.1:{port}",
                                 "--label", "stable"], capture_output=True, text=True, timeout=300)
    finally:
        server.stop(grace=None)
    assert result.returncode == 0, result.stderr[-3000:]
    assert np.allclose(json.loads(result.stdout.strip().splitlines()[-1]), [[0.1] * 10])
    (request,) = requests
    assert request.model_spec.name == "digits"
    assert request.model_spec.version_label == "stable"
    assert "VERSION_LABELS = ('canary', 'stable')" in builds["gpu-serving"]["serving/clients/predict_grpc.py"]
    assert request.model_spec.signature_name == "serving_default"
    assert list(request.inputs) == ["inputs"]
    tensor = request.inputs["inputs"]
    assert [d.size for d in tensor.tensor_shape.dim] == [1, 64]
    assert tensor.dtype == tf.float32.as_datatype_enum
    assert list(request.output_filter) == ["outputs"]
