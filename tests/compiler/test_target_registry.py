"""A target kind is one module: a toy kind registered here is rendered, validated, planned, listed by the
fleet, labelled in the report and named by a search objective; every built-in kind goes through the same
consumers; and a kind nobody registered fails loudly instead of rendering nothing."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Literal

import pytest

import tfspec
from tfspec.compiler.plan import build_plan
from tfspec.compiler.render import render_template
from tfspec.compiler.resolve import ResolvedSpec
from tfspec.compiler.targets import (MEASURED_METRICS, TARGET_KINDS, ImageSource, PlanContext, TargetKind,
                                     UnknownTargetKind, Workload, register, render_targets)
from tfspec.compiler.validate import collect_diagnostics
from tfspec.plan import ExportParams
from tfspec.spec.base import StrictModel
from tfspec.base.errors import Diagnostic
from tfspec.spec.targets import ResourceAmounts, Resources
from tfspec_testing import EXAMPLE


class ToyTarget(StrictModel):
    """What the toy kind's spec model would be in spec/targets.py."""

    kind: Literal["toy"] = "toy"
    name: str = "toy"
    greeting: str = "hello"


def _render(resolved: ResolvedSpec, target: ToyTarget, served: str | None = None) -> dict[str, str]:
    return {f"{target.name}/greeting.txt": render_template("toy.txt.j2", greeting=target.greeting,
                                                           name=resolved.spec.name)}


def _shouting(resolved: ResolvedSpec, index: int, target: ToyTarget) -> list[Diagnostic]:
    if target.greeting.isupper():
        return [resolved.diagnostic(("targets", index, "greeting"), "do not shout")]
    return []


def _plan(context: PlanContext, resolved: ResolvedSpec, target: ToyTarget) -> None:
    # a second export of the final model, as this toy kind's own runtime step
    context.add(f"{target.name}.export", "export", ExportParams(
        name=resolved.spec.name, version=resolved.spec.version, input_name=resolved.input_name,
        output_name=resolved.output_name, input_shape=list(resolved.input_shape), input_dtype=resolved.input_dtype,
        signature="toy", as_is=False, inputs=None, raw_input_shape=None), [context.final_model, context.data],
        ["saved_model"], target.name)


@pytest.fixture
def toy_templates(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """The toy kind's template folder (after the package's, in the one environment) and a copy of the
    registry to register it in, so other tests never see the toy kind."""
    import jinja2

    from tfspec.compiler import render

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "toy.txt.j2").write_text("{{ greeting }} from {{ name }}\n", encoding="utf-8")
    (templates / "toy.Dockerfile.j2").write_text(
        'LABEL org.opencontainers.image.title="registry.example.com/ml/{{ name }}-toy" '
        'org.opencontainers.image.version="3-0123456789ab"\n', encoding="utf-8")
    environment = render.environment()
    monkeypatch.setattr(environment, "loader", jinja2.ChoiceLoader([environment.loader,
                                                                   jinja2.FileSystemLoader(str(templates))]))
    monkeypatch.setattr("tfspec.compiler.targets.registry.TARGET_KINDS", dict(TARGET_KINDS))
    return templates


@pytest.fixture
def toy_kind(toy_templates: Path) -> TargetKind:
    return register(TargetKind("toy", render=_render, rules=(_shouting,), plan_steps=_plan))


def _with_toy(greeting: str) -> ResolvedSpec:
    resolved = tfspec.compile(EXAMPLE).resolved
    assert resolved is not None
    spec = resolved.spec.model_copy(update={"targets": [*resolved.spec.targets, ToyTarget(greeting=greeting)]})
    return dataclasses.replace(resolved, spec=spec)


def test_a_toy_target_kind_is_rendered_validated_and_planned(toy_kind: TargetKind) -> None:
    resolved = _with_toy("hello")
    files = render_targets(resolved)
    assert files["toy"] == {"toy/greeting.txt": "hello from digits\n"}
    assert collect_diagnostics(resolved) == []
    assert [d.message for d in collect_diagnostics(_with_toy("HELLO"))] == ["do not shout"]
    plan = build_plan(resolved)
    assert [(s.id, s.kind) for s in plan.steps if s.target == "toy"] == [("toy.render", "render"),
                                                                          ("toy.export", "export")]
    assert plan.step("toy.export").inputs == ("compress.1.quantization_aware", "data")


def test_a_kind_no_module_registered_fails_loudly() -> None:
    resolved = _with_toy("hello")
    with pytest.raises(UnknownTargetKind, match=r"no module registered the target kind 'toy'"):
        render_targets(resolved)
    with pytest.raises(UnknownTargetKind):
        build_plan(resolved)


