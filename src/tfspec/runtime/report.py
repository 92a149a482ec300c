"""``report.json``: what a run did and measured (per-step timing, training history, per-target metrics).

Its shape is a contract (an HTML renderer reads it); keys may be added, never renamed:
``{"spec", "tool_versions", "steps": [...], "baseline", "targets": {...}, "history": {...}, "passed"}``,
and since the ``evaluate`` step: ``metric`` (``accuracy`` or ``mae``), ``stages`` (the trained model and
each compression stage's model, measured on the test split), ``class_counts``, ``model_summary``,
``machine`` (where latencies were measured) and ``warnings`` (e.g. a model at chance level).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any

from tfspec.plan import MODEL_STEP_KINDS, Plan, SavedModelBundleParams, TfliteBundleParams

from .tf import installed_versions

__all__ = ["REPORT_FILE", "build_report", "missed_gates", "machine"]

REPORT_FILE = "report.json"


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


def _warnings(evaluation: dict[str, Any] | None, targets: dict[str, Any]) -> list[str]:
    chance = (evaluation or {}).get("chance")
    if not chance:
        return []
    limit = chance["level"] + chance["margin"]
    out = [f"the {label} model is at chance level on the test split" for label in chance["at_chance"]]
    out += [f"target {name} is at chance level on the test split" for name, t in targets.items()
            if t["metrics"].get("accuracy") is not None and t["metrics"]["accuracy"] <= limit]
    return [f"{line}: accuracy <= {chance['level']:.4f} (the majority class's share or uniform guessing) "
            f"+ {chance['margin']}; the model has learned nothing useful" for line in out]


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
            "kind": "tflite" if verified["artifact"] == "tflite" else "tf_serving",
            "artifact": _artifact(plan, step.target, verified["artifact"]),
            "metrics": verified["metrics"],
            "gates": verified["gates"],
            "passed": verified["passed"],
            "tensors": verified.get("tensors") or {},
            "confusion": verified.get("confusion"),
            "per_class": verified.get("per_class"),
            "accelerators": verified.get("accelerators"),
        }
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
        "passed": all(t["passed"] for t in targets.values()),
        "metric": (evaluation or {}).get("metric", baseline.get("metric", "accuracy")),
        "stages": (evaluation or {}).get("stages", []),
        "class_counts": (evaluation or {}).get("class_counts"),
        "labels": (evaluation or {}).get("labels", []),
        "chance": (evaluation or {}).get("chance"),
        "model_summary": (evaluation or {}).get("layers", []),
        "machine": machine(),
        "warnings": _warnings(evaluation, targets),
    }


def missed_gates(report: dict[str, Any]) -> list[tuple[str, str, float, float]]:
    """``(target, gate, limit, value)`` for every gate a target missed."""
    return [(name, gate["name"], gate["limit"], gate["value"])
            for name, target in report["targets"].items() for gate in target["gates"] if not gate["passed"]]
