"""Which study a search joins: everything a trial's plan depends on except the searched values, never the budget.

The driver runs for real (Optuna, its SQLite storage, the trial loop); only the objective is a stand-in
that records a measurement without TensorFlow, so the test is about study identity, not training.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import optuna
import pytest

from search_testing import write_spec
from tfspec.compiler.pipeline import compile_spec
from tfspec.compiler.search import study_content, study_name
from tfspec.search import driver


def _name(spec: Path) -> str:
    result = compile_spec(spec).raise_for_errors()
    assert result.resolved is not None
    return study_name(result.resolved.spec.name, study_content(result.resolved, result.inputs))


def test_the_budget_is_not_part_of_the_study_but_the_rest_of_the_spec_is(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, trials=3, epochs=5)
    three = _name(spec)
    spec.write_text(spec.read_text("utf-8").replace("trials: 3", "trials: 5"), encoding="utf-8")
    assert _name(spec) == three  # a raised budget continues the study
    spec.write_text(spec.read_text("utf-8").replace("epochs: 5", "epochs: 7"), encoding="utf-8")
    assert _name(spec) != three  # trials measured with 5 epochs say nothing about 7
    spec.write_text(spec.read_text("utf-8").replace("epochs: 7", "epochs: 5"), encoding="utf-8")
    assert _name(spec) == three
    # the base spec's own value of a searched path is a trial's parameter, not the study's
    spec.write_text(spec.read_text("utf-8").replace("name: hidden, units: 64", "name: hidden, units: 32"),
                    encoding="utf-8")
    assert _name(spec) == three
    # a changed search space is a new study (Optuna cannot mix distributions)
    spec.write_text(spec.read_text("utf-8").replace("high: 64", "high: 96"), encoding="utf-8")
    assert _name(spec) != three


def test_an_edited_data_file_is_a_new_study(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, trials=3, epochs=5)
    (tmp_path / "data.csv").write_text("a,b,label\n1,2,0\n3,4,1\n", encoding="utf-8")
    text = spec.read_text("utf-8").replace("source: {kind: sklearn_digits}",
                                           "source: {kind: csv, path: data.csv, label_column: label}")
    text = text.replace("input_shape: [64]", "input_shape: [2]").replace("units: 10", "units: 2")
    spec.write_text(text, encoding="utf-8")
    before = _name(spec)
    (tmp_path / "data.csv").write_text("a,b,label\n1,2,0\n3,5,1\n", encoding="utf-8")
    assert _name(spec) != before


def _fake_objective(spec_path: Path, base: Any, search: Any, cache_dir: Path, log: Any) -> Any:
    """A measurement without TensorFlow: what the real objective records, from the sampled values."""
    def objective(trial: optuna.Trial) -> float:
        units = trial.suggest_int("model.layers[0].units", 12, 64, log=True)
        trial.suggest_float("training.optimizer.learning_rate", 0.003, 0.02, log=True)
        trial.suggest_categorical("targets[0].quantization.kind", ["int8", "dynamic"])
        size = float(units)
        trial.set_user_attr("metrics", {"accuracy": 0.9, "accuracy_drop": 0.0, "size_kb": size,
                                        "latency_ms_p95": 1.0, "latency_ms_p50": 1.0})
        trial.set_user_attr("passed", True)
        return size

    return objective


def test_raising_the_budget_continues_the_study_and_editing_the_spec_starts_a_new_one(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(driver, "_trial_objective", _fake_objective)
    spec = write_spec(tmp_path, trials=3, epochs=5)
    lines: list[str] = []
    first = driver.run_search(spec, log=lines.append)
    assert lines[0].endswith(": 0 of 3 trials done") and len(first.trials) == 3

    spec.write_text(spec.read_text("utf-8").replace("trials: 3", "trials: 5"), encoding="utf-8")
    lines.clear()
    more = driver.run_search(spec, log=lines.append)
    assert more.study_name == first.study_name
    assert lines[0].endswith(": 3 of 5 trials done")  # the three measured trials are kept
    assert len(more.trials) == 5 and more.ran_here == 2

    spec.write_text(spec.read_text("utf-8").replace("epochs: 5", "epochs: 7"), encoding="utf-8")
    lines.clear()
    edited = driver.run_search(spec, log=lines.append)
    assert edited.study_name != first.study_name
    assert lines[0].endswith(": 0 of 5 trials done")  # no trial measured on the old spec is chosen
    assert len(edited.trials) == 5 and edited.ran_here == 5
    assert edited.chosen is not None and edited.chosen.number < 5
