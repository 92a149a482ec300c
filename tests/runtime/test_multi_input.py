"""Functional models with several named inputs: each input is a signature key and takes the data's features
of the same name (npz arrays per input, csv column groups, tfrecord features); export, warmup, verify and
tflite (signature runner) feed every input by its name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime_testing import compile_text, invoke, read_json, step_context

SPEC = """\
api_version: tfspec/v1
name: twoinputs
version: 1
data:
  source: {kind: npz, path: data.npz, features: {pixels: x_pixels, meta: x_meta}, labels: y}
  split: {validation: 0.1, test: 0.25, seed: 3}
model:
  kind: functional
  inputs:
    - {name: pixels, shape: [4, 4, 1]}
    - {name: meta, shape: [3]}
  layers:
    - {type: flatten, name: flat, inputs: [pixels]}
    - {type: concatenate, name: joined, inputs: [flat, meta]}
    - {type: dense, name: hidden, units: 16, activation: relu, inputs: [joined]}
    - {type: dense, name: head, units: 3, activation: softmax, inputs: [hidden]}
  outputs: [head]
training:
  optimizer: {kind: adam, learning_rate: 0.02}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 10
targets:
  - kind: tflite
    name: edge
    quantization: {kind: int8, representative_samples: 50, input_type: float32, output_type: float32}
    gates: {max_accuracy_drop: 0.05}
  - kind: tf_serving
    name: serving
    warmup: {requests: 3}
