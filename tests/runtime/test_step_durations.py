"""A step's recorded duration is its own work: loading TensorFlow (seconds, once per process) is start-up,
not part of the first step that runs (it made the ``data`` step of a 569-row CSV look like 7-10 s)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tfspec.running import run_inputs_from_compiled
from tfspec.runtime import executor
from tfspec.runtime.tf import import_tf

from runtime_testing import FAST_SPEC, compile_text

LOAD_S = 3.0
import_tf()  # really loaded; the executor is then told it is not, and its load takes LOAD_S


def test_loading_tensorflow_is_not_counted_in_the_first_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result = compile_text(tmp_path, FAST_SPEC.read_text("utf-8"))
    data_only = result.plan.model_copy(update={"steps": (result.plan.step("data"),)})
    loads: list[float] = []
    monkeypatch.setattr(executor, "tf_loaded", lambda: not not loads)  # as in a fresh process
    monkeypatch.setattr(executor, "_load_tensorflow", lambda log: loads.append(time.sleep(LOAD_S) or LOAD_S))
    run = run_inputs_from_compiled(result)
    start = time.perf_counter()
    outcome = executor.run_plan(executor.RunInputs(plan=data_only, root=run.root, rendered={}),
                                cache_dir=tmp_path / "cache", dist_dir=tmp_path / "dist", quiet=True,
                                log=lambda line: None)
    wall = time.perf_counter() - start
    assert loads == [LOAD_S] and outcome.ran == ("data",)
    (data,) = outcome.report["steps"]
    assert data["duration_s"] <= wall - LOAD_S  # the whole run took the load and the step, one after the other
