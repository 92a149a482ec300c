"""``verify`` step: run the artifact over the test split and check the target's gates.

tflite artifacts run on ``ai_edge_litert.interpreter.Interpreter`` (inputs quantized with the input
tensor's scale/zero point, outputs dequantized), SavedModels through ``tf.saved_model.load`` and their
serving signature. The reference is the ``evaluate`` step's measurement of the run's Keras models:
a drop (or an error increase) is measured from the *trained* model, before any compression, so what
compression cost counts against the gate; the Keras baseline latency is the final model's, measured
once per run there. A missed gate does not stop the run: it is recorded here and the executor fails the
run after every step ran.

What each gate compares (``metric`` is ``accuracy`` for classifiers, ``mae`` for regression):

* ``max_accuracy_drop``: trained model's accuracy − artifact's accuracy ≤ limit.
* ``min_accuracy``: artifact's accuracy ≥ limit.
* ``max_error_increase``: artifact's error − trained model's error ≤ limit (in the metric's units).
* ``max_error``: artifact's error ≤ limit.
* ``max_size_kb``: artifact's size in KiB (the ``.tflite`` file, or the SavedModel's files but
  ``assets.extra/``) ≤ limit.
* ``max_latency_ms``: artifact's p95 latency of one example on this machine's CPU ≤ limit; each example's
  latency is the fastest of ``LATENCY_REPEATS`` calls (a call another process preempted does not count),
  and the machine's load average and cores are recorded beside the figure (``latency_load_1m``).
* ``beats_naive_baseline`` (every artifact, unless ``training.naive_baseline: warn``): the artifact's accuracy
  above (error below) the naive baseline's: always the training split's majority class (or labels' mean).
* ``gpu_delegable`` (tflite): no op falls back from the GPU delegate to the CPU; ``npu_full_integer``
  (int8 tflite listing ``npu``): integer I/O and int8 builtin ops only. Both from ``accelerators.py``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.plan import GatesParams, SavedModelVerifyParams, TfliteVerifyParams
from tfspec.runtime.accelerators import (
    accelerator_gates, analyzer_report, coverage, coverage_line, execution, execution_line,
    interpreter_kernels,
)
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import Dataset, example_at, example_count, load_dataset
from tfspec.runtime.quality import (
    LATENCY_METHOD,
    LATENCY_REPEATS,
    LATENCY_SAMPLES,
    NAIVE_BASELINE_GATE,
    beats,
    confusion_matrix,
    is_error_metric,
    per_class,
    machine_load,
    percentiles,
    quality,
    time_single_calls,
)
from tfspec.runtime.signatures import load_signature, signature_feed
from tfspec.runtime.steps.evaluate import EVALUATION_FILE, gzipped_size
from tfspec.runtime.tf import import_tf

__all__ = ["run", "VERIFY_FILE", "quality", "evaluate_gates", "run_tflite", "TfliteModel", "Measured", "measure_tflite",
           "measure_saved_model", "saved_model_sizes", "LATENCY_SAMPLES", "GATE_VALUES"]

VERIFY_FILE = "verify.json"

# quality gate (``GatesParams`` field, in checking order) → (the metrics key it reads, True when the value must
# stay at or below the limit)
GATE_VALUES: dict[str, tuple[str, bool]] = {
    "max_accuracy_drop": ("drop_from_trained", True),
    "min_accuracy": ("value", False),
    "max_error_increase": ("drop_from_trained", True),
    "max_error": ("value", True),
    "max_size_kb": ("size_kb", True),
    "max_latency_ms": ("latency_ms_p95", True),
}


def _rows(x: Any) -> Any:
    """One example at a time from an array or from an iterable of batches (a streamed split); a batch of a
    model with several inputs is ``{input name: array}``."""
    for batch in ([x] if isinstance(x, (np.ndarray, dict)) else x):
        for i in range(example_count(batch)):
            yield example_at(batch, i)


def _tensor(detail: dict[str, Any]) -> dict[str, Any]:
    scale, zero = detail["quantization"]
    return {"dtype": np.dtype(detail["dtype"]).name, "shape": [int(d) for d in detail["shape"]],
            "scale": float(scale), "zero_point": int(zero)}


def _quantized(sample: np.ndarray, detail: dict[str, Any]) -> np.ndarray:
    """``sample`` in the input tensor's dtype: quantized with its scale and zero point when it is integer."""
    dtype = np.dtype(detail["dtype"])
    scale, zero = detail["quantization"]
    if dtype.kind in "iu" and scale:
        info = np.iinfo(dtype)
        sample = np.clip(np.round(sample / scale + zero), info.min, info.max)
    return sample.astype(dtype)


