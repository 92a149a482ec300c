"""Policies are bounded like Kubernetes bounds ValidatingAdmissionPolicy CEL, say one short line, and print
nothing else.

Oracle (read at the cited commits):
* kubernetes/apiserver ``pkg/apis/cel/config.go`` (commit 24a394e516bf, the staging copy of kubernetes/kubernetes):
  ``PerCallLimit = 1000000`` ("roughly 0.1 second for each expression validation call") and
  ``RuntimeCELCostBudget = 10000000`` per ValidatingAdmissionPolicyBinding evaluation;
  ``pkg/cel/environment/base.go`` passes ``cel.CostLimit(celconfig.PerCallLimit)`` to every program.
* google/cel-go ``interpreter/runtimecost.go`` and ``common/cost.go`` (commit 14f6746a286f): an identifier or a
  field selection costs ``SelectAndIdentCost = 1``, a constant ``ConstCost = 0``, a call 1 (equality on strings:
  ``ceil(min size x StringTraversalCostFactor 0.1)``), creating a list ``ListCreateBaseCost = 10``.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from tfspec.compiler import cel
from tfspec_testing import EXAMPLE, tfspec_command


def _units(expression: str, **variables: object) -> int:
    """Cost units one evaluation takes from a budget."""
    budget = cel.Budget(cel.POLICY_BUDGET)
    cel.evaluate(cel.compile_expression(expression), {k: cel.to_cel(v) for k, v in variables.items()}, budget)
    return cel.POLICY_BUDGET - budget.left


def test_the_limits_are_kubernetes_own() -> None:
    assert cel.PER_CALL_LIMIT == 1_000_000  # PerCallLimit
    assert cel.POLICY_BUDGET == 10_000_000  # RuntimeCELCostBudget


def test_units_follow_cel_go_runtime_cost() -> None:
    assert _units('a.b.c == "x"', a={"b": {"c": "x"}}) == 4  # ident 1 + select 1 + select 1 + equality 1
    assert _units("true") == 0  # a constant
    assert _units("[1, 2, 3].size() > 0") == 10 + 1 + 1  # list creation, size(), the comparison
    long = "x" * 1000
    assert _units("s.startsWith('y')", s=long) == 1 + 100  # ident, then 0.1 per character traversed


def test_a_runaway_rule_is_stopped_at_the_per_call_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    # ranges the estimate cannot size (list literals): counted while it runs, stopped at the limit
    monkeypatch.setattr(cel, "PER_CALL_LIMIT", 5_000)
    numbers = "[" + ", ".join(str(i) for i in range(100)) + "]"
    program = cel.compile_expression(f"{numbers}.all(a, {numbers}.all(b, a + b >= 0))")
    with pytest.raises(cel.CostLimitExceeded, match="more than the 5,000 cost units of one expression"):
        cel.evaluate(program, {}, cel.Budget())


def test_a_policy_shares_one_budget_across_its_evaluations() -> None:
    budget = cel.Budget(50)
    program = cel.compile_expression("x.a == 1 && x.b == 2")
    with pytest.raises(cel.CostLimitExceeded, match="of one policy on one spec"):
        for _ in range(20):
            cel.evaluate(program, {"x": cel.to_cel({"a": 1, "b": 2})}, budget)


def _project(tmp_path: Path, policies: str, width: int = 2) -> Path:
    (tmp_path / ".git").mkdir()
    names = ", ".join(f"l{i}".ljust(width, "x") for i in range(10))
    spec = EXAMPLE.read_text(encoding="utf-8").replace("  split:", f"  labels: [{names}]\n  split:", 1)
    (tmp_path / "deploy.yaml").write_text(spec, encoding="utf-8")
    (tmp_path / "tfspec.yaml").write_text("policies: [p.yaml]\n", encoding="utf-8")
    (tmp_path / "p.yaml").write_text(policies, encoding="utf-8")
    return tmp_path


def _validate(project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tfspec_command(), "validate", "deploy.yaml"], cwd=project, capture_output=True, text=True,
                          timeout=120)


def test_six_nested_alls_over_ten_labels_are_refused_at_once_at_the_rule(tmp_path: Path) -> None:
    """The issue's case ran for more than 60 s; its estimated cost is past the per-call limit."""
    rule = "spec.data.labels.all(a, " * 6 + 'a != "z"' + ")" * 6
    project = _project(tmp_path, f"policies:\n  - name: nested\n    rule: '{rule}'\n    message: nested\n")
    started = time.monotonic()
    proc = _validate(project)
    assert time.monotonic() - started < 60
    assert proc.returncode == 2, proc.stderr
    [line, summary] = proc.stderr.splitlines()
    assert line.startswith("p.yaml:3:5: policies[0].rule: policy nested: evaluating it for <root> costs an "
                           "estimated "), line
    assert "more than the 1,000,000 of one expression" in line and summary == "1 problem found"


def test_a_bad_regular_expression_is_one_line_and_re2_prints_nothing(tmp_path: Path) -> None:
    project = _project(tmp_path, "policies:\n  - name: bad-regex\n    rule: spec.name.matches('(')\n    message: m\n")
    proc = _validate(project)
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        "p.yaml:3:5: policies[0].rule: policy bad-regex: the rule could not be evaluated for <root>: "
        "invalid regular expression: missing ): (", "1 problem found"]


def test_a_huge_list_from_a_rule_is_echoed_cut(tmp_path: Path) -> None:
    rule = "spec.data.labels.map(l, l + l + l + l + l + l + l + l)"
    project = _project(tmp_path, f"policies:\n  - name: big\n    rule: '{rule}'\n    message: m\n", width=200)
    proc = _validate(project)
    assert proc.returncode == 2
    [line, _] = proc.stderr.splitlines()
    assert "the expression gave [" in line and len(line) < 300, len(line)


def test_a_huge_policy_message_is_refused_at_its_line(tmp_path: Path) -> None:
    project = _project(tmp_path, "policies:\n  - name: chatty\n    rule: 'false'\n    message: " + "m" * 200_000 + "\n")
    proc = _validate(project)
    assert proc.returncode == 2
    [line, _] = proc.stderr.splitlines()
    assert line.startswith("p.yaml:4:5: policies[0].message: a policy message is one line of at most 200 characters "
                           "(this one has 200,000)"), line[:300]
    assert len(proc.stderr) < 500
