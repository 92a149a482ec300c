"""The JSON Schema: draft 2020-12, a description on every field, and it accepts the example."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import jsonschema
import yaml

from tfspec_testing import EXAMPLE, tfspec_command
from tfspec.spec.schema import spec_json_schema


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


def test_cli_schema_prints_the_same_schema() -> None:
    proc = subprocess.run([*tfspec_command(), "schema"], capture_output=True, text=True, check=True)
    assert json.loads(proc.stdout) == spec_json_schema()
