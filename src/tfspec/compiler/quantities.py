"""Kubernetes resource quantities as numbers (for comparisons and derived defaults)."""

from __future__ import annotations

__all__ = ["quantity_value"]

_QUANTITY_FACTORS = {"": 1.0, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
                     "Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30, "Ti": 2.0 ** 40}


def quantity_value(quantity: str) -> float:
    """A Kubernetes quantity (``500m``, ``2``, ``4Gi``) as a number."""
    number = quantity.rstrip("kmMGTi")
    return float(number) * _QUANTITY_FACTORS[quantity[len(number):]]
