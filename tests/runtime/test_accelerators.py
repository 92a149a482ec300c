"""Op coverage per accelerator of converted models (runtime/accelerators.py) and the ``gpu_delegable`` gate.

Real conversions and the real TFLite analyzer: a model with an op the GPU delegate has no kernel for
fails the gate with the op named; the example's model converted as its float16 variant passes it.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from tfspec.compiler.pipeline import compile_spec
from tfspec.plan import TfliteParams
from tfspec.runtime.accelerators import (
    GPU_DELEGATE_OPS, accelerator_gates, analyzer_report, coverage, coverage_line, execution, execution_line,
    parse_report,
)
from tfspec.runtime.model_builder import build_model
from tfspec.runtime.steps.tflite import convert
from tfspec.runtime.tf import import_tf

from runtime_testing import plan_model
from tfspec_testing import EXAMPLE

tf, keras = import_tf()


def _example_plan(tmp_path: Path, android: dict) -> dict:
    tree = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    tree["compression"] = []
    target = next(t for t in tree["targets"] if t["name"] == "android")
    target.update(android)
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    result = compile_spec(path, environ={})
    assert result.ok, [str(d) for d in result.diagnostics]
    return {s["id"]: s["params"] for s in json.loads(result.files["plan.json"])["steps"]} | {"model": tree["model"]}


def _example_tflite(tmp_path: Path, android: dict) -> tuple[bytes, dict]:
    steps = _example_plan(tmp_path, android)
    model = build_model(plan_model(steps["model"]), spec_dir=tmp_path, seed=1)
    conversion = steps["android.tflite"]
    calibration = None
    if conversion["representative_samples"]:
        calibration = np.random.default_rng(0).random((20, 64), dtype=np.float32)
    return convert(model, TfliteParams.model_validate(conversion), calibration), steps["android.verify"]


def test_example_float16_target_passes_gpu_delegable(tmp_path: Path) -> None:
    flatbuffer, verify = _example_tflite(tmp_path, {"quantization": {"kind": "float16"},
                                                    "gates": {"gpu_delegable": True}})
    assert verify["accelerators"] == ["gpu", "cpu"]  # the default for float16
    ops = coverage(analyzer_report(flatbuffer))
    assert ops["ops"] and set(ops["ops"]) <= GPU_DELEGATE_OPS
    assert ops["gpu"]["coverage"] == 1.0 and ops["gpu"]["cpu_fallback"] == []
    checks = accelerator_gates(verify["gates"]["gpu_delegable"], verify["npu_full_integer"], ops)
    assert checks == [{"name": "gpu_delegable", "limit": 0, "value": 0, "passed": True, "ops": []}]
    assert ops["npu"]["integer_io"] is False  # float16 keeps float I/O
    assert coverage_line(ops) == "  ops delegated: gpu 5/5, npu 0/5 (I/O FLOAT32 in, FLOAT32 out: not 8-bit integer)"


def test_an_op_without_a_gpu_kernel_fails_gpu_delegable_with_the_op_named() -> None:
    @tf.function(input_signature=[tf.TensorSpec([1, 64], tf.float32)])
    def top3(x):
        return tf.math.top_k(tf.nn.relu(x), k=3).values

    flatbuffer = tf.lite.TFLiteConverter.from_concrete_functions([top3.get_concrete_function()], top3).convert()
    text = analyzer_report(flatbuffer)
    ops = coverage(text)
    assert "TOPK_V2" in ops["ops"]
    [check] = accelerator_gates(True, False, ops)
    assert check["passed"] is False and check["value"] == 1
    assert check["ops"] == ["TOPK_V2 (Subgraph#0 Op#1)"]
    assert ops["gpu"]["delegated"] == len(ops["ops"]) - 1
    # Without the gate nothing is checked, but the coverage is still recorded.
    assert accelerator_gates(False, False, ops) == []


def test_int8_target_for_the_npu_needs_integer_io(tmp_path: Path) -> None:
    flatbuffer, verify = _example_tflite(tmp_path / "int8", {"accelerators": ["npu", "cpu"]})
    ops = coverage(analyzer_report(flatbuffer))
    [check] = accelerator_gates(verify["gates"]["gpu_delegable"], verify["npu_full_integer"], ops)
    assert check["name"] == "npu_full_integer" and check["passed"], check
    assert ops["npu"]["io_types"] == ["INT8", "INT8"]

    float_io, verify = _example_tflite(tmp_path / "float-io", {
        "accelerators": ["npu", "cpu"],
        "quantization": {"kind": "int8", "input_type": "float32", "output_type": "float32"}})
    ops = coverage(analyzer_report(float_io))
    [check] = accelerator_gates(verify["gates"]["gpu_delegable"], verify["npu_full_integer"], ops)
    assert check["passed"] is False
    assert "float model input/output" in check["ops"]
    assert any(name.startswith("QUANTIZE") or name.startswith("DEQUANTIZE") for name in check["ops"])


def test_what_each_accelerator_executes_is_said_and_only_the_cpu_is_measured(tmp_path: Path) -> None:
    # An int8 model the loader tries on the NPU, then the GPU: verify measured the CPU kernels only; the
    # GPU delegate would run it dequantized in float16, and the NPU's driver is unknown here.
    int8, verify = _example_tflite(tmp_path / "int8", {"accelerators": ["npu", "gpu"]})
    ops = coverage(analyzer_report(int8))
    entries = execution(verify["accelerators"], ops, verify["xnnpack"])
    assert [(e["accelerator"], e["order"], e["measured"]) for e in entries] == [
        ("npu", 1, False), ("gpu", 2, False), ("cpu", 3, True)]  # the CPU is every choice's fallback
    npu, gpu, cpu = entries
    assert cpu["computes_in"] == "int8" and npu["computes_in"] == "int8" and npu["ops_delegated"] > 0
    assert gpu["computes_in"] == "float16" and "dequantized" in gpu["note"] and "not measured" in gpu["note"]
    assert "known only on the device" in npu["note"]
    assert execution_line(entries).startswith("  loader tries: npu ")
    assert "gpu 3/3 ops in float16, NOT measured; cpu 3/3 ops in int8, measured" in execution_line(entries)

    # A float model listing the NPU: no op is int8-only, so NNAPI would delegate nothing.
    float32, verify = _example_tflite(tmp_path / "float", {"accelerators": ["npu", "cpu"],
                                                           "quantization": {"kind": "none"}})
    ops = coverage(analyzer_report(float32))
    npu, cpu = execution(verify["accelerators"], ops, verify["xnnpack"])
    assert npu["ops_delegated"] == 0 and npu["computes_in"] == "nothing (CPU fallback)"
    assert "delegate nothing" in npu["note"]
    assert cpu["computes_in"] == "float32" and cpu["measured"] is True

    # Dynamic range: int8 weights, float activations.
    dynamic, verify = _example_tflite(tmp_path / "dynamic", {"quantization": {"kind": "dynamic"}})
    [gpu, cpu] = execution(["gpu", "cpu"], coverage(analyzer_report(dynamic)), True)
    assert cpu["computes_in"] == "float32 with int8 weights" and "dequantized" in gpu["note"]


def test_parse_reads_the_analyzers_gpu_warnings() -> None:
    text = ("Subgraph#0 main(T#0) -> [T#1]\n"
            "  Op#0 ARG_MAX(T#0, T#2[1]) -> [T#1]\n"
            "GPU COMPATIBILITY WARNING: Not supported op ARG_MAX\n"
            "\nGPU COMPATIBILITY WARNING: Subgraph#0 has GPU delegate compatibility issues at nodes 0\n"
            "\nTensors of Subgraph#0\n"
            "  T#0(x) shape:[1, 64], type:FLOAT32\n"
            "  T#1(Identity) shape:[1], type:INT64\n"
            "  T#2(axis) shape:[], type:INT32 RO 4 bytes, buffer: 2, data:[1]\n")
    report = parse_report(text)
    assert report.analyzer_gpu_ok is False
    assert [(op.name, op.gpu_warning) for op in report.ops] == [("ARG_MAX", "Not supported op ARG_MAX")]
    assert report.tensors[(0, 2)] == ("INT32", True) and report.tensors[(0, 0)] == ("FLOAT32", False)


def test_a_report_without_ops_is_an_error() -> None:
    with pytest.raises(ValueError, match="listed no operators"):
        parse_report("=== TFLite ModelAnalyzer ===\n")


def test_sparse_int8_weights_shrink_the_file_and_predict_the_same(tmp_path: Path) -> None:
    from ai_edge_litert.interpreter import Interpreter
    from sklearn.datasets import load_digits

    from tfspec.runtime.accelerators import interpreter_kernels

    steps = _example_plan(tmp_path, {})
    model = build_model(plan_model(steps["model"]), spec_dir=tmp_path, seed=1)
    for layer in model.layers:  # 80 % of every kernel zeroed by magnitude, as pruning leaves it
        weights = layer.get_weights()
        if weights:
            kernel = weights[0]
            kernel[np.abs(kernel) < np.quantile(np.abs(kernel), 0.8)] = 0.0
            layer.set_weights([kernel, *weights[1:]])
    x = (load_digits().data[:300] / 16.0).astype(np.float32)
    params = TfliteParams.model_validate(steps["android.tflite"]).model_copy(update={
        "optimizations": ["DEFAULT"], "supported_ops": ["tflite_builtins_int8"],
        "inference_input_type": "float32", "inference_output_type": "float32"})
    dense = convert(model, params, x[:100])
    sparse = convert(model, params.model_copy(update={"optimizations": ["DEFAULT", "EXPERIMENTAL_SPARSITY"]}), x[:100])
    assert "DENSIFY" in coverage(analyzer_report(sparse))["ops"]
    assert len(sparse) < 0.75 * len(dense)

    def predict(flatbuffer: bytes, xnnpack: bool) -> np.ndarray:
        interpreter = Interpreter(model_content=flatbuffer, **interpreter_kernels(xnnpack))
        interpreter.allocate_tensors()
        inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
        rows = []
        for i in range(len(x)):
            interpreter.set_tensor(inp["index"], x[i:i + 1])
            interpreter.invoke()
            rows.append(interpreter.get_tensor(out["index"])[0])
        return np.stack(rows)

    dense_out, sparse_out = predict(dense, True), predict(sparse, False)
    assert np.array_equal(dense_out.argmax(1), sparse_out.argmax(1))
    assert np.allclose(dense_out, sparse_out, atol=1e-2)


@pytest.mark.slow
def test_run_records_op_coverage_and_the_gpu_delegable_gate(tmp_path: Path) -> None:
    from runtime_testing import FAST_SPEC, invoke

    text = FAST_SPEC.read_text("utf-8").replace("epochs: 12", "epochs: 2")
    float16 = ("  - kind: tflite\n    name: float\n    quantization: {kind: float16}\n"
               "    gates: {gpu_delegable: true}\n")
    text = text.replace("  - kind: tflite\n    name: float\n    quantization: {kind: none}\n", float16)
    assert float16 in text
    spec = tmp_path / "deploy.yaml"
    spec.write_text(text, encoding="utf-8")
    dist = tmp_path / "dist"
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir", str(dist))
    report = json.loads((dist / "report.json").read_text("utf-8"))
    target = report["targets"]["float"]
    assert target["accelerators"]["gpu"]["coverage"] == 1.0
    gate = next(g for g in target["gates"] if g["name"] == "gpu_delegable")
    assert gate["passed"] and gate["ops"] == []
    assert report["targets"]["android"]["accelerators"]["npu"]["integer_io"] is True
    executed = report["targets"]["float"]["accelerators"]["execution"]
    assert [(e["accelerator"], e["measured"]) for e in executed] == [("gpu", False), ("cpu", True)]
    html = (dist / "report.html").read_text("utf-8")
    assert "Op coverage per accelerator" in html
    assert "not measured here (no GPU delegate)" in html
    assert result.exit_code in (0, 1), result.output  # 1 only if a quality gate of the short training missed
