"""Pretrained SavedModels deployed as they are (``model.serve_as_is``): a TF1 builder export with predict,
regress and classify signatures, and a TF2 ``tf.Module`` with two signatures. No training; the served
bundle is the original SavedModel, every signature intact; verify, warmup and tflite use the chosen one."""

from __future__ import annotations

import filecmp
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime_testing import invoke, read_json

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

SPEC = """\
api_version: tfspec/v1
name: half
version: 1
data:
  source: {{kind: npz, path: data.npz, features: x, labels: y}}
  split: {{validation: 0.1, test: 0.2, seed: 3}}
model: {{kind: saved_model, path: {path}, input_shape: [1], {extra}}}
training: {{loss: mean_squared_error, metrics: [mae]}}
{compression}targets:
  - {{kind: tf_serving, name: serving, warmup: {{requests: 3}}, gates: {{max_error: 0.001}}}}
  - {{kind: tflite, name: phone, quantization: {{kind: none}}, gates: {{max_error: 0.001}}}}
"""


def _tf() -> Any:
    import tensorflow as tf

    return tf


def make_tf1_half_plus_two(path: Path) -> None:
    """TF Serving's ``saved_model_half_plus_two`` shape: y = 0.5 x + 2 behind predict/regress/classify."""
    tf = _tf()
    v1 = tf.compat.v1
    with tf.Graph().as_default() as graph, v1.Session(graph=graph) as session:
        a, b = v1.Variable(0.5, name="a"), v1.Variable(2.0, name="b")
        x = v1.placeholder(tf.float32, [None, 1], name="x")
        y = tf.add(a * x, b, name="y")
        examples = v1.placeholder(tf.string, [None], name="tf_example")
        parsed = v1.parse_example(examples, {"x": v1.FixedLenFeature([1], tf.float32)})
        y_example = tf.add(a * parsed["x"], b, name="y_example")
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(str(path))
        builder.add_meta_graph_and_variables(session, [v1.saved_model.tag_constants.SERVING], signature_def_map={
            "serving_default": v1.saved_model.predict_signature_def({"x": x}, {"y": y}),
            "regress_x_to_y": v1.saved_model.regression_signature_def(examples, y_example),
            "classify_x_to_y": v1.saved_model.classification_signature_def(examples, None, y_example),
        })
        builder.save()


def make_tf2_module(path: Path) -> None:
    """A ``tf.Module`` with two signatures: ``serving_default`` (0.5 x + 2) and ``times_three`` (3 x)."""
    tf = _tf()

    class Module(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a, self.b, self.k = tf.Variable(0.5), tf.Variable(2.0), tf.Variable(3.0)

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
        def half(self, x: Any) -> dict[str, Any]:
            return {"y": self.a * x + self.b}

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="value")])
        def triple(self, value: Any) -> dict[str, Any]:
            return {"tripled": self.k * value}

    module = Module()
    tf.saved_model.save(module, str(path), signatures={"serving_default": module.half.get_concrete_function(),
                                                       "times_three": module.triple.get_concrete_function()})


@pytest.fixture(scope="module")
def tf1_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tf1") / "half_plus_two"
    make_tf1_half_plus_two(path)
    return path


def _write(tmp_path: Path, model: Path, y_of_x: Any, extra: str = "serve_as_is: true", compression: str = "") -> Path:
    x = np.linspace(-3.0, 3.0, 200, dtype=np.float32).reshape(-1, 1)
    np.savez(tmp_path / "data.npz", x=x, y=y_of_x(x).reshape(-1).astype(np.float32))
    target = tmp_path / model.name
    if not target.exists():
        import shutil

        shutil.copytree(model, target)
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.format(path=model.name, extra=extra, compression=compression), encoding="utf-8")
    return spec


def _run(tmp_path: Path, spec: Path) -> Any:
    return invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir",
                  str(tmp_path / "dist"))


def _same_tree(a: Path, b: Path) -> bool:
    files_a = sorted(f.relative_to(a) for f in a.rglob("*") if f.is_file())
    files_b = sorted(f.relative_to(b) for f in b.rglob("*") if f.is_file())
    return files_a == files_b and all(filecmp.cmp(a / f, b / f, shallow=False) for f in files_a)


