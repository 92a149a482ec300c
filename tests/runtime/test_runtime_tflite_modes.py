"""Every tflite quantization mode converts a trained digits model and runs on LiteRT; augmentation and
label modes of the shared tf.data pipeline."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from tfspec.plan import TfliteParams
from tfspec.runtime.datasets import Dataset, make_dataset, representative_samples
from tfspec.runtime.fit import compile_model, fit_model
from tfspec.runtime.model_builder import build_model
from tfspec.runtime.steps.tflite import configure, convert
from tfspec.runtime.steps.verify import LATENCY_SAMPLES, quality, run_tflite
from tfspec.runtime.tf import import_tf
from runtime_testing import plan_fit, plan_model

tf, keras = import_tf()

FIT = plan_fit({"optimizer": {"kind": "adam", "learning_rate": 0.003}, "loss": {"kind": "sparse_categorical_crossentropy"},
                "metrics": ["accuracy"], "batch_size": 32, "seed": 1})
MODES = {
    "none": {"quantization": "none", "optimizations": []},
    "dynamic": {"quantization": "dynamic", "optimizations": ["DEFAULT"]},
    "float16": {"quantization": "float16", "optimizations": ["DEFAULT"], "supported_types": ["float16"]},
    "int8": {"quantization": "int8", "optimizations": ["DEFAULT"], "representative_samples": 100,
             "supported_ops": ["tflite_builtins_int8"], "inference_input_type": "int8", "inference_output_type": "int8"},
    "uint8": {"quantization": "int8", "optimizations": ["DEFAULT"], "representative_samples": 100,
              "supported_ops": ["tflite_builtins_int8"], "inference_input_type": "uint8", "inference_output_type": "uint8"},
    "int8-float-io": {"quantization": "int8", "optimizations": ["DEFAULT"], "representative_samples": 100,
                      "supported_ops": ["tflite_builtins"]},
    "int16x8": {"quantization": "int16x8", "optimizations": ["DEFAULT"], "representative_samples": 100,
                "supported_ops": ["experimental_tflite_builtins_activations_int16_weights_int8"]},
}
BASE = {"optimizations": [], "representative_samples": 0, "supported_ops": [], "supported_types": [],
        "inference_input_type": "float32", "inference_output_type": "float32", "quantization_aware": False,
        "per_channel_dense": False, "filename": "m.tflite", "xnnpack": True, "signature": None, "raw_input_shape": None}


def _params(mode: str) -> TfliteParams:
    return TfliteParams(**{**BASE, **MODES[mode]})


IO_DTYPES = {"none": "float32", "dynamic": "float32", "float16": "float32", "int8": "int8", "uint8": "uint8",
             "int8-float-io": "float32", "int16x8": "float32"}


@pytest.fixture(scope="module")
def trained() -> tuple[object, Dataset, float]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    order = np.random.default_rng(0).permutation(len(digits.target))
    x, y = (digits.data[order] / 16.0).astype(np.float32), digits.target[order].astype(np.int64)
    data = Dataset.from_arrays(x[:1300], y[:1300], x[:0], y[:0], x[1300:], y[1300:], {"num_classes": 10})
    model = build_model(plan_model({"kind": "sequential", "input_shape": [64], "layers": [
        {"type": "dense", "units": 32, "activation": "relu"}, {"type": "dense", "units": 10, "activation": "softmax"}]}),
        spec_dir=Path("."), seed=1)
    compile_model(model, FIT)
    fit_model(model, data, fit=FIT, epochs=12, quiet=True)
    keras_accuracy = quality(model.predict(data.arrays("test")[0], verbose=0), data.arrays("test")[1], "accuracy")
    assert keras_accuracy >= 0.9
    return model, data, keras_accuracy


@pytest.mark.parametrize("mode", sorted(MODES))
def test_mode_converts_and_keeps_accuracy_on_litert(mode: str, trained: tuple, tmp_path: Path) -> None:
    model, data, keras_accuracy = trained
    params = MODES[mode]
    calibration = representative_samples(data, params["representative_samples"]) if params.get(
        "representative_samples") else None
    path = tmp_path / "m.tflite"
    path.write_bytes(convert(model, _params(mode), calibration))
    predictions, latencies, tensors = run_tflite(path, data.arrays("test")[0])
    assert tensors["input"]["dtype"] == IO_DTYPES[mode] == tensors["output"]["dtype"]
    if IO_DTYPES[mode] != "float32":
        assert tensors["input"]["scale"] > 0  # real quantization parameters, used to quantize the inputs
    assert len(latencies) == min(len(data.arrays("test")[0]), LATENCY_SAMPLES)  # as many as every model's
    accuracy = quality(predictions, data.arrays("test")[1], "accuracy")
    assert abs(accuracy - keras_accuracy) <= 0.02, (mode, accuracy, keras_accuracy)


def test_quantized_files_are_smaller_than_float32(trained: tuple, tmp_path: Path) -> None:
    model, data, _ = trained
    sizes = {}
    for mode in ("none", "float16", "int8"):
        params = MODES[mode]
        calibration = representative_samples(data, 100) if params.get("representative_samples") else None
        sizes[mode] = len(convert(model, _params(mode), calibration))
    assert sizes["int8"] < sizes["float16"] < sizes["none"]


@pytest.mark.parametrize("mode", sorted(MODES))
def test_conversion_is_byte_identical_to_from_keras_model(mode: str, trained: tuple) -> None:
    # The step converts a tf_keras model without TFLiteConverter.from_keras_model (whose Keras 3 check
    # imports Keras 3: TFLiteKerasModelConverterV2._convert_keras_to_saved_model, tensorflow/lite/python/
    # lite.py, TF 2.21.0); the flatbuffer, its conversion metadata included, must be the one that gives.
    model, data, _ = trained
    params = _params(mode)
    calibration = representative_samples(data, 100) if MODES[mode].get("representative_samples") else None
    reference = tf.lite.TFLiteConverter.from_keras_model(model)
    configure(reference, tf, params, calibration)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        expected = reference.convert()
    assert convert(model, params, calibration) == expected


def test_conversion_does_not_import_keras_3(tmp_path: Path) -> None:
    # A fresh process: this module's other tests import Keras 3 through from_keras_model.
    script = """
