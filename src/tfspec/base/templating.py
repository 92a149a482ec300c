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
from pathlib import Path
from typing import Any

import jinja2
import jinja2.bccache

from .versions import TFSPEC_VERSION

__all__ = ["environment", "render_template"]


def _yaml_quote(value: Any) -> str:
    """A YAML/JSON scalar: JSON is valid YAML, and JSON escaping cannot break out of the string."""
    return json.dumps(value, ensure_ascii=False)


def _proto_quote(value: str) -> str:
    """A protobuf text-format string literal."""
    return json.dumps(str(value), ensure_ascii=True)


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
    env.filters["json"] = lambda value: json.dumps(value, sort_keys=True)
    return env


def render_template(template: str, **context: Any) -> str:
    text = environment().get_template(template).render(**context)
    return text if text.endswith("\n") else text + "\n"
