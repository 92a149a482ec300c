"""What the compiler knows about a data source without reading it (only scikit-learn's digits set)."""

from __future__ import annotations

import dataclasses

__all__ = ["SourceFacts", "SKLEARN_DIGITS"]


@dataclasses.dataclass(frozen=True)
class SourceFacts:
    examples: int
    features: int
    classes: int


# sklearn.datasets.load_digits(): 1797 8x8 images, flattened, ten classes
SKLEARN_DIGITS = SourceFacts(examples=1797, features=64, classes=10)
