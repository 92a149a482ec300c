"""Policy verdicts remembered by what a rule reads: the analysis keeps every part a rule can read, an evaluation
over the cut-down values gives the same value and spends the same cost units as over the whole values, and a
verdict is reused exactly when what the rule reads is the same.

The cost units are the meter of :mod:`tfspec.compiler.cel` (its oracle: tests/compiler/test_policy_bounds.py).
"""

from __future__ import annotations

from typing import Any

import pytest

from tfspec.compiler import cel, policies
from tfspec.compiler.cel_reads import Reads, project, reads_of
from tfspec.spec.loader import load_yaml_text

TARGET = {"kind": "tf_serving", "name": "serving", "gpus": 0, "supported_ops": ["builtin"],
          "gates": {"min_accuracy": 0.9}, "kubernetes": {"replicas": 2, "autoscale": {"min": 2, "max": 10}},
          "labels": {"team": "a", "tier": "gold"}, "sizes": [3, 1, 2]}
SPEC = {"name": "digits", "training": {"epochs": 5, "batch_size": 32}, "targets": [TARGET, {"kind": "tflite"}]}
OBJECTS = [
    {"kind": "Deployment", "metadata": {"name": "d"},
     "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "registry.example.com/a@sha256:1", "name": "c"},
                                                                    {"image": "other/b:1", "name": "s"}]}}}},
    {"kind": "PodDisruptionBudget", "metadata": {"name": "p"}, "spec": {"minAvailable": 1}},
    {"kind": "Service", "metadata": {"name": "s"}, "spec": {"ports": [{"port": 8500}]}},
]
VARIABLES = {"spec": SPEC, "target": TARGET, "objects": OBJECTS, "env": "prod"}

EXPRESSIONS = [
    'target.kind == "tf_serving" && target.gpus == 0',
    "has(target.kubernetes) && has(target.kubernetes.autoscale)",
    "has(target.gates.max_accuracy_drop) || has(target.gates.min_accuracy)",
    '!("select_tf_ops" in target.supported_ops)',
    "spec.training.epochs > 3 && spec.name.startsWith('dig')",
    'objects.exists(o, o.kind == "PodDisruptionBudget")',
    'env != "prod" || objects.all(o, o.kind != "Deployment" || o.spec.template.spec.containers.all(c, '
    'c.image.startsWith("registry.example.com/") && c.image.contains("@sha256:")))',
    "objects.exists_one(o, o.spec.replicas == 2)",
    "size(spec.targets) == 2",  # passed to a function: whole
    "spec.targets[0].gpus == 0",  # indexed: whole
    "spec.targets.map(t, t.kind)[1] == 'tflite'",  # map returns elements: its receiver whole
    'objects.filter(o, o.kind == "Deployment")[0].metadata.name == "d"',  # filter returns elements
    "target == target",  # compared whole
    "target.labels.all(k, k != 'x')",  # a map's keys
    "target.sizes.all(s, s > 0) && target.sizes.exists(s, s == 2)",
    "objects.all(target, has(target.kind)) && target.gpus == 0",  # the iteration variable shadows target
    "spec.targets.all(t, t.kind != 'gpu_cluster' || t.gpus_per_worker <= 2)",  # a missing field in some
    "target.kubernetes.autoscale.max",  # not a truth value
    "target.missing.field == 1",  # an error
    'objects.all(o, o.spec.template.spec.containers.size() < 3)',  # an error on the objects without template
    "[1, 2].all(x, x > 0) && target.gpus >= 0",  # a literal receiver
    "objects.all(target, .target.gpus == 0)",  # the root-scoped name: the variable, not the iteration variable
    ".target.kubernetes.replicas == 2",
]


def _run(expression: str, variables: dict[str, Any]) -> tuple[str, int]:
    budget = cel.Budget()
    try:
        value = cel.evaluate(cel.compile_expression(expression), {k: cel.to_cel(v) for k, v in variables.items()},
                             budget)
    except Exception as error:  # noqa: BLE001  (compared by kind below)
        value = error
    kind = "error" if isinstance(value, Exception) else cel.show(value)
    return kind, cel.POLICY_BUDGET - budget.left


@pytest.mark.parametrize("expression", EXPRESSIONS)
def test_an_evaluation_over_what_the_rule_reads_is_the_evaluation_over_everything(expression: str) -> None:
    reads = reads_of(cel.compile_expression(expression)._runner.ast)
    cut = {name: project(value, reads[name]) for name, value in VARIABLES.items() if name in reads}
    assert _run(expression, cut) == _run(expression, VARIABLES)


def test_a_selection_keeps_only_the_fields_it_names() -> None:
    reads = reads_of(cel.compile_expression("has(target.gates.x) && target.kind == 'a' && spec.training.epochs > 1")
                     ._runner.ast)
    assert set(reads) == {"target", "spec"}
    assert project(TARGET, reads["target"]) == {"kind": "tf_serving", "gates": {}}  # gates.x is absent
    assert project(SPEC, reads["spec"]) == {"training": {"epochs": 5}}


def test_all_and_exists_keep_every_element_cut_down_to_what_the_body_reads() -> None:
    expression = 'objects.all(o, o.kind != "Deployment" || o.spec.template.spec.containers.all(c, c.image != ""))'
    reads = reads_of(cel.compile_expression(expression)._runner.ast)
    assert project(OBJECTS, reads["objects"]) == [
        {"kind": "Deployment", "spec": {"template": {"spec": {"containers": [
            {"image": "registry.example.com/a@sha256:1"}, {"image": "other/b:1"}]}}}},
        {"kind": "PodDisruptionBudget", "spec": {}},
        {"kind": "Service", "spec": {}},
    ]


