"""Platform standards: base specs (extends:, the project file), provenance, CEL policies, and the caches."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from tfspec.compiler.bases import apply_standards
from tfspec.io.batch import build_folder
from tfspec.compiler.pipeline import compile_spec
from tfspec.compiler.project import find_project_file
from tfspec.spec.loader import load_yaml

BASE = """\
api_version: tfspec/v1
data:
  source: {kind: sklearn_digits}
  split: {validation: 0.1, test: 0.2, seed: 7}
model:
  kind: sequential
  input_shape: [64]
training:
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 3
targets:
  - kind: tf_serving
    name: serving
    kubernetes: {replicas: 2, autoscale: {min: 2, max: 4}}
registry: registry.example.com/ml
"""

SPEC = """\
api_version: tfspec/v1
{extends}name: {name}
version: 1
model:
  layers:
    - {{type: dense, units: 10, activation: softmax}}
"""

POLICIES = """\
policies:
  - name: serving-autoscales
    each: targets
    as: target
    when: target.kind == "tf_serving"
    rule: has(target.kubernetes) && has(target.kubernetes.autoscale)
    path: kubernetes
    message: every serving target needs kubernetes.autoscale
  - name: gpus-per-replica
    each: targets
    as: target
    when: target.kind == "tf_serving"
    rule: target.gpus <= 2
    path: gpus
    message: at most 2 GPUs per replica
  - name: one-version-label
    severity: warning
    rule: spec.targets.all(t, t.kind != "tf_serving" || size(t.version_labels) > 0)
    path: targets
    message: serving targets should label a version
"""


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), "utf-8")
    return path


def repo(tmp_path: Path) -> Path:
    """A repository root (``.git``) so the project-file search stops inside ``tmp_path``."""
    (tmp_path / ".git").mkdir()
    return tmp_path


def spec(folder: Path, name: str, extends: str | None = "../standards/base.yaml", extra: str = "") -> Path:
    line = f"extends: {extends}\n" if extends else ""
    return write(folder / "specs" / f"{name}.yaml", SPEC.format(extends=line, name=name) + extra)


def messages(result) -> list[str]:
    return [d.format() for d in result.diagnostics]


def test_a_partial_base_is_merged_under_the_spec(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root / "standards" / "base.yaml", BASE)
    path = spec(root, "a", extra="targets:\n  - {name: serving, kubernetes: {replicas: 3}}\n"
                                 "  - {kind: tflite, name: phone}\n")
    result = compile_spec(path)
    assert result.ok, messages(result)
    serving, phone = result.resolved.spec.targets
    assert serving.kubernetes.replicas == 3 and serving.kubernetes.autoscale.max == 4  # merged by name
    assert phone.kind == "tflite" and result.resolved.spec.training.epochs == 3
    assert str(root / "standards" / "base.yaml") in result.resolved.sources
    # the training image's copy of the spec is self-contained: no `extends`, the base's values in it
    assert "extends" not in json.dumps(result.resolved.document.tree)


def test_a_chain_of_bases_applies_in_order_and_positions_name_their_file(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root / "standards" / "org.yaml", BASE)
    write(root / "standards" / "team.yaml", "extends: org.yaml\ntraining:\n  epochs: 0\n")
    path = spec(root, "a", extends="[../standards/team.yaml]")
    (diagnostic,) = compile_spec(path).diagnostics
    assert diagnostic.file.endswith("standards/team.yaml") and (diagnostic.line, diagnostic.column) == (3, 3)
    assert diagnostic.path == "training.epochs"


def test_missing_base_and_cycle_are_errors_at_the_extends_line(tmp_path: Path) -> None:
    root = repo(tmp_path)
    missing = compile_spec(spec(root, "a", extends="../standards/nope.yaml"))
    (problem,) = missing.diagnostics
    assert (problem.file, problem.line, problem.column, problem.path) == (str(root / "specs" / "a.yaml"), 2, 1, "extends")
    assert "base spec" in problem.message and "nope.yaml not found" in problem.message
    write(root / "standards" / "one.yaml", "extends: [two.yaml]\n")
    write(root / "standards" / "two.yaml", "training: {epochs: 2}\nextends: one.yaml\n")
    cycle = compile_spec(spec(root, "b", extends="../standards/one.yaml"))
    (problem,) = cycle.diagnostics
    assert problem.file.endswith("standards/two.yaml") and (problem.line, problem.column) == (2, 1)
    assert problem.message == "base spec cycle: one.yaml -> two.yaml -> one.yaml"


def test_project_file_names_default_bases_and_search_stops_at_the_repository_root(tmp_path: Path) -> None:
    write(tmp_path / "tfspec.yaml", "bases: [nothing.yaml]\n")  # above the repository: never used
    root = tmp_path / "repo"
    (root / ".git").mkdir(parents=True)
    write(root / "standards" / "base.yaml", BASE)
    path = spec(root, "a", extends=None)
    assert find_project_file(path) is None
    assert not compile_spec(path).ok  # no base: data, targets missing
    write(root / "tfspec.yaml", "bases: [standards/base.yaml]\n")
    assert find_project_file(path) == str(root / "tfspec.yaml")
    result = compile_spec(path)
    assert result.ok, messages(result)
    assert str(root / "tfspec.yaml") in result.resolved.sources
    write(root / "tfspec.yaml", "bases: [standards/base.yaml]\npolicy: []\n")
    (problem,) = compile_spec(path).diagnostics
    assert problem.file.endswith("tfspec.yaml") and problem.line == 2 and "did you mean 'policies'" in problem.format()


def test_policy_errors_point_at_the_value_judged_in_the_file_that_set_it(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root / "standards" / "base.yaml", BASE.replace(", autoscale: {min: 2, max: 4}", ""))
    write(root / "standards" / "policies.yaml", POLICIES)
    write(root / "tfspec.yaml", "policies: [standards/policies.yaml]\n")
    result = compile_spec(spec(root, "a", extra="targets:\n  - {name: serving, gpus: 4}\n"))
    found = sorted((Path(d.file).name, d.line, d.column, d.path, d.message) for d in result.diagnostics)
    assert found == [
        ("a.yaml", 9, 21, "targets[0].gpus", "policy gpus-per-replica: at most 2 GPUs per replica"),
        ("base.yaml", 15, 5, "targets[0].kubernetes",
         "policy serving-autoscales: every serving target needs kubernetes.autoscale"),
    ]
    hints = sorted(d.hint for d in result.diagnostics)
    assert hints == [f"rule at {root}/standards/policies.yaml:2", f"rule at {root}/standards/policies.yaml:9"]


def test_policy_warnings_do_not_fail_and_environments_are_judged(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root / "standards" / "base.yaml", BASE)
    write(root / "standards" / "policies.yaml", POLICIES + """\
  - name: prod-replicas
    each: targets
    as: target
    when: env == "prod" && target.kind == "tf_serving"
    rule: target.kubernetes.autoscale.min >= 3
    path: kubernetes.autoscale.min
    message: prod serves from at least 3 replicas
