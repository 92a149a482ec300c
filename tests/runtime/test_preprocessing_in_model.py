"""``data.preprocessing.in_model``: rescale, normalize (training statistics) and reshape baked into the
exported SavedModel and .tflite, so clients send raw examples; model_info.json and the generated clients say
which contract the served model has."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime_testing import compile_text, invoke, read_json

SPEC = """\
api_version: tfspec/v1
name: rawdigits
version: 1
data:
  source: {kind: sklearn_digits}
  split: {validation: 0.1, test: 0.2, seed: 7}
  preprocessing: {rescale: 0.0625, normalize: true, reshape: [8, 8, 1], in_model: true}
model:
  kind: sequential
  input_shape: [8, 8, 1]
  layers:
    - {type: flatten}
    - {type: dense, units: 32, activation: relu}
    - {type: dense, units: 10, activation: softmax}
training:
  optimizer: {kind: adam, learning_rate: 0.003}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 6
targets:
  - kind: tflite
    name: phone
    quantization: {kind: none}
    android: {package: com.example.rawdigits, asset_pack: {name: raw_model, delivery: install_time}}
  - kind: tf_serving
    name: serving
    warmup: {requests: 2}
"""

KOTLIN = "phone/app-snippets/src/main/java/com/example/rawdigits/RawdigitsClassifier.kt"


def test_the_clients_state_the_raw_contract(tmp_path: Path) -> None:
    result = compile_text(tmp_path, SPEC)
    request = json.loads(result.files["serving/clients/request.json"])
    assert np.asarray(request["instances"][0]["inputs"]).shape == (64,)  # raw digits, not [8, 8, 1]
    grpc = result.files["serving/clients/predict_grpc.py"]
    assert "# Input contract: raw examples of shape [64], float32; rescale, normalize, reshape run(s) inside" in grpc
    assert "INPUTS = {'inputs': ((64,), 'float32')}" in grpc  # one input: its signature key, raw shape and dtype
    assert "Input contract: raw examples" in result.files["serving/clients/predict_rest.sh"]
    kotlin = result.files[KOTLIN]
    assert "Input contract: raw examples" in kotlin and "RESCALE" not in kotlin and "JSONObject" not in kotlin
    plain = compile_text(tmp_path, SPEC.replace(", in_model: true", ""), name="plain.yaml")
    assert "Input contract: preprocessed examples: apply rescale, normalize, reshape" in plain.files[
        "serving/clients/predict_grpc.py"]
    assert "RESCALE" in plain.files[KOTLIN]


def test_a_source_of_unknown_shape_with_reshape_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "data.npz", x=np.zeros((10, 64), np.float32), y=np.zeros(10, np.int64))
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.replace("{kind: sklearn_digits}", "{kind: npz, path: data.npz}"), encoding="utf-8")
    result = invoke("validate", str(spec))
    assert result.exit_code == 2, result.output
    assert "deploy.yaml:7:" in result.output and "data.preprocessing.in_model" in result.output


@pytest.mark.slow
def test_raw_inputs_give_the_predictions_of_the_preprocessed_path(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir",
                    str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output
    report = read_json(tmp_path / "dist" / "report.json")
    trained = report["stages"][0]["value"]
    # verify fed raw test examples to both artifacts: the float ones match the Keras model exactly
    for target in ("phone", "serving"):
        assert abs(report["targets"][target]["metrics"]["accuracy"] - trained) < 1e-9, report["targets"][target]

    import tensorflow as tf
    from sklearn.datasets import load_digits

    from tfspec.runtime.keras_io import load_model

    raw = load_digits().data.astype(np.float32)[:50]
    info = read_json(tmp_path / "dist" / "phone" / "raw_model" / "src" / "main" / "assets" / "model_info.json")
    assert info["input_contract"] == "raw" and info["normalization"]["in_model"]
    norm = info["normalization"]
    preprocessed = ((raw * norm["rescale"] - np.asarray(norm["mean"])) / np.asarray(norm["std"])).reshape(-1, 8, 8, 1)
    keras_model = load_model(next((tmp_path / "cache").rglob("model.keras")).parent, compile=False)
    expected = keras_model.predict(preprocessed.astype(np.float32), verbose=0)

    served = tf.saved_model.load(str(tmp_path / "dist" / "serving" / "models" / "rawdigits" / "1"))
    signature = served.signatures["serving_default"]
    assert signature.structured_input_signature[1]["inputs"].shape.as_list() == [None, 64]
    got = signature(inputs=tf.constant(raw))["outputs"].numpy()
    assert np.max(np.abs(got - expected)) < 1e-5

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tmp_path / "dist" / "phone" / "raw_model" / "src" / "main" / "assets"
                                             / "rawdigits.tflite"))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    assert list(inp["shape"][1:]) == [64]
    lite = []
    for row in raw:
        interpreter.set_tensor(inp["index"], row[None])
        interpreter.invoke()
        lite.append(interpreter.get_tensor(out["index"])[0])
    assert np.max(np.abs(np.asarray(lite) - expected)) < 1e-4
