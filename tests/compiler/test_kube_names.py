"""Generated Kubernetes names stay within what the API server and the controllers accept.

The oracles (tests/oracles: Kubernetes' name rules and generateName, JobSet's webhook, the training
operator's Service names) say which names a cluster accepts; the specs here sit on either side of each
limit. A spec is accepted exactly when every object it renders, and every object a controller derives
from them (a JobSet's child Jobs and pods, a TFJob's Services, an Indexed Job's host names, the name the
API server makes of the workflow's ``generateName``), is valid — and then the rendered files are checked
object by object.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from oracles import kubernetes as kube_oracle
from tfspec.compiler.pipeline import CompileResult, compile_spec
from tfspec_testing import cluster_problems as problems
from tfspec_testing import rendered_objects, tfspec_command

TARGET = "cluster"
HASH = "0123abcd"  # the 8 hex digits of the pod-template hash in a training object's name

SPEC = """\
api_version: tfspec/v1
name: {name}
version: 1
data: {{source: {{kind: sklearn_digits}}, split: {{validation: 0.1, test: 0.2, seed: 7}}}}
model:
  kind: sequential
  input_shape: [64]
  layers: [{{type: dense, units: 10, activation: softmax}}]
training: {{optimizer: {{kind: adam, learning_rate: 0.001}}, loss: sparse_categorical_crossentropy, metrics: [accuracy],
           epochs: 1, batch_size: 32, distribution: {{kind: multi_worker_mirrored}}}}
targets:
  - kind: gpu_cluster
    name: {target}
    operator: {operator}
    workers: {workers}
    storage: {{storage_class: nfs}}
{workflow}{environments}"""
WORKFLOW = """workflow:
  image: registry.example.com/ml/train:1
  store: s3://ml-steps
  training_target: {target}
"""


def _write(folder: Path, name: str, operator: str = "jobset", workers: int = 4, workflow: bool = False,
           environments: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "deploy.yaml"
    path.write_text(SPEC.format(name=name, target=TARGET, operator=operator, workers=workers,
                                workflow=WORKFLOW.format(target=TARGET) if workflow else "",
                                environments=environments), "utf-8")
    return path


def _expected_objects(name: str, operator: str, workers: int, workflow: bool) -> list[dict[str, Any]]:
    """The objects a spec named ``name`` makes, from the documented naming (``<name>-<target>``, the
    training object ``<name>-<target>-<hash>``, created by the workflow with ``generateName``), before any
    is rendered: what the oracles judge to predict whether the spec must be accepted."""
    base = f"{name}-{TARGET}"
    labels = {"app.kubernetes.io/instance": base}
    objects: list[dict[str, Any]] = [
        {"kind": "PersistentVolumeClaim", "metadata": {"name": f"{base}-data", "labels": labels}}]
    names = [{"name": f"{base}-{HASH}"}] + ([{"generateName": f"{base}-{HASH}-"}] if workflow else [])
    for metadata in names:
        metadata = {**metadata, "labels": labels}
        if operator == "jobset":
            objects.append({"kind": "JobSet", "metadata": metadata, "spec": {"network": {}, "replicatedJobs": [
                {"name": "worker", "replicas": 1,
                 "template": {"spec": {"completionMode": "Indexed", "completions": workers}}}]}})
        elif operator == "tfjob":
            objects.append({"kind": "TFJob", "metadata": metadata,
                            "spec": {"tfReplicaSpecs": {"Worker": {"replicas": workers}}}})
        else:
            objects.append({"kind": "Job", "metadata": metadata, "spec": {
                "completionMode": "Indexed", "completions": workers,
                "template": {"spec": {"subdomain": f"{base}-workers", "containers": []}}}})
    if operator == "indexed_job":
        objects.append({"kind": "Service", "metadata": {"name": f"{base}-workers", "labels": labels}})
    return objects


def _compile(tmp_path: Path, name: str, operator: str, workers: int, workflow: bool) -> CompileResult:
    return compile_spec(_write(tmp_path / f"{operator}-{workers}-{workflow}-{len(name)}", name, operator, workers,
                               workflow), environ={})


def _longest_valid_name(operator: str, workers: int, workflow: bool) -> int:
    lengths = [n for n in range(1, 64)
               if not [p for d in _expected_objects("a" * n, operator, workers, workflow) for p in problems(d)]]
    assert lengths == list(range(1, lengths[-1] + 1))  # one limit: every shorter name is fine
    return lengths[-1]


@pytest.mark.parametrize("workflow", [False, True], ids=["base", "workflow"])
@pytest.mark.parametrize("workers", [4, 12])
@pytest.mark.parametrize("operator", ["jobset", "tfjob", "indexed_job"])
def test_specs_are_accepted_exactly_up_to_the_controllers_limits(tmp_path: Path, operator: str, workers: int,
                                                                   workflow: bool) -> None:
    longest = _longest_valid_name(operator, workers, workflow)
    fits = _compile(tmp_path, "a" * longest, operator, workers, workflow)
    assert fits.ok, [d.format() for d in fits.diagnostics]
    found = [p for d in rendered_objects(fits.files) for p in problems(d)]
    assert not found, found
    over = _compile(tmp_path, "a" * (longest + 1), operator, workers, workflow)
    assert not over.ok
    (diagnostic,) = over.diagnostics
    assert diagnostic.path == "targets[0].name" and diagnostic.line == 13, diagnostic.format()
    assert "characters long, more than" in diagnostic.message
    if workflow:  # the generateName's 5 characters are counted, and said
        assert "as the workflow creates it (generateName)" in diagnostic.message
        assert _longest_valid_name(operator, workers, False) > longest


def test_the_old_limits_let_names_through_that_the_controllers_reject() -> None:
    """What the previous rule accepted (pod names <= 63 without the workflow's generateName; a TFJob's
    Services counted as <job>-<index>): the oracles reject them, so the limits above are the real ones."""
    assert _longest_valid_name("jobset", 4, True) < _longest_valid_name("jobset", 4, False) == 29
    name = "a" * 44  # <job> is 61 characters: <job>-3 fits, the Service <job>-worker-3 does not
    assert [p for d in _expected_objects(name, "tfjob", 4, False) for p in problems(d)]


def test_a_spec_name_beginning_with_a_digit_is_refused_once_at_the_name(tmp_path: Path) -> None:
    for operator in ("jobset", "tfjob", "indexed_job"):
        expected = [p for d in _expected_objects("3digits", operator, 2, False) for p in problems(d)]
        assert any("DNS-1035" in p for p in expected), operator  # a Service (or the JobSet, the TFJob) name
        result = _compile(tmp_path, "3digits", operator, 2, False)
        assert [(d.path, d.line) for d in result.diagnostics] == [("name", 2)], operator
        assert "begin the spec name with a letter" in result.diagnostics[0].format()


ENVIRONMENTS = """environments:
  staging_eu: {{training: {{epochs: 2}}}}
  staging-eu: {{training: {{epochs: 2}}}}
  {long}: {{training: {{epochs: 2}}}}
