"""Helpers for the runtime tests: the fast digits spec, the CLI in-process, a compiled step context, and spec
sections as the plan holds them (``plan_model``, ``plan_optimizer``, ``plan_fit``: validated by the spec's
models, converted by the compiler, as ``tfspec build`` does)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pydantic import TypeAdapter

from tfspec.cli import cli
from tfspec.compiler.pipeline import CompileResult, compile_spec
from tfspec.compiler.plan_sections import fit_params, model_params, optimizer_params
from tfspec.plan import FitParams, LearningRateParams, ModelParams, OptimizerParams
from tfspec.runtime.context import StepContext
from tfspec.spec.data import Augmentation
from tfspec.spec.model import ModelSpec
from tfspec.spec.training import Training

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "runtime"
FAST_SPEC = DATA_DIR / "digits_fast.yaml"

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def invoke(*args: str) -> Result:
    """``tfspec ARGS`` in this process (real exit codes, no traceback swallowing beyond click's)."""
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def compile_text(tmp_path: Path, text: str, name: str = "deploy.yaml") -> CompileResult:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    result = compile_spec(path)
    assert result.ok, [d.format() for d in result.diagnostics]
    return result


def step_context(result: CompileResult, step_id: str, out: Path, inputs: dict[str, Path] | None = None) -> StepContext:
    assert result.plan is not None
    out.mkdir(parents=True, exist_ok=True)
    return StepContext(step=result.plan.step(step_id), plan=result.plan, root=Path(result.path).parent,
                       out=out, inputs=inputs or {}, quiet=True, log=lambda line: None)


def read_json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


@pytest.fixture
def fast_spec_text() -> str:
    return FAST_SPEC.read_text("utf-8")


def plan_model(section: dict[str, Any]) -> ModelParams:
    """A spec ``model`` section as the train step's params hold it (spec defaults filled, layers named)."""
    return model_params(TypeAdapter(ModelSpec).validate_python(section))


def plan_optimizer(section: dict[str, Any]) -> OptimizerParams:
    """A spec ``training.optimizer`` section as the plan holds it."""
    return optimizer_params(Training.model_validate({"optimizer": section}).optimizer)


def plan_learning_rate(value: float | dict[str, Any]) -> LearningRateParams:
    """A spec learning rate (a number or a schedule) as the plan holds it."""
    return plan_optimizer({"kind": "adam", "learning_rate": value}).learning_rate


def plan_fit(training: dict[str, Any] | None = None, augmentation: dict[str, Any] | None = None) -> FitParams:
    """A spec ``training`` section (and ``data.augmentation``) as the train step's ``fit`` params."""
    return fit_params(Training.model_validate(training or {}),
                      Augmentation.model_validate(augmentation) if augmentation is not None else None)
