"""LSTM models convert to builtin-ops TFLite (static batch of one, ``UNIDIRECTIONAL_SEQUENCE_LSTM``) and verify
on LiteRT within a point of Keras: the interpreter's recurrent state is reset between examples, in verify
and in the generated Kotlin loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime_testing import compile_text, invoke, read_json

SPEC = """\
api_version: tfspec/v1
name: sequences
version: 1
data:
  source: {kind: npz, path: data.npz, features: x, labels: y}
  split: {validation: 0.1, test: 0.25, seed: 2}
model:
  kind: sequential
  input_shape: [12, 3]
  layers:
    - {type: lstm, name: memory, units: 16}
    - {type: dense, name: head, units: 3, activation: softmax}
training:
  optimizer: {kind: adam, learning_rate: 0.01}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 8
targets:
  - kind: tflite
    name: phone
    quantization: {kind: none}
    android: {package: com.example.sequences, asset_pack: {name: sequences_model, delivery: install_time}}
    gates: {max_accuracy_drop: 0.01}
"""

KOTLIN = "phone/app-snippets/src/main/java/com/example/sequences/SequencesClassifier.kt"


def _data(root: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, size=480)
    x = rng.normal(size=(480, 12, 3)).astype(np.float32)
    x[np.arange(480), :, y] += 0.8  # the class's channel runs high along the whole sequence
    np.savez(root / "data.npz", x=x, y=y.astype(np.int64))


def test_the_kotlin_loader_resets_the_recurrent_state(tmp_path: Path) -> None:
    _data(tmp_path)
    result = compile_text(tmp_path, SPEC)
    kotlin = result.files[KOTLIN]
    assert kotlin.index("interpreter.resetVariableTensors()") < kotlin.index("interpreter.run(input, output)")
    dense = compile_text(tmp_path, SPEC.replace("{type: lstm, name: memory, units: 16}",
                                                "{type: flatten, name: memory}"), name="dense.yaml")
    assert "resetVariableTensors" not in dense.files[KOTLIN]


@pytest.mark.slow
def test_lstm_converts_to_builtin_ops_and_verifies_within_a_point(tmp_path: Path) -> None:
    _data(tmp_path)
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir",
                    str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output
    report = read_json(tmp_path / "dist" / "report.json")
    trained = report["stages"][0]["value"]
    assert trained > 0.8  # the data is learnable, so a lost state shows
    phone = report["targets"]["phone"]
    assert phone["passed"] and abs(phone["metrics"]["accuracy"] - trained) <= 0.01
    from ai_edge_litert.interpreter import Interpreter

    model = tmp_path / "dist" / "phone" / "sequences_model" / "src" / "main" / "assets" / "sequences.tflite"
    interpreter = Interpreter(model_path=str(model))
    ops = {op["op_name"] for op in interpreter._get_ops_details()}
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in ops and not any(op.startswith("Flex") for op in ops)
    assert list(interpreter.get_input_details()[0]["shape"]) == [1, 12, 3]
