"""The fast paths of rendering and of plan.json give the bytes of what they replaced.

``indented_json`` must equal ``json.dumps(value, indent=2, sort_keys=True)`` (plan.json's bytes, which
fingerprints, goldens and `build --check` compare), and the ``yaml_block`` filter must equal the recursive
Jinja macro that ``_macros.j2``'s ``block`` was (kept here as the reference).
"""

from __future__ import annotations

import json
import random
from typing import Any

import jinja2
import pytest

from tfspec.base.templating import environment
from tfspec.plan.json_text import indented_json

# _macros.j2's `block` before it called the yaml_block filter (commit 26373b6), the reference layout.
REFERENCE_BLOCK = """\
{% macro block(value, indent) %}
{% if value is mapping %}
{% for key, item in value.items() %}
{% if (item is mapping or (item is sequence and item is not string)) and item | length > 0 %}

{{ " " * indent }}{{ key }}:{{ block(item, indent + 2) -}}
{% else %}

{{ " " * indent }}{{ key }}: {{ item | yaml_quote -}}
{% endif %}
{% endfor %}
{% else %}
{% for item in value %}
{% if item is mapping and item | length > 0 %}
{{ block(item, indent + 2) | replace("\\n" ~ " " * (indent + 2), "\\n" ~ " " * indent ~ "- ", 1) -}}
{% else %}

{{ " " * indent }}- {{ item | yaml_quote -}}
{% endif %}
{% endfor %}
{% endif %}
{% endmacro %}
"""

SCALARS: list[Any] = [None, True, False, 0, -3, 10**30, 1.5, 1e-7, -0.0, 1e22, "a", "", "é\n\"\\\u2028x", "\x00",
                      "😀", "- x: y", "100Mi"]


def random_value(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth > 4 or roll < 0.4:
        return rng.choice(SCALARS)
    if roll < 0.7:
        return [random_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    if roll < 0.75:
        return tuple(random_value(rng, depth + 1) for _ in range(rng.randint(0, 3)))
    keys = ["b", "a", "z", "é", "", "A1", "name", "k1", "k2", "k10"]
    return {rng.choice(keys): random_value(rng, depth + 1) for _ in range(rng.randint(0, 5))}


@pytest.mark.parametrize("seed", range(4))
def test_indented_json_is_json_dumps_byte_for_byte(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(2000):
        value = random_value(rng)
        assert indented_json(value) == json.dumps(value, indent=2, sort_keys=True), value


@pytest.mark.parametrize("value", [float("nan"), [float("inf")], {"a": -float("inf")}, {1: "x", 2: "a"},
                                   {True: 1}, {None: 0}, {"a": {2.5: 1}}])
def test_indented_json_falls_back_to_json_for_what_it_does_not_encode_itself(value: Any) -> None:
    assert indented_json(value) == json.dumps(value, indent=2, sort_keys=True)


def test_indented_json_raises_what_json_raises() -> None:
    with pytest.raises(TypeError, match="not JSON serializable"):
        indented_json({"a": object()})
    with pytest.raises(TypeError, match="not supported between"):  # sort_keys over mixed key types
        indented_json({1: "x", "a": 2})


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("indent", [0, 2, 6])
def test_yaml_block_filter_lays_out_as_the_macro_did(seed: int, indent: int) -> None:
    env: jinja2.Environment = environment()
    reference = env.from_string(REFERENCE_BLOCK).module.block  # type: ignore[attr-defined]
    fast = env.from_string("{% import '_macros.j2' as m %}{{ m.block(value, indent) }}")
    rng = random.Random(seed)
    for _ in range(300):
        value = random_value(rng)
        if not isinstance(value, (dict, list, tuple)):
            continue
        expected = str(reference(value, indent))
        assert fast.render(value=value, indent=indent) == expected, value
        assert env.filters["yaml_block"](value, indent) == expected, value
