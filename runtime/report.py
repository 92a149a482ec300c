"""``report.json``: what a run did and measured (per-step timing, training history, per-target metrics).

Its shape is a contract (an HTML renderer reads it); keys may be added, never renamed:
``{"spec", "tool_versions", "steps": [...], "baseline", "targets": {...}, "history": {...}, "passed"}``.
"""

from __future__ import annotations

from typing import Any

from tfspec.plan import MODEL_STEP_KINDS, Plan, SavedModelBundleParams, TfliteBundleParams

from .tf import installed_versions

__all__ = ["REPORT_FILE", "build_report", "missed_gates"]

REPORT_FILE = "report.json"


def _artifact(plan: Plan, target: str, kind: str) -> str | None:
    for step in plan.steps:
        if step.target == target and step.kind == "bundle":
            if isinstance(step.params, TfliteBundleParams):
                return f"{step.params.assets_dir}/{step.params.filename}"
            assert isinstance(step.params, SavedModelBundleParams)
            return step.params.model_dir
    return None


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
        }
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
    }


def missed_gates(report: dict[str, Any]) -> list[tuple[str, str, float, float]]:
    """``(target, gate, limit, value)`` for every gate a target missed."""
    return [(name, gate["name"], gate["limit"], gate["value"])
            for name, target in report["targets"].items() for gate in target["gates"] if not gate["passed"]]
