"""``report.json``: what a run did and measured (per-step timing, training history, per-target metrics).

Its shape is a contract (an HTML renderer reads it); keys may be added, never renamed:
``{"spec", "tool_versions", "steps": [...], "baseline", "targets": {...}, "history": {...}, "passed"}``,
and since the ``evaluate`` step: ``metric`` (``accuracy`` or ``mae``), ``stages`` (the trained model and
each compression stage's model, measured on the test split), ``class_counts``, ``model_summary``,
``machine`` (where latencies were measured) and ``warnings`` (e.g. a model at chance level); since the
naive baseline (``training.naive_baseline``): ``naive_baseline`` (its predictor and test-split value, the
models no better than it) and ``model_checks`` (each model step that missed it: ``passed`` is false); since
released models (``targets[].released``): each target's ``released`` (the ``compare`` step's: ``found``; its
``description``, ``version``, ``contract``, its ``metrics``, ``per_class`` and ``confusion`` on the same test
split, the ``candidate``'s figures timed beside it and ``candidate_per_class``, the ``change``), its
``vs_released.*`` gates among the target's ``gates``.
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from tfspec.plan import MODEL_STEP_KINDS, Plan, SavedModelBundleParams, TfliteBundleParams

from .quality import NAIVE_BASELINE_GATE
from .tf import installed_versions

__all__ = ["REPORT_FILE", "build_report", "missed_gates", "machine"]

REPORT_FILE = "report.json"
# gates judged on latencies measured on this machine (the load warning names their targets)
_LATENCY_GATES = ("max_latency_ms", "vs_released.max_latency_growth_percent")


def _artifact(plan: Plan, target: str, kind: str) -> str | None:
    for step in plan.steps:
        if step.target == target and step.kind == "bundle":
            if isinstance(step.params, TfliteBundleParams):
                return f"{step.params.assets_dir}/{step.params.filename}"
            assert isinstance(step.params, SavedModelBundleParams)
            return step.params.model_dir
    return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text("utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict[str, Any]:
    """The machine latencies were measured on: CPU model, logical cores, OS."""
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version()}


def _naive_failures(evaluation: dict[str, Any] | None) -> list[tuple[str, str, float, float]]:
    """``(model, gate, limit, value)`` of every model step no better than the naive baseline, when that fails
    the run (``training.naive_baseline: fail``)."""
    naive = (evaluation or {}).get("naive_baseline")
    if not naive or naive["on_failure"] != "fail":
        return []
    values = {s["label"]: s["value"] for s in evaluation["stages"]}  # type: ignore[index]
    return [(f"{label} model", NAIVE_BASELINE_GATE, round(naive["value"], 6), round(values[label], 6))
            for label in naive["failed"]]


def _latency_load(evaluation: dict[str, Any] | None, targets: dict[str, Any]) -> dict[str, Any] | None:
    """The highest load average any latency figure of the run was measured under, and the cores."""
    figures = [((evaluation or {}).get("baseline") or {}).get("latency_ms") or {}]
    figures += [{"load_1m": t["metrics"].get("latency_load_1m"), "cores": t["metrics"].get("latency_cores")}
                for t in targets.values()]
    figures += [{"load_1m": t["released"].get("latency_load_1m"), "cores": t["released"].get("latency_cores")}
                for t in targets.values() if t.get("released")]
    loads = [f for f in figures if f.get("load_1m") is not None]
    if not loads:
        return None
    worst = max(loads, key=lambda f: f["load_1m"])
    return {"load_1m": worst["load_1m"], "cores": worst.get("cores")}


def _load_warning(load: dict[str, Any] | None, targets: dict[str, Any]) -> list[str]:
    """A warning when a latency gate was judged on a machine busier than its cores (the load is recorded
    in ``machine.latency_load`` and each target's metrics either way)."""
    gated = sorted(name for name, t in targets.items()
                   if any(g["name"] in _LATENCY_GATES for g in t["gates"]))
    names = sorted({g["name"] for t in targets.values() for g in t["gates"] if g["name"] in _LATENCY_GATES})
    if not gated or not load or not load.get("cores") or load["load_1m"] <= load["cores"]:
        return []
    return [f"latencies were measured at a load average of {load['load_1m']} on {load['cores']} cores: other "
            "processes competed for the CPU, so the figures (each example's fastest of several calls) may still be "
            f"high; the {' and '.join(names)} gate{'s' if len(names) > 1 else ''} of {', '.join(gated)} judged this "
            "machine's load, not only the model "
            "(see docs/troubleshooting.md)"]


def _warnings(evaluation: dict[str, Any] | None, targets: dict[str, Any]) -> list[str]:
    naive = (evaluation or {}).get("naive_baseline")
    out: list[str] = _load_warning(_latency_load(evaluation, targets), targets)
    if naive and naive["on_failure"] == "warn":
        values = {s["label"]: s["value"] for s in evaluation["stages"]}  # type: ignore[index]
        metric = naive.get("metric", "accuracy")
        out += [f"the {label} model's {metric} {values[label]:.4f} is no better than the naive baseline "
                f"({naive['predictor']}: {naive['value']:.4f}); accepted by training.naive_baseline: warn"
                for label in naive["failed"]]
    chance = (evaluation or {}).get("chance")
    if not chance:
        return out
    limit = chance["level"] + chance["margin"]
    # models that failed the naive baseline are failures, not near misses: the missed gate says it
    failed = set(naive["failed"]) if naive and naive["on_failure"] == "fail" else set()
    lines = [f"the {label} model is at chance level on the test split" for label in chance["at_chance"]
             if label not in failed]
    lines += [f"target {name} is at chance level on the test split" for name, t in targets.items()
              if t["metrics"].get("accuracy") is not None and t["metrics"]["accuracy"] <= limit
              and all(g["passed"] for g in t["gates"] if g["name"] == NAIVE_BASELINE_GATE)]
    return out + [f"{line}: accuracy <= {chance['level']:.4f} (the majority class's share or uniform guessing) "
                  f"+ {chance['margin']}; the model has learned nothing useful" for line in lines]


def build_report(plan: Plan, records: list[dict[str, Any]], outputs: dict[str, dict[str, Any]],
                 histories: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    """Assemble the report from the step records (in plan order) and each step's metrics."""
    targets: dict[str, Any] = {}
    baseline: dict[str, Any] | None = None
    for step in plan.steps:
        if step.kind != "verify":
            continue
        verified = outputs[step.id]
        if baseline is None:
            baseline = verified["baseline"]
        targets[step.target] = {
            # the target's kind as the plan records it (a plan built without its targets: what was verified)
            "kind": plan.target_kind(step.target) or verified["artifact"],
            "artifact": _artifact(plan, step.target, verified["artifact"]),
            "metrics": verified["metrics"],
            "gates": verified["gates"],
            "passed": verified["passed"],
            "tensors": verified.get("tensors") or {},
            "confusion": verified.get("confusion"),
            "per_class": verified.get("per_class"),
            "accelerators": verified.get("accelerators"),
        }
    for step in plan.steps:  # a target's comparison with its released model, and its vs_released gates
        if step.kind == "compare" and step.target in targets:
            compared = outputs[step.id]
            target = targets[step.target]
            target["released"] = {k: v for k, v in compared.items() if k not in ("gates", "passed")}
            target["gates"] = [*target["gates"], *compared["gates"]]
            target["passed"] = target["passed"] and compared["passed"]
    evaluation = next((outputs[s.id] for s in plan.steps if s.kind == "evaluate" and s.id in outputs), None)
    if baseline is None and evaluation is not None:
        baseline = evaluation["baseline"]
    if baseline is None:
        final = outputs.get(plan.model_step_id()) if any(s.kind in MODEL_STEP_KINDS for s in plan.steps) else None
        baseline = {"metric": "accuracy", "value": (final or {}).get("accuracy"), "size_bytes": None,
                    "latency_ms": {"p50": None, "p95": None}}
    history = {step_id: {k: list(v) for k, v in h.items()} for step_id, h in histories.items()}
    return {
        "report_version": 1,
        "spec": {"name": plan.name, "version": plan.version, "sha256": plan.spec_sha256,
                 "environment": plan.environment},
        "tool_versions": {"tfspec": plan.tfspec_version, **installed_versions()},
        "steps": records,
        "baseline": baseline,
        "targets": targets,
        "history": history,
        "passed": all(t["passed"] for t in targets.values()) and not _naive_failures(evaluation),
        "metric": (evaluation or {}).get("metric", baseline.get("metric", "accuracy")),
        "stages": (evaluation or {}).get("stages", []),
        "class_counts": (evaluation or {}).get("class_counts"),
        "labels": (evaluation or {}).get("labels", []),
        "chance": (evaluation or {}).get("chance"),
        "model_summary": (evaluation or {}).get("layers", []),
        "machine": {**machine(), "latency_load": _latency_load(evaluation, targets)},
        "warnings": _warnings(evaluation, targets),
        "naive_baseline": (evaluation or {}).get("naive_baseline"),
        # a model step no better than the naive baseline (targets list their own gate of it)
        "model_checks": [{"model": model, "name": gate, "limit": limit, "value": value, "passed": False}
                         for model, gate, limit, value in _naive_failures(evaluation)],
    }


def missed_gates(report: dict[str, Any]) -> list[tuple[str, str, float, float]]:
    """``(target, gate, limit, value)`` for every gate a target missed, and for every model step that missed
    the naive baseline (``report["model_checks"]``; the target is ``<stage> model``)."""
    return [(name, gate["name"], gate["limit"], gate["value"])
            for name, target in report["targets"].items() for gate in target["gates"] if not gate["passed"]] + [
        (check["model"], check["name"], check["limit"], check["value"]) for check in report.get("model_checks") or []
        if not check["passed"]]
