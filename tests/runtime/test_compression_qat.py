"""The qat step: PQAT/CQAT keep what earlier stages achieved, and the model converts to an int8 .tflite that
runs on LiteRT (slow, through the executor and the tflite step)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from _compression_helpers import INT8_TFLITE, kernels, run_spec, shared_cache

from tfspec.runtime.datasets import load_dataset
from tfspec.runtime.keras_io import MODEL_H5_FILE


def _run_tflite(path: Path, x: np.ndarray) -> tuple[np.ndarray, dict, list[dict]]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    predictions = []
    for row in x:
        quantized = np.clip(np.round(row / scale + zero), -128, 127).astype(np.int8)[None]
        interpreter.set_tensor(inp["index"], quantized)
        interpreter.invoke()
        predictions.append(interpreter.get_tensor(out["index"])[0])
    tensors = []
    for detail in interpreter.get_tensor_details():
        try:
            tensors.append({**detail, "value": interpreter.get_tensor(detail["index"])})
        except ValueError:
            pass  # intermediate tensors are not readable after invoke
    return np.asarray(predictions), inp, tensors


@pytest.mark.slow
def test_pqat_keeps_sparsity_and_converts_to_int8(tmp_path: Path, tmp_path_factory) -> None:
    run = run_spec(tmp_path, shared_cache(tmp_path_factory), """\
  - {kind: prune, target_sparsity: 0.8, fine_tune_epochs: 3}
  - {kind: quantization_aware, preserve: [sparsity], fine_tune_epochs: 2}""", target=INT8_TFLITE)
    entry = run.entry("compress.1.quantization_aware")
    assert (entry / MODEL_H5_FILE).is_file()
    model = run.model("compress.1.quantization_aware")
    assert any(type(layer).__name__.startswith("Quantize") for layer in model.layers)
    hidden = kernels(model)["hidden"]
    assert float((hidden == 0).mean()) == pytest.approx(0.8, abs=0.02)  # PQAT kept the pruned zeros
    metrics = run.metrics("compress.1.quantization_aware")
    assert metrics["scheme"] == "Default8BitPrunePreserveQuantizeScheme"
    assert {layer["layer"] for layer in metrics["layers"]} == {"hidden", "logits"}

    tflite = run.entry("phone.tflite") / "digits.tflite"
    x_test, y_test = load_dataset(run.entry("data")).arrays("test")
    predictions, inp, tensors = _run_tflite(tflite, x_test)
    assert inp["dtype"] == np.int8
    accuracy = float((predictions.argmax(axis=1) == y_test).mean())
    assert accuracy >= 0.9
    assert accuracy >= metrics["accuracy_after"] - 0.02
    # The int8 weight tensor of the hidden layer (64 x 64) keeps the sparsity.
    weights = [t["value"] for t in tensors if t["dtype"] == np.int8 and tuple(t["shape"]) == (64, 64)]
    assert weights and float((weights[0] == 0).mean()) >= 0.78


@pytest.mark.slow
def test_cqat_keeps_clusters(tmp_path: Path, tmp_path_factory) -> None:
    run = run_spec(tmp_path, shared_cache(tmp_path_factory), """\
  - {kind: cluster, number_of_clusters: 8, fine_tune_epochs: 1}
  - {kind: quantization_aware, preserve: [clusters], fine_tune_epochs: 1}""", target=INT8_TFLITE)
    for kernel in kernels(run.model("compress.1.quantization_aware")).values():
        assert len(np.unique(kernel)) <= 8
    assert run.metrics("compress.1.quantization_aware")["scheme"] == "Default8BitClusterPreserveQuantizeScheme"
    x_test, y_test = load_dataset(run.entry("data")).arrays("test")
    predictions, _, _ = _run_tflite(run.entry("phone.tflite") / "digits.tflite", x_test)
    assert float((predictions.argmax(axis=1) == y_test).mean()) >= 0.9


@pytest.mark.slow
def test_pcqat_keeps_sparsity_and_clusters(tmp_path: Path, tmp_path_factory) -> None:
    run = run_spec(tmp_path, shared_cache(tmp_path_factory), """\
  - {kind: prune, target_sparsity: 0.6, fine_tune_epochs: 2}
  - {kind: cluster, number_of_clusters: 8, preserve_sparsity: true, fine_tune_epochs: 1}
  - {kind: quantization_aware, preserve: [sparsity, clusters], fine_tune_epochs: 1}""", target=INT8_TFLITE)
    hidden = kernels(run.model("compress.2.quantization_aware"))["hidden"]
    assert float((hidden == 0).mean()) == pytest.approx(0.6, abs=0.02)
    assert len(np.unique(hidden)) <= 8
    metrics = run.metrics("compress.2.quantization_aware")
    assert metrics["scheme"] == "Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)"
    x_test, y_test = load_dataset(run.entry("data")).arrays("test")
    predictions, _, _ = _run_tflite(run.entry("phone.tflite") / "digits.tflite", x_test)
    assert float((predictions.argmax(axis=1) == y_test).mean()) >= 0.9
