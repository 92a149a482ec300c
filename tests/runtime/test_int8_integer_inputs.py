"""int8 of an embedding model: its int32 token-id inputs stay int32 (the converter quantizes float inputs
only), calibration feeds the ids as they are, and the Kotlin loader writes ints. Validate used to refuse it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime_testing import compile_text, invoke, read_json

SPEC = """\
api_version: tfspec/v1
name: tokens
version: 1
data:
  source: {kind: npz, path: data.npz, features: x, labels: y}
  split: {validation: 0.1, test: 0.25, seed: 1}
model:
  kind: sequential
  input_shape: [6]
  input_dtype: int32
  layers:
    - {type: embedding, input_dim: 12, output_dim: 8}
    - {type: global_average_pool1d}
    - {type: dense, units: 2, activation: softmax}
training:
  optimizer: {kind: adam, learning_rate: 0.02}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 8
targets:
  - kind: tflite
    name: phone
    quantization: {kind: int8, representative_samples: 40}
    android: {package: com.example.tokens, asset_pack: {name: tokens_model, delivery: install_time}}
    gates: {max_accuracy_drop: 0.05}
"""


def _data(root: Path) -> None:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, size=300)
    x = rng.integers(0, 6, size=(300, 6)) + 6 * y[:, None]  # class 1 uses the upper half of the vocabulary
    np.savez(root / "data.npz", x=x.astype(np.int32), y=y.astype(np.int64))


def test_int8_of_integer_inputs_validates_and_the_loader_writes_ints(tmp_path: Path) -> None:
    _data(tmp_path)
    result = compile_text(tmp_path, SPEC)
    kotlin = result.files["phone/app-snippets/src/main/java/com/example/tokens/TokensClassifier.kt"]
    assert "input.putInt(value.roundToInt())" in kotlin and "quantizationParams()" not in kotlin.split("val output")[0]


@pytest.mark.slow
def test_int8_embedding_model_keeps_int32_inputs(tmp_path: Path) -> None:
    _data(tmp_path)
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC, encoding="utf-8")
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir",
                    str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output
    report = read_json(tmp_path / "dist" / "report.json")
    phone = report["targets"]["phone"]
    assert phone["passed"] and report["stages"][0]["value"] > 0.9
    assert phone["tensors"]["input"]["dtype"] == "int32" and phone["tensors"]["output"]["dtype"] == "int8"
