"""What the compiler cannot see in a builder's model, checked before any training (exit 2 at the spec line),
and the labels a builder model without ``num_classes`` gets (never an empty labels.txt)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from runtime_testing import invoke

BUILDER = """\
import tf_keras


def mlp(width):
    return tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(8, activation="relu", name="body"),
                                tf_keras.layers.Dense(width, activation="softmax", name="head")])
"""

SPEC = """\
api_version: tfspec/v1
name: demo
version: 1
data:
  source: {{kind: npz, path: train.npz, features: x, labels: y}}
  split: {{validation: 0.2, test: 0.25, seed: 1}}
model:
  kind: builder
  builder: "{module}:mlp"
  args: {{width: {width}}}
  input_shape: [4]
training:
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 1
  naive_baseline: warn  # random features: what is checked is the model, not what it learned
targets:
  - {{kind: tflite, name: phone, quantization: {{kind: none}}}}
{compression}"""


def _run(tmp_path: Path, width: int, compression: str = "") -> tuple[int, str]:
    module = f"nets_{tmp_path.name}"
    (tmp_path / f"{module}.py").write_text(BUILDER, encoding="utf-8")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.normal(size=(80, 4)).astype(np.float32),
             y=np.array([0, 1, 2, 3] * 20, dtype=np.int64))
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.format(module=module, width=width, compression=compression), encoding="utf-8")
    try:
        result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"),
                        "--dist-dir", str(tmp_path / "dist"))
    finally:
        sys.modules.pop(module, None)
    return result.exit_code, result.output


def _line(tmp_path: Path, needle: str, key: str) -> str:
    lines = (tmp_path / "deploy.yaml").read_text("utf-8").splitlines()
    n, line = next((n, line) for n, line in enumerate(lines, 1) if needle in line)
    return f"{tmp_path / 'deploy.yaml'}:{n}:{line.index(key) + 1}"


def test_misspelt_skip_layers_of_a_builder_model_fail_before_training(tmp_path: Path) -> None:
    code, output = _run(tmp_path, 4, "compression:\n  - {kind: prune, target_sparsity: 0.5, skip_layers: [haed]}\n")
    assert code == 2, output
    assert (f"{_line(tmp_path, 'kind: prune', 'haed')}: compression[0].skip_layers[0]: no layer named 'haed' in the "
            "builder model (hint: its layers: body, head)") in output
    assert "epoch" not in output.lower() and "run     compress" not in output


def test_builder_output_width_against_the_data(tmp_path: Path) -> None:
    code, output = _run(tmp_path, 10)
    assert code == 2, output
    assert (f"{_line(tmp_path, 'builder:', 'builder')}: model.builder: the model outputs 10 classes but the data "
            "has 4") in output


@pytest.mark.slow
def test_builder_without_num_classes_bundles_the_data_labels(tmp_path: Path) -> None:
    code, output = _run(tmp_path, 4)
    assert code == 0, output
    assert (tmp_path / "dist" / "phone" / "labels.txt").read_text("utf-8") == "0\n1\n2\n3\n"


IMAGE_SPEC = """\
api_version: tfspec/v1
name: pets
version: 1
data:
  source: {kind: image_folder, path: images, image_size: [8, 8], color_mode: grayscale}
  split: {validation: 0.2, test: 0.25, seed: 1}
model:
  kind: sequential
  input_shape: [8, 8, 1]
  layers:
    - {type: flatten}
    - {type: dense, name: logits, units: 3, activation: softmax}
training:
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 1
  naive_baseline: warn  # one epoch on 24 images: the bundle is tested, not the model
targets:
  - kind: tflite
    name: phone
    quantization: {kind: none}
    android: {package: com.example.pets, asset_pack: {name: pets_model, delivery: install_time}}
"""


@pytest.mark.slow
def test_image_folder_with_android_bundles_the_folder_names(tmp_path: Path) -> None:
    from PIL import Image

    for k, name in enumerate(["cat", "dog", "fox"]):
        (tmp_path / "images" / name).mkdir(parents=True)
        for i in range(8):
            Image.new("L", (8, 8), color=k * 80 + i).save(tmp_path / "images" / name / f"{i}.png")
    spec = tmp_path / "deploy.yaml"
    spec.write_text(IMAGE_SPEC, encoding="utf-8")
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir",
                    str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output  # was: labels.txt is written by both render and mobile.bundle
    assets = tmp_path / "dist" / "phone" / "pets_model" / "src" / "main" / "assets"
    assert (assets / "labels.txt").read_text("utf-8") == "cat\ndog\nfox\n"


RECURRENT = """\
import tf_keras


def rnn(width):
    return tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Reshape((4, 1)),
                                tf_keras.layers.LSTM(8, name="memory"),
                                tf_keras.layers.Dense(width, activation="softmax", name="head")])
"""


@pytest.mark.slow
def test_a_recurrent_builder_model_converts_to_tflite_and_verifies(tmp_path: Path) -> None:
    """Was: refused before training (the converter failed on the LSTM's TensorList loop)."""
    module = f"rnn_{tmp_path.name}"
    (tmp_path / f"{module}.py").write_text(RECURRENT, encoding="utf-8")
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "train.npz", x=rng.normal(size=(80, 4)).astype(np.float32),
             y=np.array([0, 1, 2, 3] * 20, dtype=np.int64))
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.format(module=module, width=4, compression="").replace(":mlp", ":rnn"), encoding="utf-8")
    try:
        result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir",
                        str(tmp_path / "dist"))
    finally:
        sys.modules.pop(module, None)
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "dist" / "report.json").read_text("utf-8"))
    phone = report["targets"]["phone"]["metrics"]
    assert abs(phone["accuracy"] - report["stages"][0]["value"]) < 1e-6
