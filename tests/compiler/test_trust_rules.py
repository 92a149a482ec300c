"""Validate rules that stop a run from failing at its end or gating the wrong thing (issue 11).

Each spec is YAML text in tmp_path compiled with ``tfspec.compile``: the exact line, key path and hint.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

import tfspec

TEMPLATE = """\
api_version: tfspec/v1
name: demo
version: 1
data:
  source: {source}
model:
  kind: sequential
  input_shape: {input_shape}
  layers:
{layers}
training:
  loss: {loss}
  metrics: {metrics}
  epochs: 2
targets:
  - {target}
"""

DIGITS = "{kind: sklearn_digits}"
MLP = """\
    - {type: dense, name: hidden, units: 32, activation: relu}
    - {type: dense, name: logits, units: 10, activation: softmax}"""
REGRESSION = """\
    - {type: dense, name: hidden, units: 32, activation: relu}
    - {type: dense, name: out, units: 1}"""


def errors(tmp_path: Path, *, target: str, layers: str = MLP, loss: str = "sparse_categorical_crossentropy",
           metrics: str = "[accuracy]", source: str = DIGITS, input_shape: str = "[64]") -> list[str]:
    path = tmp_path / "deploy.yaml"
    path.write_text(TEMPLATE.format(source=source, layers=layers, loss=loss, metrics=metrics, target=target,
                                    input_shape=input_shape), encoding="utf-8")
    return [d.format() for d in tfspec.compile(path).diagnostics]


def at(tmp_path: Path, needle: str, key: str) -> str:
    lines = (tmp_path / "deploy.yaml").read_text(encoding="utf-8").splitlines()
    n, line = next((n, line) for n, line in enumerate(lines, 1) if needle in line)
    return f"{tmp_path}/deploy.yaml:{n}:{line.index(key, line.index(needle)) + 1}"


def test_accuracy_gate_on_a_regression_model(tmp_path: Path) -> None:
    found = errors(tmp_path, layers=REGRESSION, loss="mean_squared_error", metrics="[mae]",
                   target="{kind: tf_serving, name: serving, gates: {max_accuracy_drop: 0.01}}")
    assert found == [f"{at(tmp_path, 'gates', 'max_accuracy_drop')}: targets[0].gates.max_accuracy_drop: "
                     "max_accuracy_drop does not apply: a mean_squared_error model is measured by mae (mean absolute "
                     "error, lower is better) (hint: use max_error_increase or max_error)"]


def test_error_gate_on_a_classifier(tmp_path: Path) -> None:
    found = errors(tmp_path, target="{kind: tf_serving, name: serving, gates: {max_error_increase: 0.5}}")
    assert found == [f"{at(tmp_path, 'gates', 'max_error_increase')}: targets[0].gates.max_error_increase: "
                     "max_error_increase does not apply: a classifier is measured by accuracy "
                     "(hint: use max_accuracy_drop or min_accuracy)"]


def test_error_gates_on_a_regression_model_are_accepted(tmp_path: Path) -> None:
    assert errors(tmp_path, layers=REGRESSION, loss="mean_absolute_error", metrics="[mae]",
                  target="{kind: tf_serving, name: serving, gates: {max_error_increase: 0.1, max_error: 2.0}}") == []


def test_select_tf_ops_is_rejected(tmp_path: Path) -> None:
    found = errors(tmp_path, target="{kind: tflite, name: phone, quantization: {kind: none}, "
                                    "supported_ops: [tflite_builtins, select_tf_ops]}")
    assert found == [f"{at(tmp_path, 'supported_ops', 'select_tf_ops')}: targets[0].supported_ops[1]: select_tf_ops "
                     "models cannot be verified: the LiteRT interpreter tfspec runs them on (ai-edge-litert) has no "
                     "Flex delegate, so every TensorFlow op in the model fails to load (hint: use only tflite_builtins "
                     "/ tflite_builtins_int8 ops (replace the layer that needs a TensorFlow op), or serve the model "
                     "with a tf_serving target)"]


def test_recurrent_layer_with_a_tflite_target_is_allowed(tmp_path: Path) -> None:
    """LSTM/GRU convert at a static batch of one (was: rejected until they could)."""
    layers = """\
    - {type: reshape, target_shape: [8, 8]}
    - {type: gru, name: rnn, units: 16}
    - {type: dense, name: logits, units: 10, activation: softmax}"""
    assert errors(tmp_path, layers=layers, target="{kind: tflite, name: phone, quantization: {kind: none}}") == []
    assert errors(tmp_path, layers=layers, target="{kind: tf_serving, name: serving}") == []


def _image_folder(root: Path, classes: list[str]) -> None:
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(2):
            Image.new("L", (8, 8), color=i * 100).save(root / name / f"{i}.png")


def test_image_folder_class_count_against_the_output_layer(tmp_path: Path) -> None:
    _image_folder(tmp_path / "images", ["cat", "dog", "fox"])
    layers = """\
    - {type: flatten}
    - {type: dense, name: logits, units: 10, activation: softmax}"""
    found = errors(tmp_path, layers=layers, input_shape="[8, 8, 1]", target="{kind: tf_serving, name: serving}",
                   source="{kind: image_folder, path: images, image_size: [8, 8], color_mode: grayscale}")
    assert found == [f"{at(tmp_path, 'name: logits', 'units')}: model.layers[1].units: the model has 10 classes but "
                     "images has 3 class folders (cat, dog, fox) (hint: make the output layer 3 units wide (and "
                     "data.num_classes / data.labels match))"]