@pytest.mark.slow
def test_tf1_saved_model_is_served_unchanged_with_every_signature(tmp_path: Path, tf1_model: Path) -> None:
    spec = _write(tmp_path, tf1_model, lambda x: 0.5 * x + 2.0)
    result = _run(tmp_path, spec)
    assert result.exit_code == 0, result.output
    served = tmp_path / "dist" / "serving" / "models" / "half" / "1"
    extra = served / "assets.extra"
    assert (extra / "tf_serving_warmup_requests").is_file()
    import shutil

    shutil.rmtree(extra)  # the warmup records are TF Serving's addition; the rest is the original
    assert _same_tree(served, tf1_model)
    tf = _tf()
    loaded = tf.saved_model.load(str(served))
    assert set(loaded.signatures.keys()) == {"serving_default", "regress_x_to_y", "classify_x_to_y"}
    report = read_json(tmp_path / "dist" / "report.json")
    assert report["targets"]["serving"]["metrics"]["mae"] < 1e-5
    assert report["targets"]["phone"]["metrics"]["mae"] < 1e-5  # from_saved_model(signature_keys=[...])
    train = next(s for s in report["steps"] if s["id"] == "train")
    assert train["metrics"]["epochs"] == 0
    assert train["metrics"]["served_as_is"]["input_key"] == "x" and train["metrics"]["served_as_is"]["output_key"] == "y"


@pytest.mark.slow
def test_tf1_warmup_records_use_the_signature_keys(tmp_path: Path, tf1_model: Path) -> None:
    spec = _write(tmp_path, tf1_model, lambda x: 0.5 * x + 2.0)
    assert _run(tmp_path, spec).exit_code == 0
    from tensorflow_serving.apis import prediction_log_pb2

    tf = _tf()
    path = tmp_path / "dist" / "serving" / "models" / "half" / "1" / "assets.extra" / "tf_serving_warmup_requests"
    records = [prediction_log_pb2.PredictionLog.FromString(r.numpy()) for r in tf.data.TFRecordDataset(str(path))]
    assert len(records) == 3
    request = records[0].predict_log.request
    assert request.model_spec.signature_name == "serving_default" and list(request.inputs) == ["x"]


@pytest.mark.slow
def test_tf2_module_signature_is_picked_by_the_spec(tmp_path: Path) -> None:
    module = tmp_path / "src" / "module"
    module.parent.mkdir()
    make_tf2_module(module)
    spec = _write(tmp_path, module, lambda x: 3.0 * x, extra="serve_as_is: true, signature: times_three")
    result = _run(tmp_path, spec)
    assert result.exit_code == 0, result.output
    served = tmp_path / "dist" / "serving" / "models" / "half" / "1"
    tf = _tf()
    assert set(tf.saved_model.load(str(served)).signatures.keys()) == {"serving_default", "times_three"}
    report = read_json(tmp_path / "dist" / "report.json")
    assert report["targets"]["serving"]["metrics"]["mae"] < 1e-5
    assert report["targets"]["phone"]["metrics"]["mae"] < 1e-5
    records = tmp_path / "dist" / "serving" / "models" / "half" / "1" / "assets.extra" / "tf_serving_warmup_requests"
    from tensorflow_serving.apis import prediction_log_pb2

    first = next(iter(tf.data.TFRecordDataset(str(records))))
    request = prediction_log_pb2.PredictionLog.FromString(first.numpy()).predict_log.request
    assert request.model_spec.signature_name == "times_three" and list(request.inputs) == ["value"]


@pytest.mark.slow
def test_a_regress_signature_is_refused_for_verify_at_the_spec_line(tmp_path: Path, tf1_model: Path) -> None:
    spec = _write(tmp_path, tf1_model, lambda x: 0.5 * x + 2.0, extra="serve_as_is: true, signature: regress_x_to_y")
    result = _run(tmp_path, spec)
    assert result.exit_code == 2
    line = " ".join(result.output.split())
    assert "deploy.yaml:7:" in line and "model.signature" in line and "regress/classify signature" in line
    assert "Traceback" not in result.output


def test_a_non_keras_saved_model_cannot_be_trained(tmp_path: Path, tf1_model: Path) -> None:
    spec = _write(tmp_path, tf1_model, lambda x: x, extra="trainable: false")
    result = invoke("validate", str(spec))
    assert result.exit_code == 2
    line = " ".join(result.output.split())
    assert "deploy.yaml:7:" in line and "model.path" in line and "not a Keras SavedModel" in line
    assert "serve_as_is: true" in line


def test_compression_of_a_model_served_as_it_is_is_rejected(tmp_path: Path, tf1_model: Path) -> None:
    spec = _write(tmp_path, tf1_model, lambda x: x, extra="serve_as_is: true, trainable: true",
                  compression="compression:\n  - {kind: prune, target_sparsity: 0.5}\n")
    result = invoke("validate", str(spec))
    assert result.exit_code == 2
    line = " ".join(result.output.split())
    assert "model.trainable" in line and "compression[0]" in line and "needs a Keras model" in line