def test_every_compression_kind_has_one_technique_module_matching_the_step_table() -> None:
    import typing

    from tfspec.compiler.techniques import TECHNIQUES, technique
    from tfspec.plan import STAGE_STEP_KIND
    from tfspec.spec.compression import CompressionStage

    members = typing.get_args(typing.get_args(CompressionStage)[0])
    kinds = {typing.get_args(m.model_fields["kind"].annotation)[0] for m in members}
    assert set(TECHNIQUES) == kinds == set(STAGE_STEP_KIND)
    assert {k: t.step_kind for k, t in TECHNIQUES.items()} == STAGE_STEP_KIND
    with pytest.raises(LookupError, match=r"no module registered the compression technique 'sparsify'"):
        technique("sparsify")


def _greet_by_name(spec: Any, target: ToyTarget) -> ToyTarget:
    return target if target.greeting else target.model_copy(update={"greeting": f"hello {spec.name}"})


def test_a_toy_kind_fills_its_own_defaults_when_the_spec_is_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    from tfspec.compiler.resolve import with_defaults
    from tfspec.compiler.targets import target_defaults

    monkeypatch.setattr("tfspec.compiler.targets.registry.TARGET_KINDS", dict(TARGET_KINDS))
    register(TargetKind("toy", render=_render, defaults=_greet_by_name))
    resolved = tfspec.compile(EXAMPLE).resolved
    assert resolved is not None
    spec = resolved.spec.model_copy(update={"targets": [*resolved.spec.targets, ToyTarget(greeting="")]})
    filled = with_defaults(spec, resolved.document, None, target_defaults=target_defaults).spec
    assert filled.targets[-1].greeting == "hello digits"
    # the built-in kinds' defaults come from their own modules through the same registry
    assert [t.model_dump() for t in filled.targets[:-1]] == [t.model_dump() for t in resolved.spec.targets]


# --- every kind through every consumer: fleet, report, search, validate ---------------------------------

def test_every_spec_target_type_has_a_registered_kind() -> None:
    import typing

    from tfspec.spec.targets import Target

    members = typing.get_args(typing.get_args(Target)[0])
    kinds = {typing.get_args(m.model_fields["kind"].annotation)[0] for m in members}
    assert kinds == set(TARGET_KINDS)


# One target of each registered kind, as small as the kind allows (a new kind adds its line here, and the
# test below fails until it does).
KIND_EXAMPLES: dict[str, dict[str, Any]] = {
    "tflite": {"kind": "tflite", "name": "only"},
    "tf_serving": {"kind": "tf_serving", "name": "only", "kubernetes": {"autoscale": {"min": 2, "max": 10}}},
    "gpu_cluster": {"kind": "gpu_cluster", "name": "only", "workers": 1, "storage": {"storage_class": "nfs"}},
    "kserve": {"kind": "kserve", "name": "only", "model_store": {"base_path": "s3://models/digits"}},
}


def _example_with(tmp_path: Path, target: dict[str, Any]) -> Path:
    import yaml

    tree = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    tree["targets"] = [target]
    tree["registry"] = "registry.example.com/ml"
    tree.pop("environments", None)  # its overlay names the example's targets
    tree.pop("compression", None)  # its quantization_aware stage needs an int8 tflite target
    tree["training"].pop("distribution", None)  # multi_worker_mirrored needs the example's gpu_cluster target
    folder = tmp_path / "specs"
    folder.mkdir(exist_ok=True)
    path = folder / "deploy.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return path


def _verified(artifact: str) -> dict[str, Any]:
    """What a verify step returns, as report.build_report reads it."""
    return {"artifact": artifact, "baseline": {"metric": "accuracy", "value": 0.97, "size_bytes": 1000,
                                               "latency_ms": {"p50": 0.1, "p95": 0.2}},
            "metrics": {"accuracy": 0.96}, "gates": [], "passed": True}


def test_every_registered_kind_has_an_example() -> None:
    assert set(KIND_EXAMPLES) == set(TARGET_KINDS)