import sys
from pathlib import Path
from tfspec.plan import TfliteParams
from tfspec.runtime.steps.tflite import convert
from tfspec.runtime.tf import import_tf
tf, keras = import_tf()
model = keras.Sequential([keras.layers.Input((4,)), keras.layers.Dense(2, activation="softmax")])
params = TfliteParams(**%r)
assert convert(model, params, None)[4:8] == b"TFL3"
print("keras 3 imported:", "keras" in sys.modules)
""" % {**BASE, **MODES["none"]}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "keras 3 imported: False" in done.stdout, done.stdout


def test_augmentation_applies_to_training_batches_only() -> None:
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(16, 8, 8, 1)).astype(np.float32)
    y = np.arange(16) % 2
    augmentation = {"random_flip": "horizontal", "random_rotation": 0.2, "random_zoom": 0.2,
                    "random_translation": 0.1, "random_contrast": 0.3}
    loss = "sparse_categorical_crossentropy"
    train = next(iter(make_dataset(x, y, batch_size=16, loss=loss, training=plan_fit({"seed": 3}, augmentation))))
    evaluation = next(iter(make_dataset(x, y, batch_size=16, loss=loss)))
    np.testing.assert_array_equal(evaluation[0].numpy(), x)  # unchanged and in order
    assert train[0].shape == x.shape
    assert not np.allclose(np.sort(train[0].numpy().reshape(16, -1), axis=0), np.sort(x.reshape(16, -1), axis=0))


def test_label_modes_follow_the_loss() -> None:
    x = np.zeros((4, 2), np.float32)
    y = np.array([0, 2, 1, 2])
    _, one_hot = next(iter(make_dataset(x, y, batch_size=4, loss="categorical_crossentropy", num_classes=3)))
    np.testing.assert_array_equal(one_hot.numpy(), np.eye(3)[y])
    _, sparse = next(iter(make_dataset(x, y, batch_size=4, loss="sparse_categorical_crossentropy")))
    assert sparse.dtype == tf.int64
    _, floats = next(iter(make_dataset(x, y, batch_size=4, loss="mean_squared_error")))
    assert floats.dtype == tf.float32
