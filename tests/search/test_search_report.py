"""Choosing the configuration, the Pareto front and the report page, from trial records (no trial runs)."""

from __future__ import annotations

from pathlib import Path

import yaml

from tfspec.search.driver import SearchOutcome, TrialRecord, chosen_trial, pareto_numbers
from tfspec.search.report import output_files, overlay_path, write_overlay
from tfspec.spec.search import Search


def _record(number: int, accuracy: float, size: float, latency: float, passed: bool = True,
            state: str = "complete") -> TrialRecord:
    return TrialRecord(number, state, {"model.layers[0].units": number + 8},
                       {"accuracy": accuracy, "size_kb": size, "latency_ms_p95": latency, "accuracy_drop": 0.0,
                        "latency_ms_p50": latency} if state == "complete" else {},
                       passed, None, {"model": {"layers": [{"type": "dense", "units": number + 8}]}}, 1.0, 3, 4, None)


SEARCH = {"parameters": [{"kind": "int", "path": "model.layers[0].units", "low": 8, "high": 64}],
          "objective": {"kind": "minimize", "target": "android", "metric": "size_kb"}}
RECORDS = [_record(0, 0.95, 8.0, 0.010), _record(1, 0.93, 4.0, 0.008), _record(2, 0.80, 2.0, 0.005, passed=False),
           _record(3, 0.94, 4.0, 0.009), _record(4, 0.0, 0.0, 0.0, passed=False, state="pruned"),
           _record(5, 0.96, 6.0, 0.004)]


def test_minimize_chooses_the_smallest_trial_within_the_gates() -> None:
    assert chosen_trial(RECORDS, Search.model_validate(SEARCH)).number == 1  # 2 is smaller but missed a gate


def test_pareto_front_counts_only_trials_within_the_gates_and_chooses_its_smallest() -> None:
    search = Search.model_validate({**SEARCH, "objective": {"kind": "pareto", "target": "android"}})
    assert sorted(pareto_numbers(RECORDS, search)) == [1, 3, 5]  # 0 is beaten by 5 on every metric
    assert chosen_trial(RECORDS, search).number == 1  # smallest, then lowest latency


def test_no_trial_within_the_gates_chooses_nothing() -> None:
    assert chosen_trial([r for r in RECORDS if not r.passed], Search.model_validate(SEARCH)) is None


def test_outputs_page_and_overlay(tmp_path: Path) -> None:
    search = Search.model_validate(SEARCH)
    chosen = chosen_trial(RECORDS, search)
    outcome = SearchOutcome("digits-0123456789ab", "sqlite:///x.db", tuple(RECORDS), chosen,
                            tuple(pareto_numbers(RECORDS, search)), {"value": 0.95},
                            {"max_size_kb": 5.0, "max_accuracy_drop": 0.05}, 6)
    spec = tmp_path / "deploy.yaml"
    written = write_overlay(outcome, spec)
    assert written == overlay_path(spec) == tmp_path / "deploy.searched.env.yaml"
    assert yaml.safe_load(written.read_text(encoding="utf-8")) == chosen.overlay
    files = output_files(outcome)
    assert sorted(files) == ["report.html", "search.json"]
    page = files["report.html"]
    assert page.count("<svg") == 2
    # the size limit, and the accuracy floor (0.95 - 0.05) on both charts; no latency gate is set
    assert page.count('class="gate"') == 3
    assert page.count('<circle class="chosen"') == 2 and "Chosen: trial 1" in page
    assert "<script" not in page and "src=" not in page
