"""Helpers every target renderer uses: object names, the header context and quoting for Dockerfiles."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .. import naming
from ..render import header_lines
from ..resolve import ResolvedSpec

__all__ = ["object_name", "base_context", "dockerfile_quote", "python_literal", "image_repository", "image_reference",
           "content_tag", "without_header", "qualified_image", "PULL_POLICY", "DIGEST_MARK"]

DIGEST_MARK = "@sha256:"
# Every tag tfspec writes is derived from the image's content (a new content is a new tag) or the image is
# pinned by digest: a node's cached copy is always the right one, and images loaded into kind/minikube
# (never pulled) work.
PULL_POLICY = "IfNotPresent"


def object_name(resolved: ResolvedSpec, target: Any) -> str:
    """``<spec name>-<target name>``: the Kubernetes object and image name of a target."""
    return naming.object_name(resolved.spec.name, target.name)


def image_repository(resolved: ResolvedSpec, target: Any, explicit: str | None) -> str:
    """The image a target builds: ``explicit`` when the spec names one, else ``[<registry>/]<spec>-<target>``
    (one repository per target: a CPU and a GPU serving target never overwrite each other's image)."""
    if explicit:
        return explicit
    registry = resolved.spec.registry
    return f"{registry}/{object_name(resolved, target)}" if registry else object_name(resolved, target)


def qualified_image(image: str) -> str:
    """``docker.io/<image>`` unless the first path component names a registry host (has ``.`` or ``:``)."""
    first = image.split("/")[0]
    return image if "/" in image and ("." in first or ":" in first or first == "localhost") else f"docker.io/{image}"


def content_tag(version: int, *parts: Any) -> str:
    """``<version>-<12 hex>``: the model version for people, a hash of what the image holds for machines."""
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode("utf-8")).hexdigest()
    return f"{version}-{digest[:12]}"


def image_reference(repository: str, tag: str) -> str:
    """``repo:tag``, or the repository as given when it is pinned by digest (``repo@sha256:...``)."""
    return repository if DIGEST_MARK in repository else f"{repository}:{tag}"


def without_header(text: str, header: list[str], marker: str = "#") -> str:
    """``text`` without its generated header lines: what a hash of the content must not cover (the header
    names the spec's sha256, which changes with every edit of the spec)."""
    prefix = "".join(f"{marker} {line}\n" for line in header)
    return text[len(prefix):] if text.startswith(prefix) else text


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
