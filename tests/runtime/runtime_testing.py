"""Helpers for the runtime tests: the fast digits spec, the CLI in-process, a compiled step context."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from tfspec.cli import cli
from tfspec.compiler.pipeline import CompileResult, compile_spec
from tfspec.runtime.context import StepContext

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
