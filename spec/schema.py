"""JSON Schema (2020-12) of the spec, for editors (yaml-language-server) and the generated reference."""

from __future__ import annotations

import json
from typing import Any

from .document import Spec

__all__ = ["SCHEMA_ID", "spec_json_schema", "spec_json_schema_text"]

SCHEMA_ID = "https://tfspec.dev/schema/tfspec-v1.json"


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Spec` (draft 2020-12), every field with a description."""
    schema = Spec.model_json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


def spec_json_schema_text() -> str:
    """The schema as deterministic JSON text (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(spec_json_schema(), indent=2, sort_keys=True) + "\n"
