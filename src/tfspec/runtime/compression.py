"""What the four compression steps (prune, cluster, qat, distill) share.

* loading a stage's inputs (the previous model step's model and the data step's splits),
* cloning a model before a tfmot technique wraps it (tfmot wrappers wrap the original layer objects and
  ``cluster_weights`` changes its argument in place, so the input model is never handed to tfmot),
* wrapping only the selected layers through ``clone_model(clone_function=...)``,
* the fine-tuning optimizer (the stage's ``learning_rate``, or the training optimizer's initial rate),
* the size measurement the TensorFlow Model Optimization guides use: the saved weights file (``.h5``)
  compressed with ``zipfile.ZIP_DEFLATED`` (their ``get_gzipped_model_size``),
* the metrics every stage reports (accuracy before/after on the test split, parameter count, per-layer
  non-zero and unique kernel values, sparsity, sizes).
"""

from __future__ import annotations

import dataclasses
import io
import math
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfspec.plan import MODEL_STEP_KINDS, FitParams, StageParams
from .context import StepContext
from .datasets import Dataset, load_dataset
from .errors import StepError
from .fit import build_loss, build_metrics, compile_model, evaluate_model, model_metrics
from .keras_io import builder_code, custom_objects_scope, load_model
from .optimizers import at_learning_rate, build_optimizer
from .flatten import flatten_model, is_graph_model
from .tf import import_tf

__all__ = [
    "MODEL_STEP_KINDS",
    "StageInputs",
    "stage_path",
    "load_stage_inputs",
    "clone_with_weights",
    "wrap_layers",
    "compile_for_fine_tuning",
    "steps_per_epoch",
    "zipped_size",
    "weights_zipped_size",
    "stage_metrics",
    "check_examples",
]



def stage_path(ctx: StepContext, *keys: str | int) -> tuple[str | int, ...]:
    """Key path of this stage's spec entry (``compression[i].<keys>``), for errors."""
    assert isinstance(ctx.params, StageParams)
    return ("compression", ctx.params.index, *keys)


@dataclasses.dataclass
class StageInputs:
    """A compression step's inputs: the model it compresses and the data."""

    model: Any
    data: Dataset
    model_dir: Path


def load_stage_inputs(ctx: StepContext) -> StageInputs:
    """The previous model step's model (uncompiled) and the data step's splits (checked to hold examples)."""
    model_dir = ctx.input_of_kind(*MODEL_STEP_KINDS)
    data = load_dataset(ctx.input_of_kind("data"), ctx.root)
    check_examples(ctx, data)
    return StageInputs(load_model(model_dir, compile=False, code=builder_code(ctx.plan, ctx.root)), data, model_dir)


def clone_with_weights(model: Any) -> Any:
    """A new model with new layer objects and the same weights (what tfmot may then wrap or change); a
    nested backbone is flattened into the graph (:mod:`tfspec.runtime.flatten`) so tfmot reaches its layers."""
    _, keras = import_tf()
    with custom_objects_scope():
        clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return flatten_model(clone)[0]


def wrap_layers(model: Any, wrap: Callable[[Any], Any], selected: Callable[[Any], bool]) -> Any:
    """Clone ``model`` (weights kept) with ``wrap(layer)`` in place of every layer ``selected`` accepts.

    The model is cloned first, so the input model's layers are never wrapped or changed.
    """
    _, keras = import_tf()
    base = clone_with_weights(model)

    def clone_function(layer: Any) -> Any:
        return wrap(layer) if selected(layer) else layer

    with custom_objects_scope():
        return keras.models.clone_model(base, clone_function=clone_function)


def compile_for_fine_tuning(model: Any, fit: FitParams, learning_rate: float) -> None:
    """Compile with the training loss and metrics and the training optimizer at a constant rate (the plan
    resolved the stage's rate)."""
    optimizer, _ = build_optimizer(at_learning_rate(fit.optimizer, learning_rate))
    model.compile(optimizer=optimizer, loss=build_loss(fit.loss), metrics=build_metrics(fit.metrics))


def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Optimizer steps in one epoch of ``fit`` (the last, smaller batch included)."""
    return max(1, math.ceil(examples / batch_size))


def zipped_size(path: Path) -> int:
    """Bytes of ``path`` compressed the way the tfmot guides measure (``zipfile`` with ``ZIP_DEFLATED``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.write(path, arcname=Path(path).name)
    return len(buffer.getvalue())


def weights_zipped_size(model: Any) -> dict[str, int]:
    """Size of the model's weights file (``.h5``, no optimizer state): raw and compressed bytes."""
    with tempfile.TemporaryDirectory(prefix="tfspec-size-") as folder:
        path = Path(folder) / "weights.h5"
        model.save_weights(path)
        return {"h5_bytes": path.stat().st_size, "h5_zipped_bytes": zipped_size(path)}


def _overall_sparsity(layers: list[dict[str, Any]]) -> float:
    total = sum(layer["kernel_size"] for layer in layers)
    nonzero = sum(layer["nonzero"] for layer in layers)
    return round(1.0 - nonzero / total, 6) if total else 0.0


def stage_metrics(ctx: StepContext, before: Any, after: Any, data: Dataset,
                  extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metrics a compression step returns (they go into ``metrics.json`` and ``report.json``).

    ``before`` is the input model, ``after`` the model the step writes (wrappers stripped, except for
    quantization-aware training, whose wrappers are the point). Both are compiled here for evaluation.
    """
    params = ctx.params
    assert isinstance(params, StageParams)
    fit = params.fit
    for model in (before, after):
        if not getattr(model, "_is_compiled", False):
            compile_model(model, fit)
    metrics = model_metrics(after, data, fit)
    before_test = evaluate_model(before, data, "test", fit)
    quality = fit.metrics[0] if fit.metrics else "loss"
    size_before = weights_zipped_size(before)
    size_after = weights_zipped_size(after)
    out: dict[str, Any] = {
        "stage": params.stage,
        "index": params.index,
        **metrics,
        "accuracy_before": before_test.get(quality),
        "accuracy_after": metrics["accuracy"],
        "params_before": int(before.count_params()),
        "sparsity": _overall_sparsity(metrics["layers"]),
        "size": {
            "before": size_before,
            "after": size_after,
            "zipped_ratio": round(size_before["h5_zipped_bytes"] / size_after["h5_zipped_bytes"], 4),
        },
    }
    # a backbone flattened into the graph (clone_with_weights): its layers are listed with the others
    out["flattened"] = [layer.name for layer in before.layers if is_graph_model(layer)]
    out.update(extra or {})
    return out


def check_examples(ctx: StepContext, data: Dataset) -> None:
    """Fine-tuning needs training examples: a clear error naming the stage otherwise."""
    if data.count("train") == 0:
        raise StepError(stage_path(ctx), "the training split is empty: nothing to fine-tune on",
                        "lower data.split.validation and data.split.test")