def output_detail(interpreter: Any, output_key: str | None) -> dict[str, Any]:
    """The output tensor read: the signature output ``output_key`` (a SavedModel served as it is keeps its
    signature's output keys, and its first tensor may be another output, e.g. int64 class ids), or the first."""
    if output_key is None:
        return interpreter.get_output_details()[0]
    signatures = interpreter.get_signature_list()
    for name in signatures:
        outputs = interpreter.get_signature_runner(name).get_output_details()
        if output_key in outputs:
            index = outputs[output_key]["index"]
            return next(d for d in interpreter.get_output_details() if d["index"] == index)
    raise RuntimeError(f"the .tflite has no signature output {output_key!r} ({signatures})")


class TfliteModel:
    """One ``.tflite`` on LiteRT's interpreter (one thread), fed one example at a time: inputs quantized with
    each input tensor's scale and zero point, by signature key when it has several; the output read
    (:func:`output_detail`) dequantized."""

    def __init__(self, path: Path, xnnpack: bool = True, output_key: str | None = None) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(path), num_threads=1, **interpreter_kernels(xnnpack))
        self.interpreter.allocate_tensors()
        self.first = self.interpreter.get_input_details()[0]
        self.named = len(self.interpreter.get_input_details()) > 1
        # several inputs: the tensor behind each signature key (the interpreter's own order is not the model's)
        self.feeds = self.interpreter.get_signature_runner().get_input_details() if self.named else {None: self.first}
        self.out = output_detail(self.interpreter, output_key)

    def feed(self, sample: Any) -> None:
        """Set the inputs to one example (with its batch axis; a dict by input name for several inputs)."""
        # recurrent state (LSTM/GRU variable tensors) would carry over from the previous call
        self.interpreter.reset_all_variables()
        for name, value in (sample if isinstance(sample, dict) else {None: sample}).items():
            self.interpreter.set_tensor(self.feeds[name]["index"], _quantized(value, self.feeds[name]))

    def timed_invoke(self, sample: Any) -> float:
        """Seconds of one ``invoke`` on ``sample`` (feeding it is not timed)."""
        self.feed(sample)
        start = time.perf_counter()
        self.interpreter.invoke()
        return time.perf_counter() - start

    def output(self) -> np.ndarray:
        result = self.interpreter.get_tensor(self.out["index"])[0]
        scale, zero = self.out["quantization"]
        if np.dtype(self.out["dtype"]).kind in "iu" and scale:
            result = (result.astype(np.float32) - zero) * scale
        return result.astype(np.float32)

    def details(self) -> dict[str, Any]:
        details = {"input": _tensor(self.first), "output": _tensor(self.out)}
        if self.named:
            details["inputs"] = {name: _tensor(detail) for name, detail in sorted(self.feeds.items())}
        return details


def run_tflite(path: Path, x: Any, xnnpack: bool = True,
               output_key: str | None = None) -> tuple[np.ndarray, list[float], dict[str, Any]]:
    """Predictions (dequantized), the latencies in seconds of the first ``LATENCY_SAMPLES`` examples (each the
    fastest of ``LATENCY_REPEATS`` invokes, as every model is timed) and the I/O tensor details; ``x`` is an
    array or an iterable of batches (only the predictions are kept). A model with several inputs gets
    ``{input name: array}`` batches, fed by the signature's input keys; ``output_key`` picks the signature
    output read (:func:`output_detail`)."""
    model = TfliteModel(path, xnnpack, output_key)
    outputs = []
    latencies = []
    for count, sample in enumerate(_rows(x)):
        # the fastest of LATENCY_REPEATS invokes (of the first LATENCY_SAMPLES examples) counts, as quality.py times
        best = min(model.timed_invoke(sample) for _ in range(LATENCY_REPEATS if count < LATENCY_SAMPLES else 1))
        if count < LATENCY_SAMPLES:
            latencies.append(best)
        outputs.append(model.output())
    return np.stack(outputs), latencies, model.details()


