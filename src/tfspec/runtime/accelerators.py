"""Which accelerators can run a converted ``.tflite`` model: op coverage per accelerator, checked at run.

The op list comes from ``tf.lite.experimental.Analyzer.analyze(model_content=..., gpu_compatibility=True)``,
which *prints* its report (captured from stdout here). Its own GPU verdict is kept (``analyzer_gpu_ok``
and any ``GPU COMPATIBILITY WARNING`` lines), but it is not trusted alone: in the TensorFlow 2.21 wheel it
calls every model compatible, even one with TOPK_V2, UNIQUE or a Flex op (checked on this machine). So each
op is also checked against ``GPU_DELEGATE_OPS``, the builtin ops LiteRT's GPU delegate implements
(``tensorflow/lite/tools/versioning/gpu_compatibility.cc``); any other op falls back to the CPU.

The NPU check (for int8 targets that list ``npu``) asks what NNAPI drivers need to keep a whole model on an
NPU/DSP: integer model inputs and outputs, and every op builtin with only int8/uint8 (or int32) tensors.

What each accelerator of the Android loader will *execute* (``execution``) is said plainly, measured or not:
verify measures the model on LiteRT's CPU kernels only. The GPU delegate computes in float16 (the loader
takes ``CompatibilityList.bestOptionsForThisDevice``, which allows precision loss), and on an integer model
it runs the dequantized weights in float16: neither accuracy is measured here (no GPU delegate on this
machine). Which ops a device's NNAPI driver takes is known only on the device; the op coverage above is
what an int8-only NPU could take at best, and a model with no such op gets nothing from NNAPI.
"""

from __future__ import annotations

import contextlib
import io
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = ["GPU_DELEGATE_OPS", "Op", "analyzer_report", "parse_report", "coverage",
           "accelerator_gates", "interpreter_kernels", "coverage_line", "cpu_compute_type", "execution", "execution_line"]

# Builtin ops the GPU delegate implements (gpu_compatibility.cc, TensorFlow 2.21); per-op conditions on
# shapes and attributes are left to the analyzer and the device.
GPU_DELEGATE_OPS: frozenset[str] = frozenset("""
ABS ADD ADD_N AVERAGE_POOL_2D BATCH_MATMUL CAST CONCATENATION CONV_2D COS CUMSUM DENSIFY DEPTHWISE_CONV_2D
DEPTH_TO_SPACE DEQUANTIZE DIV ELU EQUAL EXP FLOOR FLOOR_DIV FLOOR_MOD FULLY_CONNECTED GATHER GELU GREATER
GREATER_EQUAL HARD_SWISH LEAKY_RELU LESS LESS_EQUAL LOG LOGICAL_AND LOGISTIC LSTM MAXIMUM MAX_POOL_2D MEAN
MINIMUM MIRROR_PAD MUL NEG NOT_EQUAL ONE_HOT PACK PAD PADV2 POW PRELU QUANTIZE REDUCE_MAX REDUCE_MIN
REDUCE_PROD RELU RELU6 RELU_N1_TO_1 RESHAPE RESIZE_BILINEAR RESIZE_NEAREST_NEIGHBOR RSQRT SELECT SELECT_V2
SIGN SIN SLICE SOFTMAX SPACE_TO_DEPTH SPLIT SPLIT_V SQRT SQUARE SQUARED_DIFFERENCE STRIDED_SLICE SUB SUM
TANH TILE TRANSPOSE TRANSPOSE_CONV
""".split())

# Custom ops the GPU delegate implements (the same source).
_GPU_CUSTOM_OPS = frozenset({"Convolution2DTransposeBias", "MaxPoolingWithArgmax2D", "MaxUnpooling2D", "Resampler"})


_INTEGER_TYPES = {"INT8", "UINT8"}
_SUBGRAPH = re.compile(r"^Subgraph#(\d+) ")
_OP = re.compile(r"^\s+Op#(\d+) ([A-Za-z][A-Za-z0-9_]*)\((.*)\) -> \[(.*)\]\s*$")
_TENSOR = re.compile(r"^\s+T#(\d+)\(.*\) shape(?:_signature)?:\[[-0-9, ]*\], type:([A-Z0-9]+)(.*)$")
_TENSOR_REF = re.compile(r"T#(-?\d+)")
_WARNING = "GPU COMPATIBILITY WARNING:"


@dataclass
class Op:
    """One operator of the model as the analyzer lists it."""

    subgraph: int
    index: int
    name: str
    inputs: list[int]
    outputs: list[int]
    gpu_warning: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} (Subgraph#{self.subgraph} Op#{self.index})"


@dataclass
class Report:
    """What the analyzer printed, parsed: ops, tensor types (RO: constant) and its GPU verdict."""

    ops: list[Op] = field(default_factory=list)
    tensors: dict[tuple[int, int], tuple[str, bool]] = field(default_factory=dict)
    inputs: list[tuple[int, int]] = field(default_factory=list)
    outputs: list[tuple[int, int]] = field(default_factory=list)
    analyzer_gpu_ok: bool = True


def analyzer_report(flatbuffer: bytes) -> str:
    """The analyzer's printed report of ``flatbuffer`` with its GPU compatibility check."""
    from tfspec.runtime.tf import import_tf

    tf, _ = import_tf()
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured):
        tf.lite.experimental.Analyzer.analyze(model_content=flatbuffer, gpu_compatibility=True)
    return captured.getvalue()