""")
    write(root / "tfspec.yaml", "bases: [standards/base.yaml]\npolicies: [standards/policies.yaml]\n")
    path = spec(root, "a", extends=None)
    result = compile_spec(path)
    assert result.ok and [w.message for w in result.warnings] == [
        "policy one-version-label (warning): serving targets should label a version"]
    path.write_text(path.read_text() + "environments:\n  prod: {targets: [{name: serving, kubernetes: {autoscale: {min: 2}}}]}\n")
    (problem,) = compile_spec(path).diagnostics
    assert problem.message == "in environment 'prod': policy prod-replicas: prod serves from at least 3 replicas"
    assert problem.file == str(path) and problem.line == 8
    assert compile_spec(path, env="prod").diagnostics[0].message.startswith("policy prod-replicas")


def test_each_environment_overlay_is_resolved_once_for_validation_and_the_policies(tmp_path: Path,
                                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tfspec.compiler import pipeline

    root = repo(tmp_path)
    write(root / "standards" / "base.yaml", BASE)
    write(root / "standards" / "policies.yaml", POLICIES)
    write(root / "tfspec.yaml", "bases: [standards/base.yaml]\npolicies: [standards/policies.yaml]\n")
    path = spec(root, "a", extends=None, extra="environments:\n  prod: {targets: [{name: serving, kubernetes: {replicas: 3}}]}\n"
                                               "  dev: {training: {epochs: 1}}\n")
    envs: list[str | None] = []
    validate = pipeline.validate
    monkeypatch.setattr(pipeline, "validate", lambda resolved: envs.append(resolved.environment) or validate(resolved))
    result = compile_spec(path)
    assert result.ok and sorted(w.message for w in result.warnings) == [
        f"{where}policy one-version-label (warning): serving targets should label a version"
        for where in ("in environment 'dev': ", "in environment 'prod': ", "")]
    assert sorted(envs, key=str) == [None, "dev", "prod"]  # the spec, and each overlay once (not again to judge it)


@pytest.mark.parametrize(("rule", "expected"), [
    ("target.gpus <=", "the CEL expression does not compile"),
    ("target.nope == 1", "the rule could not be evaluated for targets[0]"),
    ("target.gpus", "the expression gave"),
])
def test_a_broken_policy_is_an_error_at_its_own_line(tmp_path: Path, rule: str, expected: str) -> None:
    root = repo(tmp_path)
    write(root / "standards" / "base.yaml", BASE)
    write(root / "p.yaml", f"policies:\n  - name: broken\n    each: targets\n    as: target\n    rule: {rule}\n"
                           "    message: m\n")
    write(root / "tfspec.yaml", "bases: [standards/base.yaml]\npolicies: [p.yaml]\n")
    (problem,) = compile_spec(spec(root, "a", extends=None)).diagnostics
    assert problem.file.endswith("p.yaml") and problem.line == 5 and problem.path == "policies[0].rule"
    assert problem.message.startswith("policy broken: " + expected)


def test_changing_a_base_rebuilds_exactly_the_specs_that_use_it(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root / "standards" / "base.yaml", BASE)
    write(root / "standards" / "other.yaml", BASE)
    spec(root, "a")
    spec(root, "b")
    spec(root, "c", extends="../standards/other.yaml")
    out = root / "rendered"
    first = build_folder(root / "specs", out, jobs=1)
    assert [o.status for o in first.outcomes] == ["built", "built", "built"]
    assert [o.status for o in build_folder(root / "specs", out, jobs=1).outcomes] == ["cached"] * 3
    base = root / "standards" / "base.yaml"
    base.write_text(base.read_text().replace("epochs: 3", "epochs: 4"))
    again = build_folder(root / "specs", out, jobs=1)
    assert {Path(o.path).name: o.status for o in again.outcomes} == {"a.yaml": "built", "b.yaml": "built",
                                                                      "c.yaml": "cached"}
    assert '"epochs": 4' in (out / "a" / "plan.json").read_text()
    # --check compiles everything: a stale base shows as a stale output
    base.write_text(base.read_text().replace("epochs: 4", "epochs: 5"))
    check = build_folder(root / "specs", out, check=True, jobs=1)
    assert {Path(o.path).name: o.status for o in check.outcomes} == {"a.yaml": "stale", "b.yaml": "stale",
                                                                      "c.yaml": "current"}


def test_project_and_policy_files_are_inputs_of_the_cache(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root / "standards" / "base.yaml", BASE)
    write(root / "standards" / "policies.yaml", POLICIES)
    write(root / "tfspec.yaml", "bases: [standards/base.yaml]\npolicies: [standards/policies.yaml]\n")
    spec(root, "a", extends=None)
    out = root / "rendered"
    assert build_folder(root / "specs", out, jobs=1).exit_code == 0
    policies = root / "standards" / "policies.yaml"
    policies.write_text(policies.read_text().replace("target.gpus <= 2", "target.gpus <= -1"))
    again = build_folder(root / "specs", out, jobs=1)
    assert again.exit_code == 2 and "policy gpus-per-replica" in again.diagnostics[0].message


def test_apply_standards_records_layers_in_merge_order(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root / "standards" / "org.yaml", BASE)
    write(root / "standards" / "team.yaml", "extends: org.yaml\ntraining: {epochs: 5}\n")
    path = spec(root, "a", extends="../standards/team.yaml")
    standards = apply_standards(load_yaml(path))
    assert [Path(layer.file).name for layer in standards.layers] == ["org.yaml", "team.yaml", "a.yaml"]
    assert standards.document.tree["training"]["epochs"] == 5
    assert standards.document.file_of(("training", "epochs")).endswith("team.yaml")
    assert standards.document.file_of(("name",)) == str(path)


def test_watch_rebuilds_the_specs_of_a_saved_base(tmp_path: Path) -> None:
    from tfspec.io.watch import SpecWatcher

    root = repo(tmp_path)
    write(root / "standards" / "base.yaml", BASE)
    write(root / "standards" / "other.yaml", BASE)
    spec(root, "a")
    spec(root, "c", extends="../standards/other.yaml")
    lines: list[str] = []
    watcher = SpecWatcher(root / "specs", root / "rendered", None, echo=lines.append, echo_error=lines.append, jobs=1)
    watcher._initial_build()
    lines.clear()
    base = root / "standards" / "base.yaml"
    base.write_text(base.read_text().replace("epochs: 3", "epochs: 6"))
    watcher.rebuild([(str(base), False)])
    assert len(lines) == 1 and lines[0].startswith(f"{root / 'specs' / 'a.yaml'} -> ") and "plan.json" in lines[0]
    assert '"epochs": 6' in (root / "rendered" / "a" / "plan.json").read_text()
    base.write_text(base.read_text().replace("epochs: 6", "epochs: 0"))  # a broken base keeps the last good output
    watcher.rebuild([(str(base), False)])
    assert any("standards/base.yaml:11:3: training.epochs" in line for line in lines)
    assert '"epochs": 6' in (root / "rendered" / "a" / "plan.json").read_text()


def test_explain_names_the_file_that_set_a_value_and_what_it_overrode(tmp_path: Path) -> None:
    from tfspec.compiler.explain import explain

    root = repo(tmp_path)
    write(root / "standards" / "base.yaml", BASE)
    path = spec(root, "a", extra="targets:\n  - {name: serving, kubernetes: {replicas: 3}}\n"
                                 "environments:\n  prod: {targets: [{name: serving, kubernetes: {replicas: 4}}]}\n")
    explained = explain(str(path), "targets.serving.kubernetes.replicas", env="prod")
    assert explained.value == 4 and explained.path == "targets[0].kubernetes.replicas"
    assert (explained.set_by.file, explained.set_by.line, explained.set_by.layer) == (str(path), 11, "environment prod")
    assert [(Path(s.file).name, s.line, s.value, s.layer) for s in explained.overridden] == [
        ("a.yaml", 9, 3, "spec"), ("base.yaml", 15, 2, "base")]
    epochs = explain(str(path), "training.epochs")
    assert epochs.set_by.file.endswith("standards/base.yaml") and epochs.overridden == () and not epochs.default
    default = explain(str(path), "targets[0].serving_version")
    assert default.default and default.set_by is None and default.value
    from tfspec.base.errors import SpecError
    with pytest.raises(SpecError, match="no item named 'nope'"):
        explain(str(path), "targets.nope.gpus")


def test_a_file_position_survives_pickling_for_worker_processes() -> None:
    import pickle

    from tfspec.spec.loader import FilePosition

    position = pickle.loads(pickle.dumps(FilePosition(3, 4, "standards/base.yaml")))
    assert position == (3, 4) and position.file == "standards/base.yaml"


def test_explain_cli_prints_the_layers_and_exits_2_on_an_unknown_key(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from tfspec.cli import cli

    root = repo(tmp_path)
    write(root / "standards" / "base.yaml", BASE)
    spec(root, "a", extra="training: {epochs: 7}\n")
    monkeypatch.chdir(root)
    result = CliRunner().invoke(cli, ["explain", "specs/a.yaml", "training.epochs"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["training.epochs = 7", "  set by    specs/a.yaml:8:12 (spec): 7",
                                          "  overrides standards/base.yaml:11:3 (base): 3"]
    missing = CliRunner().invoke(cli, ["explain", "specs/a.yaml", "training.nope"])
    assert missing.exit_code == 2 and "training.nope: no such key" in missing.output


def test_a_project_file_created_above_cached_specs_rebuilds_them(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root / "standards" / "base.yaml", BASE)
    spec(root, "a")
    out = root / "rendered"
    assert [o.status for o in build_folder(root / "specs", out, jobs=1).outcomes] == ["built"]
    write(root / "standards" / "policies.yaml", POLICIES.replace("target.gpus <= 2", "target.gpus <= -1"))
    write(root / "tfspec.yaml", "policies: [standards/policies.yaml]\n")
    again = build_folder(root / "specs", out, jobs=1)
    assert again.exit_code == 2 and "policy gpus-per-replica" in again.diagnostics[0].message
    (root / "tfspec.yaml").unlink()
    assert [o.status for o in build_folder(root / "specs", out, jobs=1).outcomes] == ["built"]


def test_a_variable_read_by_a_base_is_set_in_folder_builds_and_keys_the_cache(tmp_path: Path) -> None:
    root = repo(tmp_path)
    write(root / "standards" / "base.yaml", BASE.replace("max: 4", "max: '${SERVING_REPLICAS}'"))
    spec(root, "a")
    out = root / "rendered"
    first = build_folder(root / "specs", out, jobs=1, environ={"SERVING_REPLICAS": "3"})
    assert [o.status for o in first.outcomes] == ["built"], [d.format() for d in first.diagnostics]
    assert "maxReplicas: 3" in (out / "a" / "serving" / "kubernetes" / "horizontalpodautoscaler.yaml").read_text()
    assert [o.status for o in build_folder(root / "specs", out, jobs=1,
                                           environ={"SERVING_REPLICAS": "3"}).outcomes] == ["cached"]
    changed = build_folder(root / "specs", out, jobs=1, environ={"SERVING_REPLICAS": "4"})
    assert [o.status for o in changed.outcomes] == ["built"]
    assert "maxReplicas: 4" in (out / "a" / "serving" / "kubernetes" / "horizontalpodautoscaler.yaml").read_text()
