"""One module per compression technique (``prune``, ``cluster``, ``qat``, ``distill``), each registering a
:class:`~.registry.Technique`: the plan params of its stage and its ordering rules, as data."""

from __future__ import annotations

from . import cluster, distill, prune, qat
from .registry import TECHNIQUES, Technique, technique

__all__ = ["TECHNIQUES", "Technique", "technique", "cluster", "distill", "prune", "qat"]