def parse_report(text: str) -> Report:
    """Ops, tensors and the GPU verdict from the analyzer's text; raises ValueError when it lists no op."""
    report = Report()
    subgraph = 0
    for line in text.splitlines():
        header = _SUBGRAPH.match(line)
        if header:
            subgraph = int(header.group(1))
            main = re.match(r"^Subgraph#\d+ [^(]*\((.*)\) -> \[(.*)\]", line)
            if main and subgraph == 0:
                report.inputs = [(0, int(t)) for t in _TENSOR_REF.findall(main.group(1))]
                report.outputs = [(0, int(t)) for t in _TENSOR_REF.findall(main.group(2))]
            continue
        if line.startswith("Tensors of Subgraph#"):
            subgraph = int(line.split("#", 1)[1].strip())
            continue
        op = _OP.match(line)
        if op:
            refs = [[int(t) for t in _TENSOR_REF.findall(part)] for part in (op.group(3), op.group(4))]
            report.ops.append(Op(subgraph, int(op.group(1)), op.group(2), refs[0], refs[1]))
            continue
        tensor = _TENSOR.match(line)
        if tensor:
            report.tensors[(subgraph, int(tensor.group(1)))] = (tensor.group(2), " RO " in tensor.group(3) + " ")
            continue
        if line.strip().startswith(_WARNING):
            report.analyzer_gpu_ok = False
            message = line.strip()[len(_WARNING):].strip()
            if report.ops and report.ops[-1].gpu_warning is None and not message.startswith("Subgraph#"):
                report.ops[-1].gpu_warning = message
    if not report.ops:
        raise ValueError("the TFLite analyzer listed no operators: its output format changed")
    return report


def _gpu_fallback(op: Op) -> str | None:
    """Why ``op`` falls back from the GPU delegate to the CPU, or None when the delegate runs it."""
    if op.gpu_warning:
        return op.gpu_warning
    if op.name in GPU_DELEGATE_OPS or op.name in _GPU_CUSTOM_OPS:
        return None
    return f"the GPU delegate has no {op.name} kernel"


def _npu_fallback(op: Op, report: Report) -> str | None:
    """Why ``op`` keeps an int8 model off an NPU: a Flex/custom op, or a float tensor it reads or writes."""
    if op.name.startswith("Flex") or not op.name.isupper():
        return f"{op.name} is not a builtin op"
    for ref in op.inputs + op.outputs:
        if ref < 0:
            continue
        dtype, constant = report.tensors.get((op.subgraph, ref), ("?", False))
        if dtype not in _INTEGER_TYPES and not (dtype == "INT32" and constant):
            return f"{op.name} {'reads' if ref in op.inputs else 'writes'} a tensor of type {dtype} (T#{ref})"
    return None


def _summary(ops: list[Op], reasons: list[str | None]) -> dict[str, Any]:
    fallback = [{"op": op.label, "reason": reason} for op, reason in zip(ops, reasons) if reason]
    return {"ops": len(ops), "delegated": len(ops) - len(fallback),
            "coverage": round((len(ops) - len(fallback)) / len(ops), 4) if ops else 1.0, "cpu_fallback": fallback}


def coverage(text: str) -> dict[str, Any]:
    """Op coverage per accelerator from the analyzer's report: ``{ops, analyzer_gpu_ok, gpu, npu, cpu}``."""
    report = parse_report(text)
    io_types = [report.tensors.get(ref, ("?", False))[0] for ref in report.inputs + report.outputs]
    npu = _summary(report.ops, [_npu_fallback(op, report) for op in report.ops])
    npu["integer_io"] = bool(io_types) and all(t in _INTEGER_TYPES for t in io_types)
    npu["io_types"] = io_types
    npu["input_types"] = io_types[:len(report.inputs)]
    npu["output_types"] = io_types[len(report.inputs):]
    activations = sorted({dtype for dtype, constant in report.tensors.values() if not constant})
    constants = sorted({dtype for dtype, constant in report.tensors.values() if constant})
    return {
        "ops": [op.name for op in report.ops],
        "tensor_types": {"activations": activations, "constants": constants},
        "analyzer_gpu_ok": report.analyzer_gpu_ok,
        "gpu": _summary(report.ops, [_gpu_fallback(op) for op in report.ops]),
        "npu": npu,
        "cpu": _summary(report.ops, [None] * len(report.ops)),
    }


