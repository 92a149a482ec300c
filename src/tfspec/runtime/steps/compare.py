"""``compare`` step: the candidate beside the target's released model (the one serving now), both measured
on the current test split with the same code, and the ``vs_released`` gates.

Inputs: the candidate (the ``tflite`` step's ``.tflite``, or the ``export`` step's SavedModel), the data
step, and the ``released`` step (fetched and checked: ``runtime/steps/released.py``). Both models go through
``verify``'s measuring code (``measure_tflite`` / ``measure_saved_model``: :mod:`runtime.quality`'s metric,
confusion matrix and per-class figures, sizes without ``assets.extra/``); the released model is fed the test
split as its clients preprocess it (the normalisation its bundle records, the statistics of *its* training
split), else as the candidate is. Then both are timed again, alternately on the same examples
(``quality.time_alternating``), so a change of the machine's load hits both alike: those are the p50/p95
figures compared (the candidate's own ``verify`` figures stay what ``max_latency_ms`` judged).

The gates (positive ``worse_by``: the candidate is worse):

* ``max_accuracy_drop`` / ``max_error_increase``: ``worse_by`` ≤ limit;
* ``min_accuracy_gain`` / ``min_error_decrease``: ``better_by`` (= −``worse_by``) ≥ limit;
* ``max_size_growth_percent`` / ``max_latency_growth_percent``: (candidate / released − 1) × 100 of the size or
  the p95 latency ≤ limit.

With no released model (the spec allows a first release), ``compare.json`` says so and gates nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tfspec.plan import CompareParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import Dataset, load_dataset
from tfspec.runtime.quality import (confusion_matrix, is_error_metric, machine_load, per_class, percentiles, quality,
                                    time_alternating)
from tfspec.runtime.steps.released import RELEASED_DIR, read_released
from tfspec.runtime.steps.verify import Measured, measure_saved_model, measure_tflite

__all__ = ["run", "COMPARE_FILE", "compare", "growth_percent"]

COMPARE_FILE = "compare.json"
# gate → (the change it reads, True when the value must stay at or below the limit)
_READS = {"max_accuracy_drop": ("worse_by", True), "min_accuracy_gain": ("better_by", False),
          "max_error_increase": ("worse_by", True), "min_error_decrease": ("better_by", False),
          "max_size_growth_percent": ("size_growth_percent", True),
          "max_latency_growth_percent": ("latency_growth_percent", True)}


def growth_percent(candidate: float, released: float) -> float | None:
    """How much larger ``candidate`` is than ``released``, in percent of ``released`` (negative: smaller);
    None when ``released`` is 0 and ``candidate`` is not: no percentage of nothing (JSON has no infinity)."""
    if released > 0:
        return (candidate / released - 1.0) * 100.0
    return 0.0 if candidate <= 0 else None


def _percent(growth: float | None) -> str:
    return "n/a (released 0)" if growth is None else f"{growth:+.1f} %"


def compare(metric: str, gates: dict[str, float | None], candidate: dict[str, Any],
            released: dict[str, Any]) -> tuple[dict[str, float | None], list[dict[str, Any]]]:
    """The change from the released model to the candidate (each ``{value, size_bytes, latency_ms_p95}``) and
    the ``vs_released.*`` gates ``{name, limit, value, passed}`` of the set ``gates``."""
    error = is_error_metric(metric)
    worse_by = (candidate["value"] - released["value"]) if error else (released["value"] - candidate["value"])
    change = {"worse_by": worse_by, "better_by": -worse_by,
              "size_growth_percent": growth_percent(candidate["size_bytes"], released["size_bytes"]),
              "latency_growth_percent": growth_percent(candidate["latency_ms_p95"], released["latency_ms_p95"])}
    checks = []
    for name, limit in gates.items():
        if limit is None:
            continue
        key, at_most = _READS[name]
        if change[key] is None:  # growth from a released size or latency of 0: not a percentage, not passed
            checks.append({"name": f"vs_released.{name}", "limit": limit, "value": None, "passed": False})
            continue
        value = float(change[key])
        passed = value <= limit if at_most else value >= limit
        checks.append({"name": f"vs_released.{name}", "limit": limit, "value": round(value, 6), "passed": bool(passed)})
    return change, checks


def _released_data(data: Dataset, normalization: dict[str, Any] | None) -> Dataset:
    """The test split as the released model's clients preprocess it: with the normalisation its bundle records,
    else as the candidate's."""
    if normalization is None:
        return data
    info = {**data.info, "rescale": normalization["rescale"], "mean": normalization["mean"],
            "std": normalization["std"], "impute": normalization["impute"] or data.info.get("impute")}
    return Dataset(info, data.manifest, data.spec_dir, arrays=data._arrays)


