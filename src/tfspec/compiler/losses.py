"""What a spec's loss says about its model's output, shared by the plan and the targets."""

from __future__ import annotations

__all__ = ["REGRESSION_LOSSES"]

REGRESSION_LOSSES = frozenset({"mean_squared_error", "mean_absolute_error", "huber"})
"""Losses of a regression model: measured by its mean absolute error, its output is values, not classes."""