@pytest.mark.parametrize("kind", sorted(KIND_EXAMPLES))
def test_fleet_report_search_and_validate_accept_every_kind(kind: str, tmp_path: Path) -> None:
    import copy

    import yaml

    from tfspec.compiler.pipeline import compile_spec
    from tfspec.compiler.search import check_objective
    from tfspec.compiler.targets import target_workload
    from tfspec.io.fleet import collect_fleet
    from tfspec.runtime.report import build_report
    from tfspec.spec.search import Search

    spec = _example_with(tmp_path, KIND_EXAMPLES[kind])
    result = compile_spec(spec, environ={})
    assert result.ok, [d.format() for d in result.diagnostics]
    assert result.resolved is not None and result.plan is not None
    target = result.resolved.spec.targets[0]

    # fleet: a row for the target, whatever its kind (a kserve target crashed `tfspec fleet`)
    fleet = collect_fleet(spec.parent)
    (row,) = fleet.rows
    assert row.problems == () and [t.kind for t in row.targets] == [kind]
    assert row.targets[0].image not in ("", None)

    # report: the target's row says its kind, read from the plan (kserve was labelled tf_serving)
    outputs = {s.id: _verified(s.params.artifact) for s in result.plan.steps if s.kind == "verify"}
    report = build_report(result.plan, [], outputs, {})
    assert {name: t["kind"] for name, t in report["targets"].items()} == ({"only": kind} if outputs else {})

    # search: an objective may name the target exactly when its kind measures something (kserve was refused)
    search = Search.model_validate({"parameters": [{"path": "training.epochs", "kind": "int", "low": 1, "high": 2}],
                                    "objective": {"kind": "minimize", "target": "only", "metric": "size_kb"}})
    problems = check_objective(result.resolved.document, search, list(result.resolved.spec.targets))
    assert (problems == []) == bool(TARGET_KINDS[kind].metrics), problems
    assert bool(outputs) == bool(TARGET_KINDS[kind].metrics)  # what is measured is what the plan verifies

    # validate: a request above its limit is refused for every kind that runs pods (kserve's was not)
    workload = target_workload(target)
    if workload is None:
        return
    tree = yaml.safe_load(spec.read_text("utf-8"))
    section = tree["targets"][0]
    for key in workload.key:
        section = section.setdefault(key, {})
    section["resources"] = {"requests": {"cpu": "3", "memory": "1Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    spec.write_text(yaml.safe_dump(copy.deepcopy(tree), sort_keys=False), encoding="utf-8")
    refused = compile_spec(spec, environ={})
    at = ".".join(["targets[0]", *workload.key, "resources", "requests", "cpu"])
    assert [(d.path, d.message) for d in refused.diagnostics] == [
        (at, "the cpu request (3) exceeds its limit (2)")]
    assert refused.diagnostics[0].line > 1


def _toy_with_pods(resolved: ResolvedSpec, target: ToyTarget, served: str | None = None) -> dict[str, str]:
    files = _render(resolved, target, served)
    files[f"{target.name}/Dockerfile"] = render_template("toy.Dockerfile.j2", name=resolved.spec.name)
    return files


def _toy_plan_with_verify(context: PlanContext, resolved: ResolvedSpec, target: ToyTarget) -> None:
    from tfspec.plan import GATE_NAMES, GatesParams, SavedModelVerifyParams

    context.add(f"{target.name}.verify", "verify", SavedModelVerifyParams(
        artifact="saved_model", gates=GatesParams(**dict.fromkeys(GATE_NAMES)), metric=context.metric,
        input_name=resolved.input_name, output_name=resolved.output_name, signature="serving_default",
        raw_inputs=False), [context.export, context.evaluate, context.data], ["verify.json"], target.name)


class ToyWorkloadTarget(ToyTarget):
    """The toy kind's spec model, with pods: resources and GPUs."""

    gpus: int = 1
    cpu_request: str = "1"


def _toy_workload(target: ToyWorkloadTarget) -> Workload:
    return Workload((), Resources(requests=ResourceAmounts(cpu=target.cpu_request, memory="1Gi")), (),
                    target.gpus, 1, 3)


def test_a_toy_kind_goes_through_fleet_report_search_and_validate(toy_templates: Path) -> None:
    """The toy kind with everything a serving kind has: pods, an image, measured metrics."""
    from tfspec.compiler.search import check_objective
    from tfspec.io.fleet import fleet_target
    from tfspec.runtime.report import build_report
    from tfspec.spec.search import Search

    register(TargetKind("toy", render=_toy_with_pods, rules=(_shouting,), plan_steps=_toy_plan_with_verify,
                        metrics=MEASURED_METRICS, workload=_toy_workload,
                        image=lambda target: ImageSource(("image",), None)))
    resolved = tfspec.compile(EXAMPLE).resolved
    assert resolved is not None
    toy = ToyWorkloadTarget()
    resolved = dataclasses.replace(resolved, spec=resolved.spec.model_copy(
        update={"targets": [*resolved.spec.targets, toy]}))

    files = {path: text for by_target in render_targets(resolved).values() for path, text in by_target.items()}
    row = fleet_target(resolved, toy, None, files)
    assert (row.kind, row.image, row.gpus) == ("toy", "registry.example.com/ml/digits-toy:3-0123456789ab",
                                               "1/replica × 1–3")

    plan = build_plan(resolved)
    outputs = {s.id: _verified("saved_model") for s in plan.steps if s.kind == "verify"}
    assert build_report(plan, [], outputs, {})["targets"]["toy"]["kind"] == "toy"

    search = Search.model_validate({"parameters": [{"path": "training.epochs", "kind": "int", "low": 1, "high": 2}],
                                    "objective": {"kind": "pareto", "target": "toy"}})
    assert check_objective(resolved.document, search, list(resolved.spec.targets)) == []

    assert collect_diagnostics(resolved) == []
    greedy = dataclasses.replace(resolved, spec=resolved.spec.model_copy(
        update={"targets": [*resolved.spec.targets[:-1], ToyWorkloadTarget(cpu_request="4")]}))
    assert [(d.path, d.message) for d in collect_diagnostics(greedy)] == [
        ("targets[3].resources.requests.cpu", "the cpu request (4) exceeds its limit (2)")]
