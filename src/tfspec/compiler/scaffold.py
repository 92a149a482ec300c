"""``tfspec init``: a commented starter spec, checked to compile before it is written."""

from __future__ import annotations

import re

from tfspec.base.errors import TfspecError

from .render import render_template

__all__ = ["scaffold_spec", "check_name"]

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def check_name(name: str) -> None:
    """Raise :class:`TfspecError` unless ``name`` is a DNS-1123 label (a spec's ``name``)."""
    if not _DNS_LABEL.fullmatch(name):
        raise TfspecError(f"invalid model name {name!r}: use lower-case letters, digits and '-' (a DNS-1123 label)")


def scaffold_spec(name: str) -> str:
    """The text of a starter ``deploy.yaml`` for model ``name`` (a DNS-1123 label)."""
    check_name(name)
    return render_template("init/deploy.yaml.j2", name=name, pack=name.replace("-", "_") + "_model",
                           package="com.example." + name.replace("-", "_"))
