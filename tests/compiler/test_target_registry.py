"""A target kind is one module: a toy kind registered here is rendered, validated and planned, and a kind
nobody registered fails loudly instead of rendering nothing."""

from __future__ import annotations

import dataclasses
from typing import Any, Literal

import pytest

import tfspec
from tfspec.compiler.plan import build_plan
from tfspec.compiler.render import render_template
from tfspec.compiler.resolve import ResolvedSpec
from tfspec.compiler.targets import (TARGET_KINDS, PlanContext, TargetKind, UnknownTargetKind, register,
                                     render_targets)
from tfspec.compiler.validate import collect_diagnostics
from tfspec.plan import ExportParams
from tfspec.spec.base import StrictModel
from tfspec.spec.errors import Diagnostic
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
def toy_kind(monkeypatch: pytest.MonkeyPatch, tmp_path) -> TargetKind:
    import jinja2

    from tfspec.compiler import render

    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "toy.txt.j2").write_text("{{ greeting }} from {{ name }}\n", encoding="utf-8")
    # the one environment, with the test's template folder after the package's
    environment = render.environment()
    monkeypatch.setattr(environment, "loader", jinja2.ChoiceLoader([environment.loader,
                                                                   jinja2.FileSystemLoader(str(templates))]))
    # registered in a copy of the registry, so other tests never see the toy kind
    monkeypatch.setattr("tfspec.compiler.targets.registry.TARGET_KINDS", dict(TARGET_KINDS))
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