def _measure(p: CompareParams, path: Path, data: Dataset, xnnpack: bool) -> Measured:
    if p.artifact == "tflite":
        return measure_tflite(path, data, p.raw_inputs, xnnpack, p.output_key)
    assert p.signature is not None
    return measure_saved_model(path, data, p.raw_inputs, p.input_name, p.output_name, p.signature)


def _figures(measured: Measured, latencies: list[float], labels: Any, metric: str) -> dict[str, Any]:
    p50, p95 = percentiles(latencies)
    value = quality(measured.predictions, labels, metric)
    return {"value": value, metric: value, "size_bytes": measured.size, "gzip_bytes": measured.packed,
            "latency_ms_p50": p50, "latency_ms_p95": p95}


def run(ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    assert isinstance(p, CompareParams)
    if not p.found:
        ctx.log(f"  released: none found ({p.description}): a first release, nothing to compare with")
        result = {"found": False, "first_release": True, "description": p.description, "gates": [], "passed": True}
        ctx.write_json(COMPARE_FILE, result)
        return result
    data = load_dataset(ctx.input_of_kind("data"), ctx.root)
    folder = ctx.input_of_kind("released")
    entry = read_released(folder)
    if p.artifact == "tflite":
        candidate_path = ctx.input_of_kind("tflite") / (p.filename or "")
        released_path = folder / RELEASED_DIR / entry["model_file"]
    else:
        candidate_path, released_path = ctx.input_of_kind("export") / "saved_model", folder / RELEASED_DIR
    candidate = _measure(p, candidate_path, data, p.xnnpack)
    fed = _released_data(data, entry["normalization"])
    try:
        released = _measure(p, released_path, fed, True)
    except RuntimeError:  # a sparse int8 .tflite: XNNPACK cannot prepare its DENSIFY ops, the builtin kernels can
        released = _measure(p, released_path, fed, False)
    (candidate_timer, candidate_examples), (released_timer, released_examples) = candidate.timing(), released.timing()
    candidate_latencies, released_latencies = time_alternating([candidate_timer, released_timer],
                                                               [candidate_examples, released_examples])
    load = machine_load()  # right after the timing: what the latency figures were measured under
    labels = data.labels("test")
    ours = _figures(candidate, candidate_latencies, labels, p.metric)
    theirs = _figures(released, released_latencies, labels, p.metric)
    change, gates = compare(p.metric, p.gates.model_dump(), ours, theirs)
    result: dict[str, Any] = {"found": True, "description": p.description, "version": entry["version"],
                              "contract": entry["contract"], "metric": p.metric, "candidate": ours, "metrics": theirs,
                              "change": change, "gates": gates, "passed": all(g["passed"] for g in gates),
                              "latency_load_1m": load["load_1m"], "latency_cores": load["cores"]}
    if not is_error_metric(p.metric):
        num_classes = max(data.num_classes or 2, 2)  # one sigmoid unit: two classes
        result["confusion"] = confusion_matrix(released.predictions, labels, num_classes)
        result["per_class"] = per_class(result["confusion"])
        result["candidate_per_class"] = per_class(confusion_matrix(candidate.predictions, labels, num_classes))
    ctx.write_json(COMPARE_FILE, result)
    missed = [g["name"] for g in gates if not g["passed"]]
    ctx.log(f"  released ({p.description}): {p.metric} {theirs['value']:.4f}, candidate {ours['value']:.4f} "
            f"(worse by {change['worse_by']:+.4f}); size {_percent(change['size_growth_percent'])}, p95 "
            f"{theirs['latency_ms_p95']:.3f} → {ours['latency_ms_p95']:.3f} ms ({_percent(change['latency_growth_percent'])}, "
            f"load {load['load_1m']} on {load['cores']} cores)" + (f"; MISSED {', '.join(missed)}" if missed else ""))
    return result
