"""Validator rules for deploy targets: each rejects what it should, with a key path and position."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from tfspec.compiler.pipeline import CompileResult, compile_spec
from tfspec.compiler.quantities import quantity_value

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "digits" / "deploy.yaml"


def _compile(tmp_path: Path, **changes: dict[str, Any]) -> CompileResult:
    tree = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    for target in tree["targets"]:
        target.update(copy.deepcopy(changes.get(target["name"], {})))
    spec = tmp_path / "deploy.yaml"
    spec.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return compile_spec(spec, environ={})


def _problems(result: CompileResult) -> dict[str, str]:
    assert not result.ok
    for d in result.diagnostics:
        assert d.line > 1 and d.column >= 1, d  # positioned on the offending node, not the file's top
    return {d.path: d.message for d in result.diagnostics}


def test_the_example_is_valid(tmp_path: Path) -> None:
    assert _compile(tmp_path).ok


def test_tfjob_uses_port_2222(tmp_path: Path) -> None:
    problems = _problems(_compile(tmp_path, cluster={"port": 3333, "operator": "tfjob"}))
    assert "port 2222" in problems["targets[2].port"]
    assert _compile(tmp_path, cluster={"port": 3333, "operator": "indexed_job"}).ok
    assert _compile(tmp_path, cluster={"port": 3333}).ok  # the default operator, jobset


def test_replicas_inside_the_autoscaling_range(tmp_path: Path) -> None:
    kube = {"replicas": 12, "autoscale": {"min": 2, "max": 10}}
    problems = _problems(_compile(tmp_path, serving={"kubernetes": kube}))
    assert "outside the autoscaling range" in problems["targets[1].kubernetes.replicas"]
    assert _compile(tmp_path, serving={"kubernetes": {"autoscale": {"min": 3, "max": 10}}}).ok  # replicas unset


def test_disruption_budget_must_allow_an_eviction(tmp_path: Path) -> None:
    problems = _problems(_compile(tmp_path, serving={"kubernetes": {"replicas": 3, "min_available": 3}}))
    assert "must be below the replica count" in problems["targets[1].kubernetes.min_available"]
    assert _compile(tmp_path, serving={"kubernetes": {"replicas": 3, "min_available": 2}}).ok


def test_requests_within_limits(tmp_path: Path) -> None:
    resources = {"requests": {"cpu": "1500m", "memory": "3Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
    problems = _problems(_compile(tmp_path, serving={"kubernetes": {"resources": resources}},
                                  cluster={"resources": resources}))
    assert "exceeds its limit" in problems["targets[1].kubernetes.resources.requests.cpu"]
    assert "exceeds its limit" in problems["targets[1].kubernetes.resources.requests.memory"]
    assert "exceeds its limit" in problems["targets[2].resources.requests.memory"]


def test_kserve_requests_within_limits_and_tolerations(tmp_path: Path) -> None:
    """A kserve predictor's resources and tolerations get the checks every workload gets (they were skipped)."""
    tree = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    tree["targets"].append({"kind": "kserve", "name": "kserve", "model_store": {"base_path": "s3://models/digits"},
                            "resources": {"requests": {"cpu": "3", "memory": "1Gi"},
                                          "limits": {"cpu": "2", "memory": "2Gi"}},
                            "tolerations": [{"key": "dedicated", "operator": "Exists", "value": "ml"}]})
    spec = tmp_path / "deploy.yaml"
    spec.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    problems = _problems(compile_spec(spec, environ={}))
    assert problems == {"targets[3].resources.requests.cpu": "the cpu request (3) exceeds its limit (2)",
                        "targets[3].tolerations[0].value": "a toleration with operator Exists takes no value"}


def test_quantities() -> None:
    assert quantity_value("500m") == 0.5
    assert quantity_value("2") == 2
    assert quantity_value("1Gi") == 2 ** 30
    assert quantity_value("1G") == 10 ** 9
    assert quantity_value("1536Mi") > quantity_value("1Gi")


def test_exists_toleration_takes_no_value(tmp_path: Path) -> None:
    tolerations = [{"key": "dedicated", "operator": "Exists", "value": "ml"}]
    problems = _problems(_compile(tmp_path, cluster={"tolerations": tolerations}))
    assert "takes no value" in problems["targets[2].tolerations[0].value"]


@pytest.mark.parametrize("mount", ["/workspace/../etc", "/", "/data/", "/a//b", "/tmp", "/tmp/data", "/dev"])
def test_mount_path(tmp_path: Path, mount: str) -> None:
    problems = _problems(_compile(tmp_path, cluster={"storage": {"mount_path": mount}}))
    assert "targets[2].storage.mount_path" in problems


def test_labels_are_lines(tmp_path: Path) -> None:
    tree = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    tree["data"]["labels"] = ["zero", "one", "one"] + [str(i) for i in range(3, 9)] + [" "]
    spec = tmp_path / "deploy.yaml"
    spec.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    problems = _problems(compile_spec(spec, environ={}))
    assert "duplicate label" in problems["data.labels[2]"]
    assert "must not be empty" in problems["data.labels[9]"]
