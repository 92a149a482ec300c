"""``verify`` step: run the artifact over the test split and check the target's gates.

tflite artifacts run on ``ai_edge_litert.interpreter.Interpreter`` (inputs quantized with the input
tensor's scale/zero point, outputs dequantized), SavedModels through ``tf.saved_model.load`` and their
serving signature. Both are compared with the Keras model they came from (the baseline). A missed gate
does not stop the run: it is recorded here and the executor fails the run after every step ran.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.plan import MODEL_STEP_KINDS, SavedModelVerifyParams, TfliteVerifyParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import Dataset, load_dataset
from tfspec.runtime.keras_io import load_model, model_file
from tfspec.runtime.tf import import_tf

__all__ = ["run", "VERIFY_FILE", "quality", "evaluate_gates", "run_tflite", "LATENCY_SAMPLES"]

VERIFY_FILE = "verify.json"
LATENCY_SAMPLES = 200


def quality(predictions: np.ndarray, labels: np.ndarray, metric: str | None) -> float:
    """The quality metric on predictions: ``mae`` for regression, otherwise classification accuracy."""
    predictions = np.asarray(predictions, dtype=np.float64)
    if metric == "mae":
        return float(np.mean(np.abs(predictions.reshape(labels.shape) - labels)))
    if predictions.ndim == 1 or predictions.shape[-1] == 1:
        predicted = (predictions.reshape(-1) > 0.5).astype(np.int64)
    else:
        predicted = np.argmax(predictions, axis=-1)
    return float(np.mean(predicted == labels.reshape(-1).astype(np.int64)))


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    values = np.asarray(latencies) * 1000.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def run_tflite(path: Path, x: np.ndarray) -> tuple[np.ndarray, list[float], dict[str, Any]]:
    """Predictions (dequantized), per-example latencies in seconds and the I/O tensor details."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    inp = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    in_scale, in_zero = inp["quantization"]
    out_scale, out_zero = out["quantization"]
    in_dtype = np.dtype(inp["dtype"])
    outputs = []
    latencies = []
    for i in range(len(x)):
        sample = x[i:i + 1]
        if in_dtype.kind in "iu" and in_scale:
            info = np.iinfo(in_dtype)
            sample = np.clip(np.round(sample / in_scale + in_zero), info.min, info.max)
        interpreter.set_tensor(inp["index"], sample.astype(in_dtype))
        start = time.perf_counter()
        interpreter.invoke()
        latencies.append(time.perf_counter() - start)
        result = interpreter.get_tensor(out["index"])[0]
        if np.dtype(out["dtype"]).kind in "iu" and out_scale:
            result = (result.astype(np.float32) - out_zero) * out_scale
        outputs.append(result.astype(np.float32))
    details = {
        "input": {"dtype": in_dtype.name, "shape": [int(d) for d in inp["shape"]],
                  "scale": float(in_scale), "zero_point": int(in_zero)},
        "output": {"dtype": np.dtype(out["dtype"]).name, "shape": [int(d) for d in out["shape"]],
                   "scale": float(out_scale), "zero_point": int(out_zero)},
    }
    return np.stack(outputs), latencies, details


def _run_saved_model(path: Path, x: np.ndarray, input_name: str, output_name: str) -> tuple[np.ndarray, list[float]]:
    tf, _ = import_tf()
    function = tf.saved_model.load(str(path)).signatures["serving_default"]
    predictions = function(**{input_name: tf.constant(x)})[output_name].numpy()
    latencies = []
    for i in range(min(len(x), LATENCY_SAMPLES)):
        sample = tf.constant(x[i:i + 1])
        start = time.perf_counter()
        function(**{input_name: sample})[output_name].numpy()
        latencies.append(time.perf_counter() - start)
    return predictions, latencies


def _baseline(model_dir: Path, data: Dataset, metric: str | None) -> dict[str, Any]:
    """The Keras model's quality, file size and per-example latency (the reference for every drop)."""
    model = load_model(model_dir, compile=False)
    predictions = model.predict(data.x_test, batch_size=256, verbose=0)
    latencies = []
    for i in range(min(len(data.x_test), LATENCY_SAMPLES)):
        sample = data.x_test[i:i + 1]
        start = time.perf_counter()
        model(sample, training=False)
        latencies.append(time.perf_counter() - start)
    p50, p95 = _percentiles(latencies)
    return {"metric": metric or "accuracy", "value": quality(predictions, data.y_test, metric),
            "size_bytes": model_file(model_dir).stat().st_size, "weights_bytes": int(model.count_params()) * 4,
            "params": int(model.count_params()), "latency_ms": {"p50": p50, "p95": p95}}


def evaluate_gates(gates: dict[str, Any] | None, metrics: dict[str, Any], lower_is_better: bool) -> list[dict[str, Any]]:
    """Each set gate as ``{name, limit, value, passed}``."""
    gates = gates or {}
    checks = []
    for name, value in (
        ("max_accuracy_drop", metrics["accuracy_drop"]),
        ("min_accuracy", metrics["accuracy"]),
        ("max_size_kb", metrics["size_bytes"] / 1024.0),
        ("max_latency_ms", metrics["latency_ms_p95"]),
    ):
        limit = gates.get(name)
        if limit is None:
            continue
        # min_accuracy is a floor for accuracy-like metrics and a ceiling for errors (mae).
        at_most = name != "min_accuracy" or lower_is_better
        passed = value <= limit if at_most else value >= limit
        checks.append({"name": name, "limit": limit, "value": round(float(value), 6), "passed": bool(passed)})
    return checks


def run(ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    assert isinstance(p, (TfliteVerifyParams, SavedModelVerifyParams))
    metric = p.metric
    lower_is_better = metric == "mae"
    data = load_dataset(ctx.input_of_kind("data"))
    baseline = _baseline(ctx.input_of_kind(*MODEL_STEP_KINDS), data, metric)
    details: dict[str, Any] = {}
    if isinstance(p, TfliteVerifyParams):
        path = ctx.input_of_kind("tflite") / p.filename
        predictions, latencies, details = run_tflite(path, data.x_test)
        size = path.stat().st_size
    else:
        path = ctx.input_of_kind("export") / "saved_model"
        predictions, latencies = _run_saved_model(path, data.x_test, p.input_name, p.output_name)
        size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    value = quality(predictions, data.y_test, metric)
    p50, p95 = _percentiles(latencies)
    drop = (value - baseline["value"]) if lower_is_better else (baseline["value"] - value)
    metrics = {"accuracy": value, "accuracy_drop": drop, "size_bytes": size, "latency_ms_p50": p50,
               "latency_ms_p95": p95}
    gates = evaluate_gates(p.gates, metrics, lower_is_better)
    result = {"artifact": p.artifact, "metric": metric or "accuracy", "metrics": metrics, "gates": gates,
              "passed": all(g["passed"] for g in gates), "baseline": baseline, "tensors": details,
              "test_examples": int(len(data.x_test))}
    ctx.write_json(VERIFY_FILE, result)
    missed = [g["name"] for g in gates if not g["passed"]]
    ctx.log(f"  {metric or 'accuracy'} {value:.4f} (Keras {baseline['value']:.4f}), {size} bytes, "
            f"p95 {p95:.3f} ms" + (f"; MISSED {', '.join(missed)}" if missed else ""))
    return result
