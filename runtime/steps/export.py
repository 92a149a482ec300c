"""``export`` step: a SavedModel whose ``serving_default`` takes ``{input_name: x}`` and returns
``{output_name: y}`` (the keys the generated clients, warmup records and model-info use)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.plan import MODEL_STEP_KINDS, ExportParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import load_dataset
from tfspec.runtime.keras_io import load_model
from tfspec.runtime.signatures import read_signature_file
from tfspec.runtime.tf import import_tf

__all__ = ["run", "SAVED_MODEL_DIR", "export_saved_model"]

SAVED_MODEL_DIR = "saved_model"


def export_saved_model(model: Any, path: Path, *, input_name: str, output_name: str, input_shape: list[int],
                       input_dtype: str, signature: str = "serving_default") -> None:
    """Save ``model`` behind a named-tensor signature."""
    tf, _ = import_tf()
    spec = tf.TensorSpec([None, *input_shape], tf.as_dtype(input_dtype), name=input_name)

    @tf.function(input_signature=[spec])
    def serve(x: Any) -> dict[str, Any]:
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


def run(ctx: StepContext) -> dict[str, Any]:
    tf, _ = import_tf()
    p = ctx.params
    assert isinstance(p, ExportParams)
    if p.as_is:
        return _as_is(ctx)
    model = load_model(ctx.input_of_kind(*MODEL_STEP_KINDS), compile=False)
    data = load_dataset(ctx.input_of_kind("data"), ctx.root)
    path = ctx.out / SAVED_MODEL_DIR
    export_saved_model(model, path, input_name=p.input_name, output_name=p.output_name,
                       input_shape=p.input_shape, input_dtype=p.input_dtype, signature=p.signature)
    # Check the artifact as a server will use it: reload, call the signature by keyword, compare.
    loaded = tf.saved_model.load(str(path))
    function = loaded.signatures[p.signature]
    sample = data.take("test", 32)
    served = function(**{p.input_name: tf.constant(sample)})[p.output_name].numpy()
    direct = model(sample, training=False).numpy()
    difference = float(np.max(np.abs(served - direct)))
    if difference > 1e-4:
        raise RuntimeError(f"the exported signature disagrees with the Keras model (max |diff| {difference})")
    size = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    ctx.log(f"  SavedModel {size} bytes, signature {p.signature}({p.input_name}) -> {p.output_name}")
    return {"size_bytes": size, "signature": p.signature, "input_name": p.input_name,
            "output_name": p.output_name, "max_abs_diff": difference}