@pytest.mark.parametrize(("expression", "name"), [
    ("size(target) > 0", "target"),  # passed to a function
    ("target.labels['team'] == 'a'", "target"),  # indexed by a constant: still whole from there
    ("target == {}", "target"),  # compared whole
    ("spec.targets.map(t, t.kind).size() > 0", "spec"),  # map returns elements
    ("objects.filter(o, o.kind == 'x').size() > 0", "objects"),  # filter returns elements
    ("dyn(target).kind == 'x'", "target"),
    ("target.labels.all(k, k != 'x')", "target"),  # a map iterated by its keys
])
def test_a_value_used_whole_is_kept_whole(expression: str, name: str) -> None:
    reads = reads_of(cel.compile_expression(expression)._runner.ast)
    kept = project(VARIABLES[name], reads[name])
    if name == "target" and "labels" in expression:
        assert kept == {"labels": TARGET["labels"]}
    elif name == "spec":
        assert kept == {"targets": SPEC["targets"]}
    else:
        assert kept == VARIABLES[name]


POLICY_FILE = """\
policies:
  - name: serving-autoscales
    each: targets
    as: target
    when: target.kind == "tf_serving"
    rule: target.kubernetes.replicas >= 2
    message: at least two replicas
"""


def _policy(text: str = POLICY_FILE) -> policies.Policy:
    problems: list[Any] = []
    found = policies._policies_of(load_yaml_text(text, "policies.yaml"), problems)
    assert not problems and len(found) == 1
    return found[0]


def _judge(policy: policies.Policy, target: dict[str, Any], budget: cel.Budget | None = None) -> bool:
    judge = policies._Judge({"targets": [target]}, "", None)
    return judge.passes(policy, ("targets", 0), target, "serving", budget or cel.Budget())


def _counting(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = policies.evaluate

    def counted(program: Any, activation: dict[str, Any], budget: cel.Budget) -> Any:
        calls.append(",".join(sorted(activation)))
        return real(program, activation, budget)

    monkeypatch.setattr(policies, "evaluate", counted)
    monkeypatch.setattr(policies, "_VERDICTS", {})
    return calls


def test_specs_that_differ_only_where_a_rule_does_not_read_share_one_verdict(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    policy = _policy()
    one = {"kind": "tf_serving", "name": "serving", "gpus": 0, "kubernetes": {"replicas": 2, "port": 1}}
    two = {**one, "gpus": 1, "kubernetes": {"replicas": 2, "port": 2}, "warmup": {"requests": 10}}
    assert _judge(policy, one) and _judge(policy, two)
    assert len(calls) == 2  # `when` and `rule` once each: the second target reads the same kind and replicas


def test_specs_that_differ_where_a_rule_reads_get_their_own_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    policy = _policy()
    one = {"kind": "tf_serving", "name": "serving", "kubernetes": {"replicas": 2}}
    assert _judge(policy, one)
    assert not _judge(policy, {**one, "kubernetes": {"replicas": 1}})  # the rule reads replicas
    assert _judge(policy, {**one, "kind": "tflite"})  # `when` reads the kind: false, the rule is not judged
    assert len(calls) == 2 + 1 + 1


def test_has_tells_a_present_field_from_an_absent_one(monkeypatch: pytest.MonkeyPatch) -> None:
    _counting(monkeypatch)
    policy = _policy(POLICY_FILE.replace("target.kubernetes.replicas >= 2", "has(target.kubernetes.autoscale)"))
    one = {"kind": "tf_serving", "name": "serving", "kubernetes": {"replicas": 2}}
    assert not _judge(policy, one)
    assert _judge(policy, {**one, "kubernetes": {"replicas": 2, "autoscale": {"min": 2}}})
    assert not _judge(policy, one)


def test_a_remembered_verdict_still_spends_its_cost_from_the_policy_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = _counting(monkeypatch)
    policy = _policy()
    target = {"kind": "tf_serving", "name": "serving", "kubernetes": {"replicas": 2}}
    budget = cel.Budget()
    _judge(policy, target, budget)
    spent = cel.POLICY_BUDGET - budget.left
    assert spent > 0
    budget = cel.Budget(spent * 3)
    for _ in range(3):
        assert _judge(policy, target, budget)
    assert budget.left == 0 and len(calls) == 2  # judged once, charged three times
    with pytest.raises(cel.CostLimitExceeded, match="of one policy on one spec"):
        _judge(policy, target, budget)


def test_an_evaluation_error_names_what_the_whole_value_gave(monkeypatch: pytest.MonkeyPatch) -> None:
    _counting(monkeypatch)
    policy = _policy(POLICY_FILE.replace("target.kubernetes.replicas >= 2", "target.kubernetes.replicas.x == 1"))
    target = {"kind": "tf_serving", "name": "serving", "kubernetes": {"replicas": 2}}
    with pytest.raises(Exception) as raised:
        _judge(policy, target)
    with pytest.raises(Exception) as whole:
        cel.evaluate(policy.program, {"target": cel.to_cel(target)}, cel.Budget())
    assert cel.error_message(raised.value) == cel.error_message(whole.value)
    assert "IntType(2)" in cel.error_message(raised.value)
