"""The one Jinja2 environment: StrictUndefined (a typo fails the build, it never renders an empty string
into a manifest), ``trim_blocks``/``lstrip_blocks``, quoting filters for every output language, HTML
escaping for ``*.html.j2`` templates only. The compiler's generated files, the run report, the search report
and the fleet page all render through it.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import os
import shlex
from collections.abc import Mapping
from json.encoder import encode_basestring, encode_basestring_ascii  # type: ignore[attr-defined]
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache

from .versions import TFSPEC_VERSION

__all__ = ["environment", "render_template"]


# Built once: json.dumps with any non-default option builds a new encoder on every call, and these filters
# run about 200 times per spec. The bytes are json.dumps's own (the same encoders).
_JSON_UNICODE = json.JSONEncoder(ensure_ascii=False)
_JSON_SORTED = json.JSONEncoder(sort_keys=True)


def _yaml_quote(value: Any) -> str:
    """A YAML/JSON scalar: JSON is valid YAML, and JSON escaping cannot break out of the string."""
    if type(value) is str:  # most values: json.dumps(value, ensure_ascii=False) without its wrapping
        return encode_basestring(value)
    return _JSON_UNICODE.encode(value)


def _proto_quote(value: str) -> str:
    """A protobuf text-format string literal."""
    return encode_basestring_ascii(str(value))


def _yaml_block(value: Any, indent: int) -> str:
    """A YAML mapping or sequence laid out block style, every line *preceded* by a newline (``_macros.j2``'s
    ``block``): nested non-empty collections as blocks, everything else with ``yaml_quote``."""
    pad = " " * indent
    parts: list[str] = []
    if isinstance(value, Mapping):
        for key, item in value.items():
            if _is_collection(item) and len(item) > 0:
                parts.append(f"\n{pad}{str(key)}:{_yaml_block(item, indent + 2)}")
            else:
                parts.append(f"\n{pad}{str(key)}: {_yaml_quote(item)}")
    else:
        for item in value:
            if isinstance(item, Mapping) and len(item) > 0:
                parts.append(_yaml_block(item, indent + 2).replace(f"\n{pad}  ", f"\n{pad}- ", 1))
            else:
                parts.append(f"\n{pad}- {_yaml_quote(item)}")
    return "".join(parts)


def _is_collection(value: Any) -> bool:
    """Jinja's ``value is mapping or (value is sequence and value is not string)``."""
    if isinstance(value, Mapping):
        return True
    if isinstance(value, str):
        return False
    try:
        len(value)
        value.__getitem__  # noqa: B018  (Jinja's `sequence` test: has a length and item access)
    except Exception:
        return False
    return True


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates kept between processes (compiling them is most of a cold build's render time).

    Entries are keyed by template name and source checksum, so an edited template is recompiled. A cache
    folder that cannot be written only costs speed.
    """

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except (OSError, ValueError, EOFError):
            bucket.reset()

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            Path(self.directory).mkdir(parents=True, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError:
            pass


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    if os.environ.get("TFSPEC_NO_TEMPLATE_CACHE") == "1":
        return None
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return _BytecodeCache(str(base / "tfspec" / f"templates-{TFSPEC_VERSION}"))


@functools.cache
def environment() -> jinja2.Environment:
    """The one Jinja environment of tfspec (cached), compiled templates cached on disk between processes.

    The compiler's generated files and the HTML pages (run report, search report, fleet) render through it."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(importlib.resources.files("tfspec.templates"))),
        bytecode_cache=_bytecode_cache(),
        auto_reload=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        # HTML pages (the run report) are escaped; generated configs are not (they quote per format)
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False,
                                            default=False),
    )
    env.filters["bash_quote"] = shlex.quote
    env.filters["yaml_quote"] = _yaml_quote
    env.filters["proto_quote"] = _proto_quote
    env.filters["yaml_block"] = _yaml_block
    env.filters["json"] = _JSON_SORTED.encode
    return env


def render_template(template: str, **context: Any) -> str:
    text = environment().get_template(template).render(**context)
    return text if text.endswith("\n") else text + "\n"
