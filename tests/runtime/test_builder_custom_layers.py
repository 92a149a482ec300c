"""A builder's model with a ``Lambda`` layer and a custom layer class goes through every step that reloads it.

The builder is the user's own code: the steps after ``train`` (a compression stage, ``evaluate``,
``export``, ``tflite``) load its model with Keras' safe mode off and the builder module's names as
custom objects. Before, ``evaluate`` failed with "Requested the deserialization of a Lambda layer with a
Python `lambda` inside it" and an unregistered custom class could not be located.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from runtime_testing import invoke

pytestmark = pytest.mark.slow

BUILDER = """\
import tensorflow as tf
import tf_keras

TOP = 12  # a module global the lambda reads: it resolves only with the module's names


class Scale(tf_keras.layers.Layer):
    \"\"\"A custom layer class, not registered with register_keras_serializable.\"\"\"

    def __init__(self, factor, **kwargs):
        super().__init__(**kwargs)
        self.factor = factor

    def call(self, x):
        return x * self.factor

    def get_config(self):
        return {**super().get_config(), "factor": self.factor}


def net(width):
    inputs = tf_keras.Input((64,), name="pixels")
    x = tf_keras.layers.Dense(32, activation="relu", name="body")(inputs)
    x = tf_keras.layers.Lambda(lambda t: tf.math.top_k(t, k=TOP).values, name="top")(x)
    x = Scale(0.5, name="scale")(x)
    outputs = tf_keras.layers.Dense(width, activation="softmax", name="head")(x)
    return tf_keras.Model(inputs, outputs)
"""

SPEC = """\
api_version: tfspec/v1
name: topk
version: 1
data:
  source: {{kind: sklearn_digits}}
  split: {{validation: 0.1, test: 0.2, seed: 7}}
  preprocessing: {{rescale: 0.0625}}
model:
  kind: builder
  builder: "{module}:net"
  args: {{width: 10}}
  input_shape: [64]
training:
  optimizer: {{kind: adam, learning_rate: 0.01}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 3
  batch_size: 64
compression:
  - {{kind: prune, target_sparsity: 0.5, fine_tune_epochs: 1, skip_layers: [top, scale]}}
targets:
  - {{kind: tflite, name: phone, quantization: {{kind: dynamic}}}}
  - {{kind: tf_serving, name: serving}}
"""


def test_lambda_and_custom_layer_survive_every_step(tmp_path: Path) -> None:
    module = f"topk_{tmp_path.name}"
    (tmp_path / f"{module}.py").write_text(BUILDER, encoding="utf-8")
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.format(module=module), encoding="utf-8")
    try:
        result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"),
                        "--dist-dir", str(tmp_path / "dist"))
    finally:
        sys.modules.pop(module, None)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "dist" / "report.json").read_text("utf-8"))
    assert [s["label"] for s in report["stages"]] == ["trained", "compress.0.prune"]
    assert {row["name"]: row["type"] for row in report["model_summary"]}["scale"] == "Scale"
    assert report["stages"][0]["value"] > 0.3  # chance: 0.1
    for name in ("phone", "serving"):
        assert report["targets"][name]["metrics"]["accuracy"] > 0.3, name
