"""Errors inside unions read like the spec: no pydantic branch names, no noise from the scalar branch."""

from __future__ import annotations

from pathlib import Path

from tfspec.compiler.pipeline import compile_spec

SPEC = Path(__file__).parents[2] / "examples" / "digits" / "deploy.yaml"
SCHEDULE = "learning_rate: {schedule: exponential_decay, initial: 1.0e-3, decay_steps: 500, decay_rate: 0.9}"


def _problems(old: str, new: str) -> list[str]:
    text = SPEC.read_text()
    assert text.count(old) == 1
    result = compile_spec("deploy.yaml", text=text.replace(old, new))
    return [d.format() for d in result.diagnostics]


def test_unknown_tag_keeps_its_quotes() -> None:
    assert _problems("{kind: int8, representative_samples: 200}", "{kind: int4}") == [
        "deploy.yaml:33:5: targets[0].quantization: unknown kind 'int4' (hint: did you mean 'int8'? expected one of "
        "'none', 'dynamic', 'float16', 'int8', 'int16x8')"]


def test_unknown_layer_type_names_the_type_key() -> None:
    (problem,) = _problems("{type: dropout, rate: 0.2}", "{type: dropout2d, rate: 0.2}")
    assert problem.startswith("deploy.yaml:17:7: model.layers[1]: unknown type 'dropout2d' (hint: did you mean 'dropout'?")


def test_schedule_typo_is_one_clean_problem() -> None:
    assert _problems(SCHEDULE, SCHEDULE.replace("exponential_decay", "expo")) == [
        "deploy.yaml:20:27: training.optimizer.learning_rate: unknown schedule 'expo' (hint: expected one of "
        "'exponential_decay', 'cosine_decay', 'piecewise_constant', 'reduce_on_plateau')"]


def test_misspelt_key_inside_a_schedule_is_not_reported_as_a_bad_number() -> None:
    problems = _problems(SCHEDULE, SCHEDULE.replace("decay_steps", "decay_step"))
    assert problems == [
        "deploy.yaml:20:27: training.optimizer.learning_rate.decay_steps: required key is missing",
        "deploy.yaml:20:89: training.optimizer.learning_rate.decay_step: unknown key 'decay_step' "
        "(hint: did you mean 'decay_steps'?)",
    ]
