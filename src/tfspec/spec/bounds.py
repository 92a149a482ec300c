"""Bounds on what one spec's numbers may expand into when the compiler reads them.

The schema bounds each number on its own (``spec/base.py``); some numbers are multiplied or expanded by the
compiler: ``data.num_classes`` (or the output layer's ``units``) becomes one label per class in
``labels.txt``, an example shape becomes the zero example of the serving client's ``request.json``. These
bounds keep that work and those files small; the compiler reports a spec past them at the key (exit 2).
"""

from collections.abc import Iterable

__all__ = ["MAX_CLASSES", "MAX_EXAMPLE_VALUES", "shape_size"]

MAX_CLASSES = 100_000
"""Most classes of a classifier (ImageNet-21k has 21,843): each is a line of ``labels.txt``."""

MAX_EXAMPLE_VALUES = 1 << 24
"""Most values in one example (16,777,216: a 2048 x 2048 x 4 image): the REST client's ``request.json`` holds
one zero example, and every warm-up record and verification sample holds one."""


def shape_size(shape: Iterable[int]) -> int:
    """The number of values in one example of ``shape`` (exact: Python integers do not overflow)."""
    size = 1
    for dimension in shape:
        size *= dimension
    return size
