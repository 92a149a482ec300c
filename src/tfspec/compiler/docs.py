"""The spec reference (``docs/reference/spec.md``), generated from the JSON Schema.

Every object of the schema becomes one section with a table: field, type, default (or *required*),
constraints and description (the field's docstring in ``spec/*.py``). Sections follow the order in which a
reader meets them, starting at the top level. Regenerate with::

    python -m tfspec.compiler.docs --out docs/reference/spec.md

``--check`` writes nothing and exits 1 when the file differs (for CI). No TensorFlow is imported.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["REFERENCE_PATH", "REGENERATE_COMMAND", "spec_reference_markdown", "main"]

REFERENCE_PATH = "docs/reference/spec.md"
REGENERATE_COMMAND = f"python -m tfspec.compiler.docs --out {REFERENCE_PATH}"
_REF_PREFIX = "#/$defs/"
_ROOT = "Spec"


def _ref_name(ref: str) -> str:
    return ref.removeprefix(_REF_PREFIX)


def _anchor(name: str) -> str:
    return name.lower()


def _link(name: str) -> str:
    return f"[{name}](#{_anchor(name)})"


def _code(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=False)
    return f"`{text}`" if "`" not in text else f"`` {text} ``"


def _prose(text: str) -> str:
    """Docstring text → one Markdown table cell: rST double backticks become code, no pipes or newlines."""
    text = re.sub(r"``(.+?)``", r"`\1`", text)
    return " ".join(text.split()).replace("|", "\\|")


def _refs(node: Any) -> Iterator[str]:
    """Names of the definitions ``node`` refers to, in document order."""
    if isinstance(node, Mapping):
        if isinstance(node.get("$ref"), str):
            yield _ref_name(node["$ref"])
        for key, value in node.items():
            if key not in ("$ref", "default", "discriminator"):
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _type(node: Mapping[str, Any]) -> str:
    """A human reading of one schema node's type, definitions as links."""
    if "$ref" in node:
        return _link(_ref_name(node["$ref"]))
    if "const" in node:
        return f"{_code(node['const'])} (constant)"
    if "enum" in node:
        return "one of " + ", ".join(_code(v) for v in node["enum"])
    for key in ("oneOf", "anyOf"):
        if key in node:
            options = node[key]
            non_null = [o for o in options if o.get("type") != "null"]
            discriminator = node.get("discriminator")
            if discriminator and discriminator.get("mapping"):
                mapping = discriminator["mapping"]
                text = f"one of (by `{discriminator['propertyName']}`): " + ", ".join(
                    f"{_code(k)} {_link(_ref_name(v))}" for k, v in mapping.items())
            else:
                text = " or ".join(_type(o) for o in non_null)
            return text + (" or null" if len(non_null) < len(options) else "")
    kind = node.get("type")
    if kind == "array":
        if "prefixItems" in node:
            return "list [" + ", ".join(_type(i) for i in node["prefixItems"]) + "]"
        items = node.get("items")
        return f"list of {_type(items)}" if isinstance(items, Mapping) and items else "list"
    if kind == "object":
        patterns = node.get("patternProperties")
        if isinstance(patterns, Mapping) and len(patterns) == 1:
            ((pattern, values),) = patterns.items()
            return f"map of name (pattern {_code(pattern)}) to {_type(values)}"
        values = node.get("additionalProperties")
        if isinstance(values, Mapping) and values:
            return f"map of string to {_type(values)}"
        return "map"
    if isinstance(kind, list):
        return " or ".join(kind)
    return str(kind) if kind else "any"


_CONSTRAINTS = (
    ("minimum", "≥ {}"), ("exclusiveMinimum", "> {}"), ("maximum", "≤ {}"), ("exclusiveMaximum", "< {}"),
    ("minLength", "length ≥ {}"), ("maxLength", "length ≤ {}"), ("minItems", "≥ {} items"),
    ("maxItems", "≤ {} items"), ("multipleOf", "multiple of {}"),
)


