"""Package attributes imported on first use (PEP 562): a command that needs one light module of a package
does not pay for importing the rest (the spec models' validators above all)."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_attributes"]


def lazy_attributes(package: str, names: Mapping[str, str | tuple[str, str]]) -> Callable[[str], Any]:
    """The module-level ``__getattr__`` of ``package``: each of ``names`` is imported from its module on first
    use and then kept in the package. A value is the module (relative to ``package`` when it starts with a
    dot) holding an attribute of the same name, or ``(module, attribute)`` when the names differ."""

    def __getattr__(name: str) -> Any:
        where = names.get(name)
        if where is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = (where, name) if isinstance(where, str) else where
        value = getattr(importlib.import_module(module, package), attribute)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
