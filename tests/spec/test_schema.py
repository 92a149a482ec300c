"""The JSON Schema: draft 2020-12, a description on every field, and it accepts the example."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import jsonschema
import yaml

from tfspec_testing import EXAMPLE, tfspec_command
from jsonschema.exceptions import best_match

from tfspec.spec.schema import editor_json_schema, spec_json_schema


def _properties(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    out = []
    for name, definition in {"Spec": schema, **schema.get("$defs", {})}.items():
        for field, prop in definition.get("properties", {}).items():
            out.append((name, field, prop))
    return out


def test_schema_is_2020_12_and_every_field_is_described() -> None:
    schema = spec_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)
    properties = _properties(schema)
    assert len(properties) > 150
    undocumented = [f"{model}.{field}" for model, field, prop in properties if not prop.get("description")]
    assert undocumented == []


def test_schema_accepts_the_example_and_rejects_a_typo() -> None:
    validator = jsonschema.Draft202012Validator(spec_json_schema())
    tree = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert list(validator.iter_errors(tree)) == []
    tree["training"]["epocs"] = 3
    assert any("epocs" in error.message for error in validator.iter_errors(tree))


def test_cli_schema_prints_the_editor_schema() -> None:
    proc = subprocess.run([*tfspec_command(), "schema"], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == editor_json_schema()


def _editor_errors(tree: dict[str, Any]) -> list[Any]:
    validator = jsonschema.Draft202012Validator(editor_json_schema())
    return list(validator.iter_errors(tree))


def test_editor_schema_is_valid_and_accepts_the_example() -> None:
    jsonschema.Draft202012Validator.check_schema(editor_json_schema())
    assert _editor_errors(yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))) == []


def test_a_typo_inside_one_layer_is_one_error_at_that_layer() -> None:
    # With pydantic's oneOf, this was one error at `model` with a dozen sub-errors (one per layer type).
    tree = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    tree["model"]["layers"][0]["unitz"] = 3
    [error] = _editor_errors(tree)
    assert list(error.absolute_path) == ["model", "layers", 0] and "'unitz'" in error.message
    assert best_match(_editor_errors(tree)).message == error.message


def test_an_unknown_tag_is_reported_at_the_tag() -> None:
    tree = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    tree["targets"][0]["quantization"]["kind"] = "int9"
    [error] = _editor_errors(tree)
    assert list(error.absolute_path) == ["targets", 0, "quantization", "kind"]


def test_variables_are_allowed_where_the_compiler_expands_them() -> None:
    tree = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    tree["training"]["epochs"] = "${EPOCHS}"
    tree["targets"][1]["kubernetes"]["replicas"] = "${REPLICAS:-2}"
    tree["description"] = "${DESCRIPTION}"
    assert _editor_errors(tree) == []
    tree["training"]["epochs"] = "forty"
    [error] = _editor_errors(tree)
    assert list(error.absolute_path) == ["training", "epochs"]