def _constraints(node: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for option in [node, *node.get("anyOf", []), *(node.get("items", {}) if isinstance(node.get("items"), dict) else {},)]:
        for key, text in _CONSTRAINTS:
            if key in option:
                out.append(text.format(option[key]))
        if "pattern" in option:
            out.append("pattern " + _code(option["pattern"]).replace("|", "\\|"))
        names = option.get("propertyNames")
        if isinstance(names, Mapping) and "pattern" in names:
            out.append("keys match " + _code(names["pattern"]).replace("|", "\\|"))
    return list(dict.fromkeys(out))


def _default(node: Mapping[str, Any], required: bool) -> str:
    if required:
        return "**required**"
    if "default" not in node:
        return "unset"
    value = node["default"]
    if value is None:
        return "`null`"
    if isinstance(value, dict) and value and ("$ref" in node or "anyOf" in node or "oneOf" in node):
        if set(value) == {"kind"}:
            return _code(value)
        if isinstance(value.get("kind"), str):
            return f"`kind: {value['kind']}` with its defaults"
        return "each field's default"
    if isinstance(value, str):
        return _code(json.dumps(value))
    return _code(json.dumps(value))


def _field_rows(definition: Mapping[str, Any]) -> list[str]:
    required = set(definition.get("required", []))
    rows = ["| Field | Type | Default | Constraints | Description |", "| --- | --- | --- | --- | --- |"]
    for name, node in definition.get("properties", {}).items():
        rows.append("| " + " | ".join([
            f"`{name}`",
            _type(node),
            _default(node, name in required),
            "; ".join(_constraints(node)),
            _prose(node.get("description", "")),
        ]) + " |")
    return rows


def _order(schema: Mapping[str, Any]) -> list[str]:
    """Definitions in the order a reader meets them, depth first from the top level."""
    defs = schema.get("$defs", {})
    seen: list[str] = []

    def visit(node: Any) -> None:
        for name in _refs(node):
            if name not in seen and name in defs:
                seen.append(name)
                visit(defs[name].get("properties", {}))

    visit(schema.get("properties", {}))
    seen.extend(sorted(name for name in defs if name not in seen))
    return seen


def _discriminators(schema: Mapping[str, Any]) -> dict[str, str]:
    """Definition name → ``kind: value`` (or ``type: value``) line for every tagged-union member."""
    out: dict[str, str] = {}

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            discriminator = node.get("discriminator")
            if isinstance(discriminator, Mapping):
                for value, ref in discriminator.get("mapping", {}).items():
                    out.setdefault(_ref_name(ref), f"`{discriminator['propertyName']}: {value}`")
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return out


def spec_reference_markdown(schema: Mapping[str, Any] | None = None) -> str:
    """The whole reference page (deterministic: the same schema gives the same bytes)."""
    if schema is None:
        from tfspec.spec.schema import spec_json_schema

        schema = spec_json_schema()
    defs = schema.get("$defs", {})
    order = _order(schema)
    tags = _discriminators(schema)
    lines = [
        "<!-- Generated from the JSON Schema by `" + REGENERATE_COMMAND + "`. DO NOT EDIT. -->",
        "",
        "# Spec reference (`tfspec/v1`)",
        "",
        "Every key of a `deploy.yaml`, generated from the JSON Schema that `tfspec schema` prints (the same",
        "schema editors use through yaml-language-server). Unknown keys are errors. *Default* is what the",
        "compiler fills in when a key is left out; **required** keys have none. A type written",
        "\"one of (by `kind`)\" is a tagged union: the value of `kind` (or `type` for layers) selects which",
        "table below applies.",
        "",
        f"Schema `$id`: `{schema.get('$id', '')}`.",
        "",
        "## Contents",
        "",
        f"- {_link(_ROOT)} (top level)",
        *[f"- {_link(name)}" + (f" ({tags[name]})" if name in tags else "") for name in order],
        "",
        f"## {_ROOT}",
        "",
        _prose(schema.get("description", "")),
        "",
        *_field_rows(schema),
    ]
    for name in order:
        definition = defs[name]
        lines += ["", f"## {name}", ""]
        if name in tags:
            lines += [f"Selected by {tags[name]}.", ""]
        if definition.get("description"):
            lines += [_prose(definition["description"]), ""]
        if definition.get("properties"):
            lines += _field_rows(definition)
        else:
            lines += [f"Type: {_type(definition)}."]
            constraints = _constraints(definition)
            if constraints:
                lines += ["", "Constraints: " + "; ".join(constraints) + "."]
        if definition.get("additionalProperties") is True:
            lines += ["", "Keys not listed here are allowed: they are deep-merged into the target named by `name`."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tfspec.compiler.docs", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help=f"file to write (e.g. {REFERENCE_PATH}); stdout if omitted")
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 with a diff when --out is stale")
    args = parser.parse_args(argv)
    text = spec_reference_markdown()
    if args.out is None:
        sys.stdout.write(text)
        return 0
    if args.check:
        current = args.out.read_text(encoding="utf-8") if args.out.is_file() else ""
        if current == text:
            print(f"{args.out}: up to date")
            return 0
        sys.stdout.writelines(difflib.unified_diff(current.splitlines(keepends=True), text.splitlines(keepends=True),
                                                   str(args.out), "generated"))
        print(f"{args.out}: stale; run `{REGENERATE_COMMAND}` and commit the result", file=sys.stderr)
        return 1
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