"""


def _data(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Three classes, told apart only by both inputs together: pixels say class 0 vs the rest, meta 1 vs 2."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=360)
    pixels = rng.normal(size=(360, 4, 4, 1)).astype(np.float32) * 0.3
    pixels[y == 0] += 1.0
    meta = rng.normal(size=(360, 3)).astype(np.float32) * 0.3
    meta[y == 1, 0] += 1.0
    meta[y == 2, 1] += 1.0
    np.savez(root / "data.npz", x_pixels=pixels, x_meta=meta, y=y.astype(np.int64))
    return pixels, meta, y


def test_inputs_become_request_keys_and_client_inputs(tmp_path: Path) -> None:
    _data(tmp_path)
    result = compile_text(tmp_path, SPEC)
    request = json.loads(result.files["serving/clients/request.json"])
    assert sorted(request["instances"][0]) == ["meta", "pixels"]
    assert np.asarray(request["instances"][0]["pixels"]).shape == (4, 4, 1)
    client = result.files["serving/clients/predict_grpc.py"]
    assert "INPUTS = {'pixels': ((4, 4, 1), 'float32'), 'meta': ((3,), 'float32')}" in client
    data = next(s for s in result.plan.steps if s.kind == "data").params
    assert data.input_shape == [19] and data.feature_order == ["pixels", "meta"]
    assert [i.name for i in data.inputs] == ["pixels", "meta"]


@pytest.mark.parametrize(("change", "where", "message"), [
    ("features: {pixels: x_pixels, other: x_meta}", "deploy.yaml:5:", "data.source.features: features named "
     "['other', 'pixels'] for model inputs ['meta', 'pixels']"),
    ("features: x_pixels", "deploy.yaml:9:3:", "model.inputs: 2 model inputs need the data's features named per input"),
])
def test_features_must_name_every_input(tmp_path: Path, change: str, where: str, message: str) -> None:
    _data(tmp_path)
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.replace("features: {pixels: x_pixels, meta: x_meta}", change), encoding="utf-8")
    result = invoke("validate", str(spec))
    assert result.exit_code == 2, result.output
    assert f"{where}" in result.output and message in result.output, result.output


def test_csv_column_groups_must_match_the_input_sizes(tmp_path: Path) -> None:
    (tmp_path / "data.csv").write_text("a,b,c,label\n1,2,3,0\n", encoding="utf-8")
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.replace("{kind: npz, path: data.npz, features: {pixels: x_pixels, meta: x_meta}, labels: y}",
                                 "{kind: csv, path: data.csv, label_column: label, "
                                 "feature_columns: {pixels: [a], meta: [b, c]}}"), encoding="utf-8")
    result = invoke("validate", str(spec))
    assert result.exit_code == 2, result.output
    assert "input 'pixels' of shape [4, 4, 1] takes 16 values; its features give 1" in result.output
    assert "input 'meta' of shape [3] takes 3 values; its features give 2" in result.output


def test_csv_column_groups_reach_each_input_as_a_named_feature(tmp_path: Path) -> None:
    from tfspec.runtime.datasets import load_dataset
    from tfspec.runtime.steps import data as data_step

    rows = ["w,label,r,h,g,b"] + [f"{i},{i % 3},{100 + i},{-i},{200 + i},{300 + i}" for i in range(60)]
    (tmp_path / "data.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    text = SPEC.replace("{kind: npz, path: data.npz, features: {pixels: x_pixels, meta: x_meta}, labels: y}",
                        "{kind: csv, path: data.csv, label_column: label, "
                        "feature_columns: {meta: [r, g, b], pixels: [w, h]}}")
    text = text.replace("{name: pixels, shape: [4, 4, 1]}", "{name: pixels, shape: [2], dtype: int32}").replace(
        "kind: int8, representative_samples: 50, input_type: float32, output_type: float32", "kind: none")
    result = compile_text(tmp_path, text)
    ctx = step_context(result, "data", tmp_path / "out")
    data_step.run(ctx)
    features, labels = load_dataset(ctx.out, tmp_path).arrays("train")
    assert sorted(features) == ["meta", "pixels"]
    assert features["pixels"].dtype == np.int32 and features["pixels"].shape[1:] == (2,)
    w = features["pixels"][:, 0]
    # each row's columns went to their input, in the mapping's column order
    np.testing.assert_array_equal(features["pixels"][:, 1], -w)
    np.testing.assert_allclose(features["meta"], np.stack([100 + w, 200 + w, 300 + w], axis=1))
    np.testing.assert_array_equal(labels, w % 3)


def test_android_loader_is_refused_for_several_inputs(tmp_path: Path) -> None:
    _data(tmp_path)
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.replace("    gates: {max_accuracy_drop: 0.05}\n",
                                 "    gates: {max_accuracy_drop: 0.05}\n"
                                 "    android: {package: com.example.two, asset_pack: {name: two_model, "
                                 "delivery: install_time}}\n"), encoding="utf-8")
    result = invoke("validate", str(spec))
    assert result.exit_code == 2 and "the Android loader feeds one input" in result.output, result.output


@pytest.mark.slow
def test_two_input_model_end_to_end(tmp_path: Path) -> None:
    pixels, meta, y = _data(tmp_path)
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir",
                    str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output
    report = read_json(tmp_path / "dist" / "report.json")
    trained = report["stages"][0]["value"]
    assert trained > 0.85  # needs both inputs: either alone tells at most two of the three classes apart
    edge = report["targets"]["edge"]
    assert edge["passed"], edge
    assert report["targets"]["serving"]["passed"]

    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2

    served = tmp_path / "dist" / "serving" / "models" / "twoinputs" / "1"
    signature = tf.saved_model.load(str(served)).signatures["serving_default"]
    assert sorted(signature.structured_input_signature[1]) == ["meta", "pixels"]
    scores = signature(pixels=tf.constant(pixels[:8]), meta=tf.constant(meta[:8]))["outputs"].numpy()
    assert scores.shape == (8, 3)
    records = list(tf.data.TFRecordDataset(str(served / "assets.extra" / "tf_serving_warmup_requests")))
    log = prediction_log_pb2.PredictionLog.FromString(records[0].numpy())
    assert sorted(log.predict_log.request.inputs) == ["meta", "pixels"]

    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(tmp_path / "dist" / "edge" / "twoinputs.tflite"))
    runner = interpreter.get_signature_runner()
    assert sorted(runner.get_input_details()) == ["meta", "pixels"]
    lite = list(runner(pixels=pixels[:1], meta=meta[:1]).values())[0]
    assert np.argmax(lite) == np.argmax(scores[0])
    info = read_json(tmp_path / "dist" / "edge" / "model_info.json")
    assert [i["name"] for i in info["inputs"]] == ["meta", "pixels"]