def _saved_model_call(path: Path, input_name: str | None, output_name: str | None,
                      signature: str = "serving_default") -> Any:
    """``call(x) → outputs`` of a SavedModel's ``signature`` for a batch of examples (an array, or a dict by input
    name); a SavedModel served as it is (``input_name`` None) through its signature's one input."""
    tf, _ = import_tf()
    if input_name is None:  # served as it is: the input key comes from the signature, the output from the plan
        return load_signature(path, signature, output_key=output_name).predict
    function = tf.saved_model.load(str(path)).signatures[signature]
    return lambda x: function(**signature_feed(x, input_name))[output_name].numpy()


def _run_saved_model(path: Path, batches: Any, first: np.ndarray, input_name: str | None,
                     output_name: str | None, signature: str = "serving_default") -> tuple[np.ndarray, list[float], Any]:
    """Predictions over streamed batches; latencies of single calls on the ``first`` examples; the call."""
    call = _saved_model_call(path, input_name, output_name, signature)
    predictions = np.concatenate([call(x) for x in batches.as_numpy_iterator()])
    return predictions, time_single_calls(call, first), call


def _timer(call: Any) -> Any:
    """A SavedModel's call as a timer: seconds of one call on one example (as ``time_single_calls`` times)."""
    def timed(sample: Any) -> float:
        start = time.perf_counter()
        call(sample)
        return time.perf_counter() - start

    return timed


