"""``export`` step: a SavedModel whose ``serving_default`` takes ``{input_name: x}`` and returns
``{output_name: y}`` (the keys the generated clients, warmup records and model-info use).

The SavedModel carries ``assets.extra/tfspec_model_info.json`` (TF Serving reads nothing there but warm-up
records): its input contract (``raw``: the preprocessing is inside; ``preprocessed``: the client's) and the
normalisation a client applies, so a later run can compare a candidate with this model once it is released
(``runtime/steps/released.py``). A SavedModel served as it is stays byte for byte what it was."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.plan import MODEL_INFO_FILES, MODEL_STEP_KINDS, ExportParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import load_dataset
from tfspec.runtime.errors import StepError
from tfspec.runtime.keras_io import builder_code, load_model
from tfspec.runtime.signatures import read_signature_file, signature_feed
from tfspec.runtime.tf import import_tf

__all__ = ["run", "SAVED_MODEL_DIR", "MODEL_INFO_PATH", "export_saved_model"]

SAVED_MODEL_DIR = "saved_model"
MODEL_INFO_PATH = MODEL_INFO_FILES["saved_model"]


def export_saved_model(model: Any, path: Path, *, input_name: str, output_name: str, input_shape: list[int],
                       input_dtype: str, signature: str = "serving_default",
                       inputs: list[tuple[str, list[int], str]] | None = None,
                       preprocess: Any = None) -> None:
    """Save ``model`` behind a named-tensor signature; ``inputs`` (name, shape, dtype) for a model with
    several named inputs, each one a signature input key. With ``preprocess`` (a batched tensor function,
    ``data.preprocessing.in_model``) the signature takes raw float32 examples of ``input_shape`` and applies
    it before the model."""
    tf, _ = import_tf()
    named = inputs or [(input_name, input_shape, "float32" if preprocess is not None else input_dtype)]
    specs = [tf.TensorSpec([None, *shape], tf.as_dtype(dtype), name=name) for name, shape, dtype in named]
    names = [name for name, _, _ in named]

    @tf.function(input_signature=specs)
    def serve(*args: Any) -> dict[str, Any]:
        x = dict(zip(names, args)) if inputs else args[0]
        if preprocess is not None:
            x = preprocess(x)
        return {output_name: model(x, training=False)}

    module = tf.Module()
    module.model = model  # tracks the variables
    module.serve = serve
    tf.saved_model.save(module, str(path), signatures={signature: serve.get_concrete_function()})


def _as_is(ctx: StepContext) -> dict[str, Any]:
    """The original SavedModel, byte for byte, with every signature it has."""
    p = ctx.params
    source = ctx.input_of_kind("train") / SAVED_MODEL_DIR
    path = ctx.out / SAVED_MODEL_DIR
    shutil.copytree(source, path)
    chosen = read_signature_file(ctx.input_of_kind("train"))
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    ctx.log(f"  SavedModel {size} bytes, unchanged; signatures {', '.join(chosen['signatures'])}")
    return {"size_bytes": size, "signature": p.signature, "input_name": chosen["input_key"],
            "output_name": chosen["output_key"], "signatures": chosen["signatures"], "served_as_is": True}


def _write_model_info(path: Path, info: dict[str, Any], p: ExportParams, keys: list[str], raw: bool) -> None:
    """What a client feeds this SavedModel: the signature's keys, the input contract and the normalisation."""
    impute = info.get("impute")
    model_info = {"signature": p.signature, "inputs": keys, "output": p.output_name,
                  "input_contract": "raw" if raw else "preprocessed",
                  "normalization": {"rescale": info.get("rescale"), "mean": info.get("mean"), "std": info.get("std"),
                                    "in_model": raw,
                                    "impute": {"strategy": impute["strategy"], "values": impute["values"]}
                                    if impute else None}}
    target = path / MODEL_INFO_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(model_info, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def run(ctx: StepContext) -> dict[str, Any]:
    tf, _ = import_tf()
    p = ctx.params
    assert isinstance(p, ExportParams)
    if p.as_is:
        return _as_is(ctx)
    model = load_model(ctx.input_of_kind(*MODEL_STEP_KINDS), compile=False, code=builder_code(ctx.plan, ctx.root))
    data = load_dataset(ctx.input_of_kind("data"), ctx.root)
    path = ctx.out / SAVED_MODEL_DIR
    inputs = [(i.name, i.shape, i.dtype) for i in p.inputs] if p.inputs else None
    raw = p.raw_input_shape is not None
    if raw and data.raw_shape != p.raw_input_shape:
        raise StepError(("data", "preprocessing", "in_model"), f"the source's examples have shape {data.raw_shape}, "
                        f"the served model was planned for raw examples of shape {p.raw_input_shape}")
    export_saved_model(model, path, input_name=p.input_name, output_name=p.output_name,
                       input_shape=p.raw_input_shape if raw else p.input_shape, input_dtype=p.input_dtype,
                       signature=p.signature, inputs=inputs, preprocess=data.preprocessing() if raw else None)
    # Check the artifact as a server will use it: reload, call the signature by keyword, compare with the
    # Keras model on the preprocessed examples (raw ones go in when the preprocessing is inside).
    loaded = tf.saved_model.load(str(path))
    function = loaded.signatures[p.signature]
    sample = data.take("test", 32)
    fed = data.take("test", 32, raw=True) if raw else sample
    served = function(**signature_feed(fed, p.input_name))[p.output_name].numpy()
    direct = model(sample, training=False).numpy()
    difference = float(np.max(np.abs(served - direct)))
    if difference > 1e-4:
        raise RuntimeError(f"the exported signature disagrees with the Keras model (max |diff| {difference})")
    keys = [name for name, _, _ in inputs] if inputs else [p.input_name]
    _write_model_info(path, data.info, p, keys, raw)
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    ctx.log(f"  SavedModel {size} bytes, signature {p.signature}({', '.join(keys)}) -> {p.output_name}")
    return {"size_bytes": size, "signature": p.signature, "input_name": p.input_name, "input_names": keys,
            "output_name": p.output_name, "max_abs_diff": difference,
            "input_contract": "raw" if raw else "preprocessed"}