def accelerator_gates(gpu_delegable: bool, npu_full_integer: bool, ops: dict[str, Any]) -> list[dict[str, Any]]:
    """Gate checks in the verify step's form (``{name, limit, value, passed}``; value: ops on the CPU).

    ``gpu_delegable`` when the spec sets it; ``npu_full_integer`` when the plan asks (the compiler does for
    an int8 target that lists ``npu``)."""
    checks = []
    if gpu_delegable:
        fallback = ops["gpu"]["cpu_fallback"]
        checks.append({"name": "gpu_delegable", "limit": 0, "value": len(fallback), "passed": not fallback,
                       "ops": [f["op"] for f in fallback]})
    if npu_full_integer:
        fallback = ops["npu"]["cpu_fallback"]
        io_ok = ops["npu"]["integer_io"]
        checks.append({"name": "npu_full_integer", "limit": 0, "value": len(fallback) + (0 if io_ok else 1),
                       "passed": io_ok and not fallback,
                       "ops": [f["op"] for f in fallback] + ([] if io_ok else ["float model input/output"])})
    return checks


def interpreter_kernels(xnnpack: bool) -> dict[str, Any]:
    """Keyword arguments of LiteRT's ``Interpreter``: its default (XNNPACK) or the builtin kernels only.

    XNNPACK fails to prepare the DENSIFY ops of a sparse int8 model ("failed to delegate FULLY_CONNECTED"),
    so the plan turns it off for those; the builtin kernels run them."""
    if xnnpack:
        return {}
    from ai_edge_litert.interpreter import OpResolverType

    return {"experimental_op_resolver_type": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}


def coverage_line(ops: dict[str, Any]) -> str:
    """One line for the run's log: ``ops delegated: gpu 3/3, npu 0/3 (I/O FLOAT32 in, FLOAT32 out: not
    8-bit integer)`` — the model's real input and output types, as the analyzer lists them."""
    npu = ops["npu"]
    inputs = ", ".join(sorted(set(npu.get("input_types") or []))) or "?"
    outputs = ", ".join(sorted(set(npu.get("output_types") or []))) or "?"
    io = f"I/O {inputs} in, {outputs} out"
    return (f"  ops delegated: gpu {ops['gpu']['delegated']}/{ops['gpu']['ops']}, npu {npu['delegated']}/{npu['ops']}"
            + (f" ({io})" if npu["integer_io"] else f" ({io}: not 8-bit integer)"))


def cpu_compute_type(ops: dict[str, Any]) -> str:
    """What LiteRT's CPU kernels compute the model in, from its tensor types: ``int8`` (full integer),
    ``int16x8``, ``float32 with int8 weights`` (dynamic range), ``float32`` (float16 weights are dequantized)."""
    types = ops.get("tensor_types") or {}
    activations, constants = set(types.get("activations") or []), set(types.get("constants") or [])
    if "INT16" in activations:
        return "int16x8"
    if activations & _INTEGER_TYPES:
        return "int8"
    if constants & _INTEGER_TYPES:
        return "float32 with int8 weights"
    return "float32"


def execution(accelerators: list[str], ops: dict[str, Any], xnnpack: bool) -> list[dict[str, Any]]:
    """What each accelerator the loader tries, in its order, would execute, and whether verify measured it.

    One entry per accelerator: ``{accelerator, order, ops_delegated, ops, computes_in, measured, note}``.
    ``measured`` is True only for the CPU, whose kernels verify ran; the others say why not."""
    cpu = cpu_compute_type(ops)
    tried = [a for a in accelerators if a != "cpu"] + ["cpu"]  # the CPU is the fallback of every choice
    entries = []
    for order, accelerator in enumerate(tried, start=1):
        total = ops["cpu"]["ops"]
        if accelerator == "cpu":
            kernels = "XNNPACK" if xnnpack else "builtin kernels without XNNPACK"
            entries.append({"accelerator": "cpu", "order": order, "ops_delegated": total, "ops": total,
                            "computes_in": cpu, "measured": True,
                            "note": f"LiteRT's CPU kernels ({kernels}): the figures above were measured on them"})
        elif accelerator == "gpu":
            delegated = ops["gpu"]["delegated"]
            dequantized = "this quantized model dequantized, " if cpu != "float32" else ""
            entries.append({"accelerator": "gpu", "order": order, "ops_delegated": delegated, "ops": total,
                            "computes_in": "float16", "measured": False,
                            "note": f"the GPU delegate computes {dequantized}in float16 (precision loss "
                                    "allowed): its accuracy was not measured here (no GPU delegate)"})
        elif accelerator == "npu":
            delegated = ops["npu"]["delegated"]
            note = ("no op of this model is int8-only, so NNAPI would delegate nothing and the CPU runs it all"
                    if delegated == 0 else
                    "which of these ops the device's NNAPI driver takes is known only on the device: "
                    "not measured here")
            entries.append({"accelerator": "npu", "order": order, "ops_delegated": delegated, "ops": total,
                            "computes_in": "int8" if delegated else "nothing (CPU fallback)", "measured": False,
                            "note": note})
    return entries


def execution_line(entries: list[dict[str, Any]]) -> str:
    """One line for the run's log: what the loader's accelerators execute and which of them verify measured."""
    parts = [f"{e['accelerator']} {e['ops_delegated']}/{e['ops']} ops in {e['computes_in']}, "
             + ("measured" if e["measured"] else "NOT measured") for e in entries]
    return "  loader tries: " + "; ".join(parts)
