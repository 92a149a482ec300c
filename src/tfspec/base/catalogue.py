"""The tf_keras layer catalogue (``keras_layers.json``, derived from tf_keras by ``tfspec.runtime.catalogue``):
every layer's type name and constructor arguments, so a spec's layers are checked without TensorFlow.

``check_layer_arguments`` is the check of one layer mapping: unknown arguments (with the closest name),
missing required ones, and a value whose JSON kind contradicts the argument's default (a string where
the default is a number, ...). Arguments without a JSON default (``None`` or an object) take any value;
Keras checks those when the model is built.
"""

from __future__ import annotations

import difflib
import functools
import json
from pathlib import Path
from typing import Any

__all__ = ["CATALOGUE_FILE", "SPEC_KEYS", "NESTED_LAYER_ARGS", "catalogue", "layer_entry", "check_layer_arguments"]

CATALOGUE_FILE = Path(__file__).with_name("keras_layers.json")
# Keys of a layer mapping that are tfspec's own, not Keras arguments.
SPEC_KEYS = ("type", "name", "inputs")
# Arguments whose value is itself a layer (wrappers: ``bidirectional``, ``time_distributed``).
NESTED_LAYER_ARGS = frozenset({"layer", "backward_layer"})


@functools.cache
def catalogue() -> dict[str, Any]:
    """``{type: {"class", "doc", "args"}}`` of every catalogued tf_keras layer."""
    return json.loads(CATALOGUE_FILE.read_text("utf-8"))["layers"]


def layer_entry(layer_type: str) -> dict[str, Any] | None:
    return catalogue().get(layer_type)


def _kind_error(value: Any, default: Any) -> str | None:
    """Why ``value`` cannot stand where Keras' default is ``default`` (None when it can)."""
    def number(v: Any) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool)

    def integers(v: Any) -> bool:
        return isinstance(v, list) and all(isinstance(i, int) and not isinstance(i, bool) for i in v)

    if isinstance(default, bool):
        return None if isinstance(value, bool) else "expected true or false"
    if isinstance(default, int):
        ok = (isinstance(value, int) and not isinstance(value, bool)) or integers(value)
        return None if ok else "expected an integer (or a list of integers)"
    if isinstance(default, float):
        return None if number(value) else "expected a number"
    if isinstance(default, str):
        return None if isinstance(value, str) or value is None else "expected a string"
    if isinstance(default, list):
        return None if isinstance(value, list) or number(value) else "expected a list (or one number)"
    return None


def check_layer_arguments(layer: dict[str, Any]) -> list[tuple[tuple[str, ...], str]]:
    """``[(key path inside the layer, message)]`` of every problem with a catalogued layer's arguments."""
    entry = layer_entry(str(layer.get("type")))
    if entry is None:
        return []
    args: dict[str, Any] = entry["args"]
    problems = []
    for key, value in layer.items():
        if key in SPEC_KEYS or key in NESTED_LAYER_ARGS and key in args:
            continue
        if key not in args:
            close = difflib.get_close_matches(key, list(args), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else "its arguments: " + ", ".join(sorted(args))
            problems.append(((key,), f"{layer['type']} ({entry['class']}) has no argument {key!r} ({hint})"))
            continue
        why = _kind_error(value, args[key]["default"])
        if why:
            problems.append(((key,), f"invalid value {value!r} for {entry['class']}({key}=...): {why}, like its "
                                     f"default {args[key]['default']!r}"))
    for key, arg in args.items():
        if arg["required"] and key not in layer:
            problems.append(((key,), f"{layer['type']} ({entry['class']}) needs {key!r}"))
    return problems
