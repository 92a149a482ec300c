"""Helpers every target renderer uses: object names, the header context and quoting for Dockerfiles."""

from __future__ import annotations

import json
from typing import Any

from .. import naming
from ..render import header_lines
from ..resolve import ResolvedSpec

__all__ = ["object_name", "base_context", "dockerfile_quote", "python_literal"]


def object_name(resolved: ResolvedSpec, target: Any) -> str:
    """``<spec name>-<target name>``: the Kubernetes object and image name of a target."""
    return naming.object_name(resolved.spec.name, target.name)


def base_context(resolved: ResolvedSpec, target: Any) -> dict[str, Any]:
    """Values every template of a target gets: the header, names and the spec's description."""
    return {
        "header": header_lines(resolved),
        "spec_name": resolved.spec.name,
        "version": resolved.spec.version,
        "description": resolved.spec.description or "",
        "target_name": target.name,
        "object_name": object_name(resolved, target),
        "spec_sha256": resolved.spec_sha256,
    }


def dockerfile_quote(value: str) -> str:
    """A double-quoted Dockerfile word (LABEL/ENV value): JSON escaping of ``"`` and ``\\``, ``$`` escaped.

    Docker's parser unescapes ``\\"`` and ``\\\\`` inside double quotes and expands ``$VAR``; control
    characters cannot occur (spec text fields reject them).
    """
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise ValueError(f"control character in a Dockerfile value: {value!r}")
    return json.dumps(value, ensure_ascii=False).replace("$", "\\$")


def python_literal(value: Any) -> str:
    """A Python source literal of a str/int/float/tuple value (``repr`` is exact and cannot break out)."""
    return repr(value)
