"""``bundle`` step: the real artifacts, laid out where the rendered target folders expect them.

* tflite: ``<assets_dir>/<filename>``, ``labels.txt`` and ``model_info.json`` (input/output name, shape,
  dtype and quantization scale/zero point read from the converted model's interpreter, the
  normalisation the data step applied, the labels) — the Android asset pack's ``src/main/assets``.
* tf_serving: the SavedModel in ``<model_dir>`` (``<target>/models/<name>/<version>``) with the warmup
  records in ``assets.extra/tf_serving_warmup_requests``.
"""

from __future__ import annotations

import json
import shutil
from typing import Any

from tfspec.plan import MODEL_INFO_FILES, SavedModelBundleParams, TfliteBundleParams
from tfspec.runtime.accelerators import interpreter_kernels
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import DATA_INFO_FILE
from tfspec.runtime.steps.verify import output_detail

__all__ = ["run", "MODEL_INFO_FILE", "LABELS_FILE", "model_info"]

MODEL_INFO_FILE = MODEL_INFO_FILES["tflite"]
LABELS_FILE = "labels.txt"
WARMUP_PATH = "assets.extra/tf_serving_warmup_requests"


def bundle_labels(params: TfliteBundleParams, data_info: dict[str, Any]) -> list[str]:
    """``labels.txt``'s lines: none for a regression model; the data step's labels (the class folders of an
    image_folder) when they fit the output — two for one sigmoid unit —, else the plan's."""
    if params.output_kind == "regression":
        return []
    found = list(data_info.get("labels") or [])
    if found and (params.output_kind != "sigmoid" or len(found) == 2):
        return found
    return list(params.labels)


def model_info(params: TfliteBundleParams, tensors: dict[str, Any], data_info: dict[str, Any],
               verified: dict[str, Any], labels: list[str]) -> dict[str, Any]:
    """What an app needs to feed the ``.tflite`` and read its output."""
    impute = data_info.get("impute")
    def tensor(name: str, details: dict[str, Any]) -> dict[str, Any]:
        return {"name": name, "tensor_name": details["tensor_name"], "shape": details["shape"],
                "dtype": details["dtype"],
                "quantization": {"scale": details["scale"], "zero_point": details["zero_point"]}}

    return {
        "name": params.name,
        "version": params.version,
        "model_file": params.filename,
        "labels_file": LABELS_FILE if labels else None,
        # softmax: one score per label; sigmoid: the probability of labels[1]; regression: values
        "output_kind": params.output_kind,
        # the .tflite's signature (its runner's keys are the input/output names below)
        "signature": tensors.get("signature"),
        "input": tensor(params.input_name, tensors["input"]),
        "output": tensor(params.output_name, tensors["output"]),
        # which inputs the model takes: "raw" (data.preprocessing.in_model: the normalization below runs
        # inside the model, apps only quantize) or "preprocessed" (apps apply it in this order first)
        "input_contract": "raw" if params.raw_inputs else "preprocessed",
        "normalization": {"rescale": data_info.get("rescale"), "mean": data_info.get("mean"),
                          "std": data_info.get("std"), "in_model": params.raw_inputs,
                          # data.missing_values: the training split's fill value of each raw feature
                          "impute": ({"strategy": impute["strategy"], "values": impute["values"]} if impute else None),
                          "order": ("inside the model (a missing value is sent as NaN); quantize raw values with "
                                    "input scale/zero_point" if params.raw_inputs else
                                    ("replace a missing value of feature i with impute.values[i], then " if impute
                                     else "") +
                                    "x * rescale, then (x - mean) / std, then quantize with input scale/zero_point")},
        "labels": labels,
        "metrics": {verified["metric"]: verified["metrics"]["value"], "size_bytes": verified["metrics"]["size_bytes"]},
        # several named inputs: each by its signature key (feed them with the signature runner)
        **({"inputs": [tensor(name, details) for name, details in sorted(tensors["inputs"].items())]}
           if "inputs" in tensors else {}),
    }


def _tflite(ctx: StepContext, p: TfliteBundleParams) -> dict[str, Any]:
    from ai_edge_litert.interpreter import Interpreter
    import numpy as np

    source = ctx.input_of_kind("tflite") / p.filename
    data_info = json.loads((ctx.input_of_kind("data") / DATA_INFO_FILE).read_text("utf-8"))
    verified = json.loads((ctx.input_of_kind("verify") / "verify.json").read_text("utf-8"))
    assets = ctx.out / p.assets_dir
    assets.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, assets / p.filename)
    interpreter = Interpreter(model_path=str(assets / p.filename), **interpreter_kernels(p.xnnpack))
    interpreter.allocate_tensors()
    def described(details: dict[str, Any]) -> dict[str, Any]:
        scale, zero_point = details["quantization"]
        return {"tensor_name": details["name"], "shape": [int(d) for d in details["shape"]],
                "dtype": np.dtype(details["dtype"]).name, "scale": float(scale), "zero_point": int(zero_point)}

    tensors: dict[str, Any] = {"input": described(interpreter.get_input_details()[0]),
                               "output": described(output_detail(interpreter, p.output_key))}
    tensors["signature"] = next(iter(sorted(interpreter.get_signature_list())), None)
    if len(interpreter.get_input_details()) > 1:
        tensors["inputs"] = {name: described(details)
                             for name, details in interpreter.get_signature_runner().get_input_details().items()}
        tensors["input"] = tensors["inputs"].get(p.input_name, tensors["input"])  # the first model input
    labels = bundle_labels(p, data_info)
    names = [p.filename, MODEL_INFO_FILE]
    if labels:
        (assets / LABELS_FILE).write_text("".join(f"{label}\n" for label in labels), encoding="utf-8")
        names.append(LABELS_FILE)
    info = model_info(p, tensors, data_info, verified, labels)
    (assets / MODEL_INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    files = sorted(f"{p.assets_dir}/{name}" for name in names)
    ctx.log(f"  {p.assets_dir}/: {', '.join(names)}")
    return {"files": files, "size_bytes": source.stat().st_size}


def _serving(ctx: StepContext, p: SavedModelBundleParams) -> dict[str, Any]:
    target = ctx.out / p.model_dir
    shutil.copytree(ctx.input_of_kind("export") / "saved_model", target)
    warmup = [i for i in ctx.step.inputs if ctx.plan.step(i).kind == "warmup"]
    if warmup:
        (target / WARMUP_PATH).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ctx.inputs[warmup[0]] / "tf_serving_warmup_requests", target / WARMUP_PATH)
    files = sorted(f.relative_to(ctx.out).as_posix() for f in target.rglob("*") if f.is_file())
    ctx.log(f"  {p.model_dir}/: SavedModel" + (" + warmup records" if warmup else ""))
    return {"files": files, "size_bytes": sum((ctx.out / f).stat().st_size for f in files)}


def run(ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    if isinstance(p, TfliteBundleParams):
        return _tflite(ctx, p)
    assert isinstance(p, SavedModelBundleParams)
    return _serving(ctx, p)
