"""Stage 2: parse the raw YAML tree into the typed :class:`~tfspec.spec.Spec`.

Pydantic's error locations are mapped back to the YAML positions the loader recorded, and misspelt
keys get a "did you mean" hint computed from the fields the model at that location really has.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from typing import Any, Literal, Union, get_args, get_origin

import pydantic
from pydantic import BaseModel

from tfspec.spec.base import ENDPOINT_URL_PATTERN, ENDPOINT_URL_WITH_PATH_PATTERN, SAFE_TEXT_PATTERN
from tfspec.spec.data import DATA_LOCATION_PATTERN
from tfspec.spec.released import RELEASED_PATH_PATTERN
from tfspec.spec.document import Spec
from tfspec.base.errors import Diagnostic, SpecError
from tfspec.spec.loader import KeyPath, SourceDocument, cap
from tfspec.spec.model import LAYER_TYPES

__all__ = ["parse_spec", "parse_model", "diagnostics_from_validation_error"]

_ModelT = typing.TypeVar("_ModelT", bound=BaseModel)


def parse_spec(document: SourceDocument) -> Spec:
    """Validate ``document.tree`` as a :class:`Spec`; every problem becomes a positioned diagnostic."""
    return parse_model(Spec, document.tree, document)


def parse_model(model: type[_ModelT], tree: Any, document: SourceDocument) -> _ModelT:
    if not isinstance(tree, dict):
        raise SpecError([document.diagnostic((), f"expected a mapping of spec sections, got {_kind_of(tree)}")])
    try:
        return model.model_validate(tree)
    except pydantic.ValidationError as error:
        raise SpecError(diagnostics_from_validation_error(error, model, tree, document)) from None


def diagnostics_from_validation_error(
    error: pydantic.ValidationError, model: type[BaseModel], tree: Any, document: SourceDocument
) -> list[Diagnostic]:
    items = error.errors(include_url=False)
    located = [(item, *_walk(item["loc"], tree, model, missing=item["type"] == "missing")) for item in items]
    described: list[tuple[dict[str, Any], KeyPath, str, str | None]] = []
    for item, path, owner in located:
        if _scalar_branch_noise(item, path, located):
            continue
        if item["type"] == "union_tag_invalid":
            discriminator = str((item.get("ctx") or {}).get("discriminator", "kind")).strip("'")
            node = _node_at(tree, path)
            if isinstance(node, dict) and discriminator in node:
                path = path + (discriminator,)
        described.append((item, path, *_describe(item, path, owner)))
    return [document.diagnostic(path, message, hint) for path, message, hint in _one_per_union(described)]


def _one_per_union(described: list[tuple[dict[str, Any], KeyPath, str, str | None]]) -> list[tuple[KeyPath, str, str | None]]:
    """One problem, one line: where every branch of a union rejected the same value (``learning_rate: fast``
    is neither a number nor a mapping), their complaints become one "expected a number or a mapping" line."""
    by_path: dict[KeyPath, list[tuple[dict[str, Any], str, str | None]]] = {}
    for item, path, message, hint in described:
        by_path.setdefault(path, []).append((item, message, hint))
    out: list[tuple[KeyPath, str, str | None]] = []
    for path, group in by_path.items():
        if len(group) < 2 or not all(_is_type_mismatch(item) or item["type"] in ("literal_error", "string_pattern_mismatch")
                                     for item, _, _ in group):
            out.extend((path, message, hint) for _, message, hint in group)
            continue
        wanted: list[str] = []
        for item, message, hint in group:
            if item["type"] == "literal_error":
                option = f"one of {(item.get('ctx') or {}).get('expected')}"
            elif item["type"] == "string_pattern_mismatch":
                option = hint or "a text of another form"
            else:
                option = re.sub(r" \(got .*\)$", "", message).removeprefix("expected ")
            if option not in wanted:
                wanted.append(option)
        got = group[0][0].get("input")
        shown = "" if isinstance(got, (dict, list)) else f" (got {_shown(got)})"
        out.append((path, "expected " + " or ".join(wanted) + shown, None))
    return out


def _node_at(tree: Any, path: KeyPath) -> Any:
    node = tree
    for element in path:
        try:
            node = node[element]
        except (KeyError, IndexError, TypeError):
            return None
    return node


def _is_type_mismatch(item: dict[str, Any]) -> bool:
    return item["type"].endswith(("_type", "_parsing")) or item["type"] == "union_tag_not_found"


def _scalar_branch_noise(item: dict[str, Any], path: KeyPath, located: list[tuple[Any, KeyPath, Any]]) -> bool:
    """In a scalar-or-mapping union (``learning_rate``), the branch the value was not meant for complains
    too: drop a type mismatch when another, more specific error exists at or below the same path."""
    if not _is_type_mismatch(item):
        return False
    return any(other is not item and other_path[: len(path)] == path and not _is_type_mismatch(other)
               for other, other_path, _ in located)


def _walk(loc: tuple[Any, ...], tree: Any, model: type[BaseModel], missing: bool = False) -> tuple[KeyPath, Any]:
    """Follow pydantic's ``loc`` through the YAML tree and the model types at the same time.

    Returns the key path that exists in the tree (union tags and pydantic's branch labels such as
    ``constrained-float`` are skipped; a missing key is kept as the last element) and the type found at
    the parent of the last element (used for "did you mean" on unknown keys).
    """
    path: list[str | int] = []
    node: Any = tree
    annotation: Any = model
    parent_annotation: Any = model
    for position, element in enumerate(loc):
        chosen = _union_member(annotation, element) if isinstance(element, str) and annotation is not None else None
        if chosen is not None:
            # pydantic's tag of a discriminated union, e.g. the layer type "activation": not a key of the
            # node, even where the node has a key of the same name ({type: activation, activation: relu})
            annotation = chosen
        elif isinstance(node, dict) and isinstance(element, str) and element in node:
            parent_annotation = annotation
            annotation = _child_annotation(annotation, element, node)
            path.append(element)
            node = node[element]
        elif isinstance(node, list) and isinstance(element, int) and 0 <= element < len(node):
            parent_annotation = annotation
            annotation = _item_annotation(annotation, node[element])
            path.append(element)
            node = node[element]
        elif isinstance(element, str) and missing and position == len(loc) - 1:
            parent_annotation = annotation
            path.append(element)
            node = None
    return tuple(path), parent_annotation


def _unwrap(annotation: Any) -> list[Any]:
    """The concrete alternatives of an annotation: Optional, Annotated and unions flattened."""
    origin = get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(get_args(annotation)[0])
    if origin in (Union, types.UnionType):
        out = []
        for arg in get_args(annotation):
            out.extend(_unwrap(arg))
        return out
    return [annotation]


def _model_alternatives(annotation: Any) -> list[type[BaseModel]]:
    return [a for a in _unwrap(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]


def _child_annotation(annotation: Any, key: str, node: dict[str, Any]) -> Any:
    for alternative in _unwrap(annotation):
        if isinstance(alternative, type) and issubclass(alternative, BaseModel):
            field = alternative.model_fields.get(key)
            if field is not None and _matches(alternative, node):
                return field.annotation
        elif get_origin(alternative) is dict:
            return get_args(alternative)[1]
    return None


def _item_annotation(annotation: Any, item: Any) -> Any:
    for alternative in _unwrap(annotation):
        if get_origin(alternative) is list:
            return get_args(alternative)[0]
    return None


def _matches(model: type[BaseModel], node: dict[str, Any]) -> bool:
    """Does ``node`` select ``model`` in a discriminated union (by its literal tag)?"""
    for tag in ("kind", "type", "schedule"):
        field = model.model_fields.get(tag)
        if field is not None and get_origin(field.annotation) is Literal and tag in node:
            return node[tag] in get_args(field.annotation)
    return True


def _union_member(annotation: Any, tag: str) -> type[BaseModel] | None:
    alternatives = _model_alternatives(annotation)
    if len(alternatives) < 2:
        return None
    for alternative in alternatives:
        for tag_name in ("kind", "type", "schedule"):
            field = alternative.model_fields.get(tag_name)
            if field is not None and get_origin(field.annotation) is Literal and tag in get_args(field.annotation):
                return alternative
    return None


def _allowed_keys(annotation: Any) -> list[str]:
    keys: list[str] = []
    for alternative in _model_alternatives(annotation):
        keys.extend(k for k in alternative.model_fields if k not in keys)
    return keys


def _describe(item: dict[str, Any], path: KeyPath, owner: Any) -> tuple[str, str | None]:
    kind = item["type"]
    ctx = item.get("ctx") or {}
    if kind == "extra_forbidden":
        key = str(path[-1]) if path else "?"
        if key in _MODEL_KEYS and "layers" in path:
            return f"unknown key {_shown(key)}", f"{key} belongs on the model (model.{key}), not on a layer"
        allowed = _allowed_keys(owner)
        close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
        if close:
            return f"unknown key {_shown(key)}", f"did you mean {close[0]!r}?"
        return f"unknown key {_shown(key)}", ("allowed keys: " + ", ".join(allowed)) if allowed else None
    if kind == "missing":
        return "required key is missing", None
    if kind in ("union_tag_invalid", "literal_error"):
        expected = ctx.get("expected_tags") or ctx.get("expected")
        got = ctx.get("tag", item.get("input"))
        discriminator = str(ctx.get("discriminator", "kind")).strip("'")
        message = f"invalid value {_shown(got)}" if kind == "literal_error" else f"unknown {discriminator} {_shown(got)}"
        hint = f"expected one of {expected}" if expected else None
        if isinstance(got, str) and expected:
            options = [o.strip().strip("'\"") for o in str(expected).replace(" or ", ",").split(",")]
            if discriminator == "type" and "layers" in path:
                # a hundred catalogue names: show the short ones, suggest from all
                expected = ", ".join(repr(t) for t in LAYER_TYPES) + _CATALOGUE_NOTE
            hint = _suggest(got, [o for o in options if o], str(expected))
        if discriminator == "type" and "layers" in path and not (hint or "").startswith("did you mean"):
            hint = (hint + "; " if hint else "") + _OTHER_LAYERS
        return message, hint
    if kind == "union_tag_not_found":
        return f"missing the {ctx.get('discriminator', 'kind').strip(chr(39))} key that selects the variant", None
    if kind == "string_pattern_mismatch":
        return f"invalid value {_shown(item.get('input'))}", _PATTERN_HINTS.get(str(ctx.get("pattern")))
    if kind == "value_error":
        return cap(str(ctx.get("error", item["msg"])), 300), None
    template = _MESSAGES.get(kind)
    message = template.format(**ctx) if template else item["msg"]
    if "input" in item and not isinstance(item["input"], (dict, list)):
        message += f" (got {_shown(item['input'])})"
    if kind in ("int_type", "float_type") and _looks_numeric(item.get("input")):
        return message, "write a plain decimal number: no quotes, no yes/on/true, no 0x, '_' or ':'"
    return message, None


# What YAML 1.1 (and so many a YAML tool) reads as a number or boolean, but a spec does not.
_NUMBER_LOOKALIKE = re.compile(r"[-+]?(\.?[0-9][0-9a-fA-FxXoObB_:.eE+-]*|\.?(inf|nan))|yes|no|on|off|y|n",
                               re.IGNORECASE)


def _looks_numeric(value: Any) -> bool:
    return isinstance(value, bool) or isinstance(value, str) and _NUMBER_LOOKALIKE.fullmatch(value.strip()) is not None


_MESSAGES = {
    "greater_than": "must be greater than {gt}",
    "greater_than_equal": "must be at least {ge}",
    "less_than": "must be less than {lt}",
    "less_than_equal": "must be at most {le}",
    "int_parsing": "expected an integer",
    "int_type": "expected an integer",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected a string",
    "list_type": "expected a list",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "model_attributes_type": "expected a mapping",
    "too_short": "needs at least {min_length} item(s)",
    "too_long": "allows at most {max_length} item(s)",
    "string_too_short": "must be at least {min_length} character(s) long",
    "string_too_long": "must be at most {max_length} characters long",
    "finite_number": "must be a finite number",
}


# What each constrained string type of spec/ accepts, keyed by its pattern.
_PATTERN_HINTS = {
    r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$":
        "use a DNS-1123 label: lower-case letters, digits and '-', at most 63 characters",
    r"^[A-Za-z][A-Za-z0-9_]{0,63}$": "use letters, digits and '_', starting with a letter",
    ENDPOINT_URL_PATTERN: "an http:// or https:// URL of a host with an optional port 1-65535 and no path, "
                          "such as http://minio.example.com:9000",
    ENDPOINT_URL_WITH_PATH_PATTERN: "an http:// or https:// URL of a host with an optional port 1-65535, "
                                    "such as https://minio.example.com:9000",
    r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/(?!\.+(/|$))[A-Za-z0-9_.=-]+)*$":
        "an S3 location s3://bucket or s3://bucket/prefix: a bucket name of 3-63 lower-case letters, digits, '.' "
        "and '-', then folders of letters, digits, '_', '.', '=' and '-'",
    r"^(s3|gs)://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/(?!\.+(/|$))[A-Za-z0-9_.=-]+)*$":
        "an object-store folder s3://bucket/prefix or gs://bucket/prefix (bucket: 3-63 lower-case letters, "
        "digits, '.' and '-')",
    r"^[A-Z_][A-Z0-9_]{0,127}$": "the NAME of an environment variable: upper-case letters, digits and '_' "
                                 "(AWS_ACCESS_KEY_ID), never the value",
    r"^[a-z0-9-]{1,32}$": "a region name such as us-east-1",
    r"^[^\x00-\x1f]+$": "a column name without control characters",
    r"^[^\x00-\x1f]*$": "a cell text without control characters (e.g. NA, ?)",
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$": "a version tag such as 2.21.0 (letters, digits, '_', '.' and '-')",
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*$":
        "an image repository such as registry.example.com/ml (lower-case, no tag)",
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(@sha256:[0-9a-f]{64})?$":
        "an image repository such as registry.example.com/ml/digits, optionally pinned by @sha256:<digest>",
    r"^[a-z0-9]+([._-][a-z0-9]+)*(:[0-9]+)?(/[a-z0-9]+([._-][a-z0-9]+)*)*(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(@sha256:[0-9a-f]{64})?$":
        "an image reference such as registry.example.com/ml/base:1.2 or ...@sha256:<digest>",
    r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$":
        "a Kubernetes label key: an optional DNS prefix and '/', then a name of at most 63 characters",
    r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$":
        "a Kubernetes label value: at most 63 letters, digits, '-', '_' and '.', starting and ending alphanumeric",
    r"^(100|[1-9]?[0-9])%$": "a percentage such as 25%",
    r"^/[A-Za-z0-9_./-]{0,200}$": "an absolute path in the container, such as /data",
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$":
        "a DNS subdomain name: lower-case letters, digits, '-' and '.'",
    r"^[a-z_][a-z0-9_]*(\[[0-9]{1,4}\])*(\.[a-z_][a-z0-9_]*(\[[0-9]{1,4}\])*){0,15}$":
        "a key path such as model.layers[0].units",
    r"^[A-Za-z0-9_.:/-]{1,64}$": "a number, true/false, or a name of letters, digits, '_', '.', ':', '/' and '-'",
    SAFE_TEXT_PATTERN:
        "one line of at most 200 characters, without control characters, '{', '}', '$', '`' or '\\'",
    r"^(?!/)(?!.*(^|/)\.\.(/|$))[A-Za-z0-9_.*?\-/\[\]]{1,255}$":
        "use a relative path inside the project, without '..' or special characters",
    DATA_LOCATION_PATTERN:
        "use a relative path inside the project, without '..' or special characters (or, with "
        "that section's external_locations: true, an s3://, gs:// or file:// URL or an absolute path)",
    RELEASED_PATH_PATTERN:
        "use a relative path inside the project, without '..' or special characters (or, with the released "
        "model's external_locations: true, a file:// URL or an absolute path; a bucket: kind: model_store)",
    r"^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$": "use a Kubernetes quantity such as \"500m\", \"2\" or \"4Gi\"",
    r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$": "use a Java package name such as com.example.app",
    r"^[A-Za-z][A-Za-z0-9_]{0,49}$": "letters, digits and '_', starting with a letter (at most 50 characters)",
    r"^(CPU|GPU|TPU):[0-9]{1,2}$": "use a device such as GPU:0 or CPU:0",
    r"^(CPU|GPU):[0-9]{1,2}$": "use a device such as GPU:0 or CPU:0",
    r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$": "use package.module:function",
    r"^[a-z][a-z0-9_-]{0,31}$": "lower-case letters, digits, '_' and '-', starting with a letter",
    r"^[a-z][a-z0-9-]{0,31}$": "a label: lower-case letters, digits and '-', starting with a letter, at most 32 "
                               "characters",
    r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}\.tflite$": "a plain file name ending in .tflite",
}


# Keys of the model that users put on a layer (Keras' Sequential lets the first layer take them).
_MODEL_KEYS = ("input_shape", "input_dtype")

# Values the spec spells differently: what to write instead, and why.
_ACCURACY = ("accuracy", "Keras picks the sparse, categorical or binary accuracy that matches the loss")
_WRITE_INSTEAD = {
    "sparse_categorical_accuracy": _ACCURACY,
    "categorical_accuracy": _ACCURACY,
    "binary_accuracy": _ACCURACY,
    "acc": _ACCURACY,
    "mean_absolute_error": ("mae", "the metric's short name"),
    "top_k_categorical_accuracy": ("sparse_top_k_categorical_accuracy", "labels are class indices"),
}

_CATALOGUE_NOTE = " or another tf_keras layer (`tfspec layers` lists them all)"
_OTHER_LAYERS = ("for a layer not listed, build the model in Python: "
                 "model: {kind: builder, builder: package.module:function, input_shape: [...]}")


def _suggest(got: str, options: list[str], expected: str) -> str:
    """The hint of a value that is not one of ``options``: a spelling the spec uses for the same thing,
    the same name in lower case, then the closest spelling, then the list."""
    if got in _WRITE_INSTEAD and _WRITE_INSTEAD[got][0] in options:
        value, why = _WRITE_INSTEAD[got]
        return f"write {value!r}: {why}"
    if got.lower() in options:
        return f"did you mean {got.lower()!r}? names are lower-case"
    close = difflib.get_close_matches(got.lower(), options, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}? expected one of {expected}"
    return f"expected one of {expected}"


def _shown(value: Any) -> str:
    """A user's value as echoed in a message: its repr, cut (a 5 MB description is not repeated)."""
    return cap(repr(value))


def _kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    return {"str": "a string", "int": "a number", "float": "a number", "bool": "a boolean", "list": "a list"}.get(
        type(value).__name__, type(value).__name__
    )
