"""``evaluate`` step: measure every Keras model of the run once, on the test split.

Inputs: the ``train`` step, each compression stage's step (in spec order) and the data. Each model's
quality metric (``runtime.quality``), file size (raw and gzipped), parameter count and, for classifiers,
confusion matrix; the final model's per-example latency (the Keras baseline of every target: the model
called through one traced ``tf.function``, as a server calls it, not eagerly op by op) and layer summary;
the class counts of each split and the chance level; the naive baseline (always the training split's
majority class, or its labels' mean) and the models no better than it (they fail the run unless
``training.naive_baseline: warn``). ``verify`` reads ``evaluation.json``: a
drop is measured from the *trained* model (``stages[0]``), so the damage compression did is gated.
"""

from __future__ import annotations

import gzip
from typing import Any

import numpy as np

from tfspec.plan import MODEL_STEP_KINDS, EvaluateParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import Dataset, load_dataset
from tfspec.runtime.keras_io import builder_code, load_model, model_file
from tfspec.runtime.signatures import SIGNATURE_FILE, Signature, load_signature, read_signature_file
from tfspec.runtime.tf import import_tf
from tfspec.runtime.quality import (
    CHANCE_MARGIN,
    LATENCY_METHOD,
    LATENCY_SAMPLES,
    beats,
    chance_level,
    confusion_matrix,
    is_error_metric,
    machine_load,
    naive_baseline,
    per_class,
    percentiles,
    quality,
    time_single_calls,
)

__all__ = ["run", "EVALUATION_FILE", "gzipped_size", "layer_summary"]

EVALUATION_FILE = "evaluation.json"


def gzipped_size(data: bytes) -> int:
    """Bytes after gzip at level 9 (what a download or an APK's compressed asset roughly costs)."""
    return len(gzip.compress(data, compresslevel=9, mtime=0))


def layer_summary(model: Any) -> list[dict[str, Any]]:
    """Each layer's name, class, output shape (batch axis as ``None``) and parameter count."""
    rows = []
    for layer in model.layers:
        try:
            shape = layer.output_shape
        except (AttributeError, RuntimeError):
            shape = None
        rows.append({"name": layer.name, "type": type(getattr(layer, "layer", layer)).__name__,
                     "output_shape": _plain_shape(shape), "params": int(layer.count_params())})
    return rows


class _AsIs:
    """A served-as-is SavedModel's signature behind the two calls this step makes on a Keras model."""

    layers: list[Any] = []

    def __init__(self, signature: Signature) -> None:
        self.signature = signature

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return self.signature.predict(x)

    def count_params(self) -> int:
        return sum(int(np.prod(v.shape)) for v in getattr(self.signature.loaded, "variables", []))


def _compiled_call(model: Any, timed: Any) -> Any:
    """``sample → outputs`` of the final model as a server runs it: one traced ``tf.function`` (traced here, on
    the first timed example, so no timed call pays the tracing). An eager call dispatches every op from
    Python, every time step of a recurrent layer included: a 12-step LSTM took ~70 ms a call eagerly."""
    if isinstance(model, _AsIs):  # a SavedModel's signature is a traced function already
        return lambda sample: model(sample, training=False)
    tf, _ = import_tf()
    call = tf.function(lambda sample: model(sample, training=False))
    call({k: v[:1] for k, v in timed.items()} if isinstance(timed, dict) else timed[:1])
    return call


def _plain_shape(shape: Any) -> Any:
    if shape is None:
        return None
    if isinstance(shape, list):
        return [_plain_shape(s) for s in shape]
    return [None if d is None else int(d) for d in shape]


def _class_counts(data: Dataset, num_classes: int) -> dict[str, list[int]]:
    """Examples per class and split: the data step counted them (a binary model's labels are 0/1)."""
    counted = data.manifest.get("class_counts") or {}
    out = {}
    for name, split in (("train", "train"), ("validation", "val"), ("test", "test")):
        counts = list(counted.get(split) or [])
        out[name] = (counts + [0] * num_classes)[:num_classes] if counts else np.bincount(
            data.labels(split).reshape(-1).astype(np.int64), minlength=num_classes).tolist()
    return out