"""
LONG_ENV = "e" + "x" * 29  # 30 characters


def _env_spec(tmp_path: Path, name: str, workflow: bool = True) -> Path:
    return _write(tmp_path, name, "jobset", 2, workflow, ENVIRONMENTS.format(long=LONG_ENV))


def _build(spec: Path, env: str, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tfspec_command(), "build", str(spec), "-e", env, "--out", str(out)],
                          capture_output=True, text=True, timeout=300)


def test_an_environment_with_an_underscore_is_refused_at_its_line_with_a_workflow(tmp_path: Path) -> None:
    spec = _env_spec(tmp_path, "digits")
    result = _build(spec, "staging_eu", tmp_path / "out")
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{spec}:22:3: environments.staging_eu: WorkflowTemplate name 'digits-staging_eu' "
                               "is not a valid DNS-1123 subdomain"), result.stderr
    assert "use lower-case letters, digits and '-'" in lines[0] and "Traceback" not in result.stderr
    assert not (tmp_path / "out").exists()
    # what the API server would have said about the objects the old build wrote
    assert not kube_oracle.is_dns1123_subdomain("digits-staging_eu")


def test_an_environment_that_makes_the_names_too_long_is_refused(tmp_path: Path) -> None:
    spec = _env_spec(tmp_path, "d" * 34)
    result = _build(spec, LONG_ENV, tmp_path / "out")
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"{spec}:24:3: environments.{LONG_ENV}: WorkflowTemplate name (the workflow-template label of its runs) " \
           f"'{'d' * 34}-{LONG_ENV}' would be 65 characters long, more than the 63 of a label value" in result.stderr
    assert not kube_oracle.is_label_value(f"{'d' * 34}-{LONG_ENV}")


def test_a_valid_environment_gives_valid_objects_and_no_workflow_needs_none(tmp_path: Path) -> None:
    spec = _env_spec(tmp_path / "ok", "digits")
    result = compile_spec(spec, env="staging-eu", environ={})
    assert result.ok, [d.format() for d in result.diagnostics]
    objects = rendered_objects(result.files)
    assert {d["kind"] for d in objects} >= {"WorkflowTemplate", "Workflow", "ConfigMap", "Secret", "JobSet"}
    assert [d["metadata"]["name"] for d in objects if d["kind"] == "WorkflowTemplate"] == ["digits-staging-eu"]
    found = [p for d in objects for p in problems(d)]
    assert not found, found
    # without a workflow no Kubernetes object carries the environment's name: '_' is fine there
    plain = compile_spec(_env_spec(tmp_path / "plain", "digits", workflow=False), env="staging_eu", environ={})
    assert plain.ok, [d.format() for d in plain.diagnostics]
    assert not [p for d in rendered_objects(plain.files) for p in problems(d)]
