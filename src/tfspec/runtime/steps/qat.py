"""The ``qat`` step: quantization-aware training (``quantize_annotate_model`` + ``quantize_apply``).

``preserve`` picks the scheme (collaborative optimization, ``tfmot.experimental.combine``):

=====================  =====================================================================
``[]``                 ``Default8BitQuantizeScheme`` (plain QAT)
``[sparsity]``         ``Default8BitPrunePreserveQuantizeScheme`` (PQAT: pruned zeros stay zero)
``[clusters]``         ``Default8BitClusterPreserveQuantizeScheme`` (CQAT: clusters kept)
``[sparsity, clusters]`` ``Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)`` (PCQAT)
=====================  =====================================================================

The fine-tuned model keeps its quantize wrappers (their ranges are what the tflite step's int8 conversion
uses; CQAT's training-only cluster variables are removed with ``strip_clustering_cqat``) and is written
as ``model.h5`` (see :mod:`tfspec.runtime.keras_io` for why not ``.keras``).
"""

from __future__ import annotations

from typing import Any

from tfspec.runtime.compression import (
    clone_with_weights,
    compile_for_fine_tuning,
    load_stage_inputs,
    stage_metrics,
    stage_path,
)
from tfspec.plan import QatParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.errors import StepError
from tfspec.runtime.keras_io import MODEL_H5_FILE, save_model
from tfspec.runtime.fit import fit_model
from tfspec.runtime.tf import import_tf

__all__ = ["SCHEMES", "quantize_scheme", "run"]

SCHEMES = {
    (): "Default8BitQuantizeScheme",
    ("sparsity",): "Default8BitPrunePreserveQuantizeScheme",
    ("clusters",): "Default8BitClusterPreserveQuantizeScheme",
    ("clusters", "sparsity"): "Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)",
}


def quantize_scheme(preserve: list[str]) -> Any:
    """The tfmot quantize scheme for a stage's ``preserve`` list."""
    import_tf()
    import tensorflow_model_optimization as tfmot

    key = tuple(sorted(set(preserve)))
    combine = tfmot.experimental.combine
    if key == ():
        return tfmot.quantization.keras.default_8bit.Default8BitQuantizeScheme()
    if key == ("sparsity",):
        return combine.Default8BitPrunePreserveQuantizeScheme()
    if key == ("clusters",):
        return combine.Default8BitClusterPreserveQuantizeScheme()
    if key == ("clusters", "sparsity"):
        return combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
    raise ValueError(f"unknown preserve list {preserve!r}")


def run(ctx: StepContext) -> dict[str, Any]:
    import_tf()
    import tensorflow_model_optimization as tfmot

    p = ctx.params
    assert isinstance(p, QatParams)
    fit = p.fit
    inputs = load_stage_inputs(ctx)
    data = inputs.data
    preserve = list(p.preserve)
    qk = tfmot.quantization.keras
    try:
        annotated = qk.quantize_annotate_model(clone_with_weights(inputs.model))
        with qk.quantize_scope():
            model = qk.quantize_apply(annotated, quantize_scheme(preserve))
    except (ValueError, RuntimeError) as error:
        raise StepError(stage_path(ctx, "kind"), f"the model cannot be made quantization-aware: {error}",
                        "remove the quantization_aware stage and use post-training quantization in the tflite "
                        "target") from error
    scheme = SCHEMES[tuple(sorted(set(preserve)))]
    ctx.log(f"{ctx.step.id}: quantization-aware training with {scheme}")
    history: dict[str, list[float]] = {}
    if p.fine_tune_epochs > 0:
        compile_for_fine_tuning(model, fit, p.learning_rate)
        history = fit_model(model, data, fit=fit, epochs=p.fine_tune_epochs, quiet=ctx.quiet,
                            checkpoint_dir=getattr(ctx, "checkpoint_dir", None)).history
    if "clusters" in preserve:
        # CQAT's quantizers hold training-only cluster variables that a reloaded model would not recreate.
        model = tfmot.experimental.combine.strip_clustering_cqat(model)
    save_model(model, ctx.out)
    ctx.write_json("history.json", history)
    return stage_metrics(ctx, inputs.model, model, data, {
        "scheme": scheme,
        "preserve": preserve,
        "model_file": MODEL_H5_FILE,
        # the layers that got fake-quant wrappers (a backbone's too: it was flattened)
        "quantized_layers": [layer.layer.name for layer in model.layers if hasattr(layer, "quantize_config")],
    })
