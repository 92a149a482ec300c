"""One module per compression technique, each registering a :class:`~.registry.Technique`: the plan params
of its stage, its step's inputs and outputs, and its ordering rules, as data. Every module of this package is
a technique and is imported here (a new technique is one new module)."""

from __future__ import annotations

import importlib
import pkgutil

from .registry import MODEL_OUTPUTS, TECHNIQUES, StagePlan, Technique, technique

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "registry":
        importlib.import_module(f"tfspec.compiler.techniques.{_module.name}")

__all__ = ["MODEL_OUTPUTS", "TECHNIQUES", "StagePlan", "Technique", "technique"]