def run(ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    assert isinstance(p, EvaluateParams)
    metric = p.metric
    error = is_error_metric(metric)
    data = load_dataset(ctx.input_of_kind("data"), ctx.root)
    # a binary model has one sigmoid unit (num_classes 1) and two classes
    num_classes = None if error else max(data.num_classes or 2, 2)
    model_steps = [ctx.plan.step(i) for i in ctx.step.inputs if ctx.plan.step(i).kind in MODEL_STEP_KINDS]
    stages: list[dict[str, Any]] = []
    y_test = data.labels("test")
    final_model: Any = None
    for step in model_steps:
        folder = ctx.inputs[step.id]
        if (folder / SIGNATURE_FILE).is_file():  # a SavedModel served as it is: no Keras model
            chosen = read_signature_file(folder)
            model = _AsIs(load_signature(folder / "saved_model", chosen["signature"], output_key=chosen["output_key"]))
            predictions = model.signature.predict(data.features("test", 256))
            files = sorted(f for f in (folder / "saved_model").rglob("*") if f.is_file())
            size, packed = sum(f.stat().st_size for f in files), sum(gzipped_size(f.read_bytes()) for f in files)
        else:
            model = load_model(folder, compile=False, code=builder_code(ctx.plan, ctx.root))
            predictions = model.predict(data.features("test", 256), verbose=0)
            raw = model_file(folder).read_bytes()
            size, packed = len(raw), gzipped_size(raw)
        stage: dict[str, Any] = {"step": step.id, "kind": step.kind,
                                 "label": "trained" if step.kind == "train" else step.id,
                                 "value": quality(predictions, y_test, metric), "size_bytes": size,
                                 "gzip_bytes": packed, "params": int(model.count_params())}
        if num_classes is not None:
            stage["confusion"] = confusion_matrix(predictions, y_test, num_classes)
            stage["per_class"] = per_class(stage["confusion"])
        stages.append(stage)
        final_model = model
    trained = stages[0]["value"]
    for stage in stages:
        # positive = worse than the trained model, for either kind of metric
        stage["change_from_trained"] = (stage["value"] - trained) if error else (trained - stage["value"])
    timed = data.take("test", LATENCY_SAMPLES)
    p50, p95 = percentiles(time_single_calls(_compiled_call(final_model, timed), timed))
    load = machine_load()
    final = stages[-1]
    baseline = {"metric": metric, "value": final["value"], "size_bytes": final["size_bytes"],
                "gzip_bytes": final["gzip_bytes"], "weights_bytes": final["params"] * 4, "params": final["params"],
                "latency_ms": {"p50": p50, "p95": p95, "method": LATENCY_METHOD, "load_1m": load["load_1m"],
                               "cores": load["cores"]}, "step": final["step"]}
    result: dict[str, Any] = {"metric": metric, "lower_is_better": error, "trained": trained, "stages": stages,
                              "baseline": baseline, "test_examples": int(len(y_test)),
                              "layers": layer_summary(final_model)}
    if num_classes is not None:
        chance = chance_level(y_test, num_classes)
        result["class_counts"] = _class_counts(data, num_classes)
        result["labels"] = list(data.info.get("labels") or [])
        result["chance"] = {"level": chance, "margin": CHANCE_MARGIN,
                            "at_chance": [s["label"] for s in stages if s["value"] <= chance + CHANCE_MARGIN]}
    naive = naive_baseline(data.info.get("naive_baseline"), y_test, metric, list(data.info.get("labels") or []))
    if naive is not None:
        naive["on_failure"] = p.naive_baseline
        naive["failed"] = [s["label"] for s in stages if not beats(s["value"], naive["value"], metric)]
        result["naive_baseline"] = naive
    ctx.write_json(EVALUATION_FILE, result)
    ctx.log("  " + ", ".join(f"{s['label']} {metric} {s['value']:.4f}" for s in stages)
            + f"; Keras p95 {p95:.3f} ms")
    for label in (naive or {}).get("failed", []):
        verdict = "FAILS the run" if p.naive_baseline == "fail" else "accepted (training.naive_baseline: warn)"
        ctx.log(f"  {'ERROR' if p.naive_baseline == 'fail' else 'WARNING'}: {label} model {metric} "
                f"{_value(stages, label):.4f} is no better than the naive baseline ({naive['predictor']}: "
                f"{naive['value']:.4f}): {verdict}")
    for label in result.get("chance", {}).get("at_chance", []):
        ctx.log(f"  WARNING: {label} model is at chance level: {metric} {_value(stages, label):.4f} <= "
                f"{result['chance']['level']:.4f} (majority class or uniform guessing) + {CHANCE_MARGIN}")
    return result


def _value(stages: list[dict[str, Any]], label: str) -> float:
    return next(s["value"] for s in stages if s["label"] == label)