def evaluate_gates(gates: GatesParams, metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """Each set gate as ``{name, limit, value, passed}`` (``GATE_VALUES`` says which metric it reads)."""
    checks = []
    for name, (key, at_most) in GATE_VALUES.items():
        limit = getattr(gates, name)
        if limit is None:
            continue
        value = float(metrics[key])
        passed = value <= limit if at_most else value >= limit
        checks.append({"name": name, "limit": limit, "value": round(value, 6), "passed": bool(passed)})
    return checks


@dataclasses.dataclass
class Measured:
    """One artifact measured on the test split: predictions, per-example latencies (s), file sizes, and
    ``timing() → (timer, examples)`` for timing it again (``timer(example) → seconds``), made when needed."""

    predictions: np.ndarray
    latencies: list[float]
    size: int
    packed: int
    timing: Any
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


def saved_model_sizes(path: Path) -> tuple[int, int]:
    """Bytes (raw, gzipped) of the model's files: ``saved_model.pb``, ``variables/``, ``assets/``; not
    ``assets.extra/`` (warm-up records, tfspec's model info and upload marker), which a released version holds
    and a candidate gains only when bundled."""
    files = sorted(f for f in path.rglob("*") if f.is_file() and f.relative_to(path).parts[0] != "assets.extra")
    return sum(f.stat().st_size for f in files), sum(gzipped_size(f.read_bytes()) for f in files)


def measure_tflite(path: Path, data: Dataset, raw: bool, xnnpack: bool, output_key: str | None) -> Measured:
    predictions, latencies, details = run_tflite(path, data.features("test", raw=raw).as_numpy_iterator(), xnnpack,
                                                 output_key)
    def timing() -> tuple[Any, Any]:
        return TfliteModel(path, xnnpack, output_key).timed_invoke, data.take("test", LATENCY_SAMPLES, raw=raw)

    return Measured(predictions, latencies, path.stat().st_size, gzipped_size(path.read_bytes()), timing, details)


def measure_saved_model(path: Path, data: Dataset, raw: bool, input_name: str | None, output_name: str | None,
                        signature: str) -> Measured:
    # in_model (raw): the served model takes raw examples and preprocesses them itself
    first = data.take("test", LATENCY_SAMPLES, raw=raw)
    predictions, latencies, call = _run_saved_model(path, data.features("test", raw=raw), first, input_name,
                                                    output_name, signature)
    size, packed = saved_model_sizes(path)
    return Measured(predictions, latencies, size, packed, lambda: (_timer(call), first))


def run(ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    assert isinstance(p, (TfliteVerifyParams, SavedModelVerifyParams))
    metric = p.metric
    error = is_error_metric(metric)
    data = load_dataset(ctx.input_of_kind("data"), ctx.root)
    evaluation = json.loads((ctx.input_of_kind("evaluate") / EVALUATION_FILE).read_text("utf-8"))
    ops: dict[str, Any] | None = None  # op coverage per accelerator (tflite): runtime/accelerators.py
    if isinstance(p, TfliteVerifyParams):
        path = ctx.input_of_kind("tflite") / p.filename
        ops = coverage(analyzer_report(path.read_bytes()))
        ops["execution"] = execution(p.accelerators, ops, p.xnnpack)
        ctx.log(coverage_line(ops))
        ctx.log(execution_line(ops["execution"]))
        candidate = measure_tflite(path, data, p.raw_inputs, p.xnnpack, p.output_key)
    else:
        candidate = measure_saved_model(ctx.input_of_kind("export") / "saved_model", data, p.raw_inputs, p.input_name,
                                        p.output_name, p.signature)
    load = machine_load()  # right after the timing: what the latency figures were measured under
    y_test = data.labels("test")
    predictions, latencies, size, packed = candidate.predictions, candidate.latencies, candidate.size, candidate.packed
    value = quality(predictions, y_test, metric)
    p50, p95 = percentiles(latencies)
    trained = evaluation["trained"]
    final = evaluation["baseline"]["value"]
    # positive = worse, for either kind of metric
    from_trained = (value - trained) if error else (trained - value)
    from_final = (value - final) if error else (final - value)
    metrics: dict[str, Any] = {"metric": metric, "value": value, "trained_value": trained,
                               "drop_from_trained": from_trained, "drop_from_final_keras": from_final,
                               "size_bytes": size, "gzip_bytes": packed, "size_kb": size / 1024.0,
                               "latency_ms_p50": p50, "latency_ms_p95": p95, "latency_method": LATENCY_METHOD,
                               "latency_load_1m": load["load_1m"], "latency_cores": load["cores"]}
    if error:
        metrics.update({metric: value, "error_increase": from_trained})
    else:
        # report.json's original keys: accuracy and the drop (now from the trained model)
        metrics.update({"accuracy": value, "accuracy_drop": from_trained})
    gates = evaluate_gates(p.gates, metrics)
    if isinstance(p, TfliteVerifyParams) and ops is not None:
        gates += accelerator_gates(p.gates.gpu_delegable, p.npu_full_integer, ops)
    naive = evaluation.get("naive_baseline")
    if naive is not None and naive["on_failure"] == "fail":  # training.naive_baseline: the spec's own gate
        gates.append({"name": NAIVE_BASELINE_GATE, "limit": round(naive["value"], 6), "value": round(value, 6),
                      "passed": beats(value, naive["value"], metric)})
    result: dict[str, Any] = {"artifact": p.artifact, "metric": metric, "metrics": metrics, "gates": gates,
                              "passed": all(g["passed"] for g in gates), "baseline": evaluation["baseline"],
                              "tensors": candidate.details, "test_examples": int(len(y_test)),
                              "input_contract": "raw" if p.raw_inputs else "preprocessed"}
    if ops is not None:
        result["accelerators"] = ops
    num_classes = max(data.num_classes or 2, 2)  # one sigmoid unit: two classes
    if not error:
        result["confusion"] = confusion_matrix(predictions, y_test, num_classes)
        result["per_class"] = per_class(result["confusion"])
    ctx.write_json(VERIFY_FILE, result)
    missed = [g["name"] + (f" (on the CPU: {', '.join(g['ops'])})" if g.get("ops") else "") for g in gates if not g["passed"]]
    change = "increase" if error else "drop"
    ctx.log(f"  {metric} {value:.4f} (trained Keras {trained:.4f}, {change} {from_trained:+.4f}), {size} bytes, "
            f"p95 {p95:.3f} ms (load {load['load_1m']} on {load['cores']} cores)"
            + (f"; MISSED {', '.join(missed)}" if missed else ""))
    return result
