"""Per-epoch reports from training to whoever listens in this process (``tfspec search`` prunes with them).

The ``train`` step adds :func:`epoch_callbacks` to its ``fit``; with no observer installed it is a no-op.
An observer may raise a :class:`~tfspec.base.errors.TfspecError` to stop the step: the step's scratch
folder is then removed and nothing enters the cache.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from .tf import import_tf

__all__ = ["EpochObserver", "observing_epochs", "epoch_callbacks"]

EpochObserver = Callable[[str, int, dict[str, float]], None]
"""``observer(step_id, epoch, logs)``: called after every finished epoch (0-based) with Keras' logs."""

_observers: list[EpochObserver] = []


@contextlib.contextmanager
def observing_epochs(observer: EpochObserver) -> Iterator[None]:
    """Call ``observer`` after each training epoch of the steps run inside this block."""
    _observers.append(observer)
    try:
        yield
    finally:
        _observers.remove(observer)


def epoch_callbacks(step_id: str) -> list[Any]:
    """A Keras callback forwarding each epoch's logs to the observers (none when nobody listens)."""
    if not _observers:
        return []
    _, keras = import_tf()

    class Forward(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            values = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, (int, float))}
            for observer in list(_observers):
                observer(step_id, epoch, values)

    return [Forward()]
