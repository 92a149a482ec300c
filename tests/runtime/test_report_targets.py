"""report.json's target rows: each says its target's kind as the plan records it (no TensorFlow needed)."""

from __future__ import annotations

from typing import Any

import yaml

from tfspec.compiler.pipeline import compile_spec
from tfspec.plan import Plan
from tfspec.runtime.report import build_report
from tfspec_testing import EXAMPLE


def _verified(artifact: str) -> dict[str, Any]:
    """What a verify step returns, as build_report reads it."""
    return {"artifact": artifact, "baseline": {"metric": "accuracy", "value": 0.97, "size_bytes": 1000,
                                               "latency_ms": {"p50": 0.1, "p95": 0.2}},
            "metrics": {"accuracy": 0.96}, "gates": [], "passed": True}


def test_each_target_row_says_its_kind(tmp_path) -> None:
    """A kserve target's row said tf_serving: the runtime guessed the kind from the artifact it verified."""
    tree = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    tree["targets"].append({"kind": "kserve", "name": "kserve", "model_store": {"base_path": "s3://models/digits"}})
    spec = tmp_path / "deploy.yaml"
    spec.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    result = compile_spec(spec, environ={})
    assert result.plan is not None, [d.format() for d in result.diagnostics]
    plan = Plan.from_json(result.plan.to_text())  # as the runtime reads it
    outputs = {s.id: _verified(s.params.artifact) for s in plan.steps if s.kind == "verify"}
    report = build_report(plan, [], outputs, {})
    assert {name: t["kind"] for name, t in report["targets"].items()} == {
        "android": "tflite", "serving": "tf_serving", "kserve": "kserve"}
