"""A compression technique is one module per layer: a toy technique declared here (its spec stage model, its
plan params and step kind, its compiler :class:`Technique`, its runtime step module) is validated by its own
rules, planned with its own params, inputs and outputs, read back from plan.json and found by the executor,
while ``compiler/plan.py`` and ``compiler/validate.py`` name none of it."""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path
from typing import Any, Literal

import pytest

import tfspec
from tfspec.compiler.plan import build_plan
from tfspec.compiler.resolve import ResolvedSpec
from tfspec.compiler.techniques import TECHNIQUES, StagePlan, Technique
from tfspec.compiler.techniques.registry import Checks, NotAfter
from tfspec.compiler.validate import collect_diagnostics
from tfspec.plan import STEP_KIND_TABLE, Plan, StageParams, StepKind
from tfspec.runtime.executor import step_module
from tfspec.base.errors import Diagnostic
from tfspec.spec.base import StrictModel
from tfspec_testing import EXAMPLE

COMPILER = Path(tfspec.__file__).resolve().parent / "compiler"  # the installed package, not the working tree


class SharpenStage(StrictModel):
    """What the toy technique's stage model would be in spec/compression.py."""

    kind: Literal["sharpen"] = "sharpen"
    amount: float = 0.5
    learning_rate: float | None = None


class SharpenParams(StageParams):
    """What the toy technique's params would be in plan/stages.py."""

    amount: float


def _params(resolved: ResolvedSpec, index: int, stage: SharpenStage, common: dict[str, Any],
            digests: Any) -> SharpenParams:
    return SharpenParams(**common, amount=stage.amount)


def _at_most_one(r: ResolvedSpec, index: int, stage: SharpenStage) -> list[Diagnostic]:
    if stage.amount <= 1:
        return []
    return [r.diagnostic(("compression", index, "amount"), f"amount {stage.amount} is above 1", "use at most 1")]


def _train_and_data(steps: StagePlan) -> list[str]:
    # reads the trained model, whatever stage came before it (as a self-teacher distill stage does)
    return [steps.train, steps.data]


@pytest.fixture
def sharpen(monkeypatch: pytest.MonkeyPatch) -> Technique:
    """The toy technique registered in every layer's table (restored after the test)."""
    monkeypatch.setitem(STEP_KIND_TABLE, "sharpen", StepKind("sharpen", SharpenParams, makes_model=True,
                                                             stage="sharpen"))
    entry = Technique("sharpen", "sharpen", _params, rules=(
        NotAfter(("quantization_aware",), "sharpen after quantization_aware blurs the learned ranges",
                 "sharpen first"), Checks(_at_most_one)), inputs=_train_and_data, outputs=("model.keras", "history.json"))
    monkeypatch.setitem(TECHNIQUES, "sharpen", entry)
    runtime_step = types.ModuleType("tfspec.runtime.steps.sharpen")
    runtime_step.run = lambda ctx: None  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tfspec.runtime.steps.sharpen", runtime_step)
    return entry


def _with_stage(stage: SharpenStage, *, first: bool) -> ResolvedSpec:
    resolved = tfspec.compile(EXAMPLE).resolved
    assert resolved is not None
    stages = [stage, *resolved.spec.compression] if first else [*resolved.spec.compression, stage]
    return dataclasses.replace(resolved, spec=resolved.spec.model_copy(update={"compression": stages}))


def test_a_toy_technique_is_validated_planned_read_back_and_run_by_its_own_module(sharpen: Technique) -> None:
    resolved = _with_stage(SharpenStage(amount=0.25), first=True)
    assert collect_diagnostics(resolved) == []
    plan = build_plan(resolved)
    step = plan.step("compress.0.sharpen")
    assert (step.kind, step.inputs, step.outputs) == ("sharpen", ("train", "data"), ("model.keras", "history.json"))
    assert isinstance(step.params, SharpenParams) and step.params.amount == 0.25
    assert step.params.stage == "sharpen" and step.params.index == 0
    assert step.params.learning_rate == 0.001  # the training optimizer's initial rate: the stage sets none
    # plan.json parses back to the toy's params (the step table names the params type)
    again = Plan.from_json(plan.to_text())
    assert again.step("compress.0.sharpen").params == step.params
    assert step_module(step, plan) is sys.modules["tfspec.runtime.steps.sharpen"]
    # its ordering rule and its rule of the stage alone, from its own entry
    late = _with_stage(SharpenStage(amount=2), first=False)
    assert [(d.path, d.message) for d in collect_diagnostics(late)] == [
        ("compression[2].kind", "sharpen after quantization_aware blurs the learned ranges"),
        ("compression[2].amount", "amount 2.0 is above 1")]


def test_the_plan_and_validate_modules_name_no_technique() -> None:
    for module in ("plan.py", "validate.py"):
        text = (COMPILER / module).read_text("utf-8")
        # a branch on a technique would spell its kind or import its stage model
        for kind in ("prune", "cluster", "quantization_aware", "qat", "distill"):
            assert f'"{kind}"' not in text, (module, kind)
        assert "tfspec.spec.compression" not in text, module
