"""JSON Schema (2020-12) of the spec, for editors (yaml-language-server) and the generated reference.

Field descriptions are the attribute docstrings in ``spec/*.py`` (Google style: the string literal right
after a field), read from the source here rather than at import time.
"""

import ast
import copy
import functools
import inspect
import json
import sys
from typing import Any

from pydantic import BaseModel

from .document import Spec

__all__ = ["SCHEMA_ID", "spec_json_schema", "editor_json_schema", "spec_json_schema_text", "field_docstrings"]

SCHEMA_ID = "https://tfspec.dev/schema/tfspec-v1.json"


@functools.cache
def _module_docstrings(module_name: str) -> dict[str, dict[str, str]]:
    """``{class name: {field: docstring}}`` for every class of one module."""
    source = inspect.getsource(sys.modules[module_name])
    out: dict[str, dict[str, str]] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.ClassDef):
            continue
        docs: dict[str, str] = {}
        body = node.body
        for statement, following in zip(body, body[1:]):
            if (isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name)
                    and isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant)
                    and isinstance(following.value.value, str)):
                docs[statement.target.id] = inspect.cleandoc(following.value.value)
        out[node.name] = docs
    return out


def field_docstrings(model: type[BaseModel]) -> dict[str, str]:
    """Docstrings of ``model``'s fields, inherited ones included (the closest class wins)."""
    docs: dict[str, str] = {}
    for cls in reversed(model.__mro__):
        if isinstance(cls, type) and issubclass(cls, BaseModel) and cls.__module__.startswith(("tfspec.spec", "spec")):
            docs.update(_module_docstrings(cls.__module__).get(cls.__name__, {}))
    return docs


def _models(root: type[BaseModel]) -> dict[str, type[BaseModel]]:
    """Every model class reachable from ``root``, by name."""
    seen: dict[str, type[BaseModel]] = {}

    def visit(annotation: Any) -> None:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            if annotation.__name__ in seen:
                return
            seen[annotation.__name__] = annotation
            for field in annotation.model_fields.values():
                visit(field.annotation)
            return
        for arg in getattr(annotation, "__args__", ()) or ():
            visit(arg)
        origin = getattr(annotation, "__origin__", None)
        if origin is not None and origin is not annotation:
            visit(origin)
        for meta in getattr(annotation, "__metadata__", ()) or ():
            visit(meta)

    visit(root)
    return seen


def spec_json_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Spec` (draft 2020-12), every field with a description."""
    schema = Spec.model_json_schema(mode="validation")
    models = _models(Spec)
    definitions = {"Spec": schema, **schema.get("$defs", {})}
    for name, definition in definitions.items():
        model = models.get(name)
        if model is None:
            continue
        docs = field_docstrings(model)
        for field, prop in definition.get("properties", {}).items():
            if field in docs and "description" not in prop:
                prop["description"] = docs[field]
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}


VARIABLE = {
    "type": "string",
    "pattern": r"^\$\{[A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\}$",
    "description": "An environment variable, ${NAME} or ${NAME:-default}, expanded when the spec is compiled.",
}


def editor_json_schema() -> dict[str, Any]:
    """The schema for editors: :func:`spec_json_schema` with two changes that match what the compiler does.

    * Discriminated unions (pydantic's ``oneOf`` + ``discriminator``, which JSON Schema validators ignore)
      become ``if``/``then`` on the tag: a typo inside one layer is one error at that layer, not a dozen
      "not valid under any of the given schemas" at ``model``.
    * A scalar value may be a ``${VAR}`` reference (the compiler expands variables before it checks types).
    """
    schema = _rewrite(copy.deepcopy(spec_json_schema()))
    schema["$defs"]["Variable"] = dict(VARIABLE)  # after the rewrite: it is a pattern string itself
    return schema


def _rewrite(node: Any) -> Any:
    if isinstance(node, list):
        return [_rewrite(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _rewrite(value) for key, value in node.items()}
    if "discriminator" in node and "oneOf" in node:
        return _tagged_union(node)
    if _is_checked_scalar(node):
        return _or_variable(node)
    return node


def _tagged_union(node: dict[str, Any]) -> dict[str, Any]:
    tag = node["discriminator"]["propertyName"]
    mapping: dict[str, str] = node["discriminator"]["mapping"]
    out = {key: value for key, value in node.items() if key not in ("discriminator", "oneOf")}
    out.update({
        "type": "object",
        "required": [tag],
        "properties": {tag: {"enum": sorted(mapping)}},
        "allOf": [{"if": {"properties": {tag: {"const": value}}, "required": [tag]}, "then": {"$ref": ref}}
                  for value, ref in sorted(mapping.items())],
    })
    return out


def _is_checked_scalar(node: dict[str, Any]) -> bool:
    """A number, boolean, or constrained string (not a union tag: those stay literal)."""
    if "const" in node:
        return False
    kind = node.get("type")
    return kind in ("integer", "number", "boolean") or (kind == "string" and ("pattern" in node or "enum" in node)) \
        or ("enum" in node and kind is None)


_ANNOTATIONS = ("title", "description", "default")


def _or_variable(node: dict[str, Any]) -> dict[str, Any]:
    inner = {key: value for key, value in node.items() if key not in _ANNOTATIONS}
    outer = {key: value for key, value in node.items() if key in _ANNOTATIONS}
    return {**outer, "anyOf": [inner, {"$ref": "#/$defs/Variable"}]}


def spec_json_schema_text() -> str:
    """The editor schema as deterministic JSON text (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(editor_json_schema(), indent=2, sort_keys=True) + "\n"
