"""The ``vs_released`` gates' arithmetic (``runtime/steps/compare.py``), without TensorFlow: which way each
change is counted for accuracy and for an error metric, the growth percentages, and the limits' edges."""

from __future__ import annotations

import json

import pytest

from tfspec.runtime.steps.compare import compare, growth_percent

NO_GATES = {"max_accuracy_drop": None, "min_accuracy_gain": None, "max_error_increase": None,
            "min_error_decrease": None, "max_size_growth_percent": None, "max_latency_growth_percent": None}


def _figures(value: float, size: int = 1000, p95: float = 1.0) -> dict[str, float]:
    return {"value": value, "size_bytes": size, "latency_ms_p95": p95}


def _gates(**limits: float) -> dict[str, float | None]:
    return {**NO_GATES, **limits}


def test_accuracy_lower_than_released_is_worse() -> None:
    change, gates = compare("accuracy", _gates(max_accuracy_drop=0.0, min_accuracy_gain=0.01),
                            _figures(0.90), _figures(0.92))
    assert change["worse_by"] == pytest.approx(0.02) and change["better_by"] == pytest.approx(-0.02)
    assert [(g["name"], g["passed"]) for g in gates] == [("vs_released.max_accuracy_drop", False),
                                                         ("vs_released.min_accuracy_gain", False)]


def test_an_error_metric_higher_than_released_is_worse() -> None:
    # mae: the candidate's 1.5 against the released 2.0 is better by 0.5
    change, gates = compare("mae", _gates(max_error_increase=0.0, min_error_decrease=0.5), _figures(1.5), _figures(2.0))
    assert change["worse_by"] == pytest.approx(-0.5)
    assert all(g["passed"] for g in gates) and len(gates) == 2
    change, gates = compare("mae", _gates(max_error_increase=0.1), _figures(2.2), _figures(2.0))
    assert change["worse_by"] == pytest.approx(0.2) and not gates[0]["passed"]


def test_the_limits_are_inclusive_and_unset_gates_are_not_checked() -> None:
    _, gates = compare("accuracy", _gates(max_accuracy_drop=0.0), _figures(0.9), _figures(0.9))
    assert [(g["name"], g["value"], g["passed"]) for g in gates] == [("vs_released.max_accuracy_drop", 0.0, True)]
    assert compare("accuracy", NO_GATES, _figures(0.1), _figures(0.9))[1] == []


def test_size_and_latency_growth_in_percent_of_the_released_model() -> None:
    change, gates = compare("accuracy", _gates(max_size_growth_percent=10.0, max_latency_growth_percent=-10.0),
                            _figures(0.9, size=3000, p95=0.8), _figures(0.9, size=1000, p95=1.0))
    assert change["size_growth_percent"] == pytest.approx(200.0)
    assert change["latency_growth_percent"] == pytest.approx(-20.0)
    assert [g["passed"] for g in gates] == [False, True]  # a negative limit: it must shrink (here by 20 %)


def test_growth_from_nothing() -> None:
    assert growth_percent(0, 0) == 0.0 and growth_percent(5, 0) is None and growth_percent(50, 100) == -50.0
    # no percentage of nothing: the gate fails with no value, and the change stays valid JSON (no Infinity)
    change, gates = compare("accuracy", _gates(max_size_growth_percent=10.0), _figures(0.9, size=10), _figures(0.9, size=0))
    assert change["size_growth_percent"] is None
    assert gates == [{"name": "vs_released.max_size_growth_percent", "limit": 10.0, "value": None, "passed": False}]
    json.dumps(change, allow_nan=False)
