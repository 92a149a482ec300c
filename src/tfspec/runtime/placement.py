"""Model-parallel placement (``model.placement``): each group of layers runs on its own device.

The model builder creates a placed layer and its first call under ``tf.device``, which puts the layer's
*variables* on the device. That alone does not move the computation: a tf_keras functional model replays
its layers inside ``tf.function`` (``train_step``, ``predict``) without the construction-time scopes, so
the forward ops would land wherever TensorFlow's placer puts unplaced ops. :func:`pin_layer_calls` wraps
each placed layer's ``call`` in the same ``tf.device`` scope, so every trace (training, evaluation,
prediction) builds that layer's forward ops on its device. The backward ops the gradient tape adds and
the optimizer's updates carry no device (tf_keras' ``train_step`` takes gradients outside any layer
scope); TensorFlow's placer puts them (resource updates beside their variables). The pin belongs to the
built Python object only: ``model.keras`` files stay device-free, so a model trained across two GPUs
loads and serves on one.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from tfspec.plan import FunctionalModelParams, ModelParams, SequentialModelParams

from .errors import StepError
from .tf import import_tf

__all__ = ["PlacementError", "check_devices", "pin_layer_calls", "placed_devices"]


class PlacementError(StepError):
    """``model.placement`` names a device this process does not have."""


def check_devices(model: ModelParams) -> None:
    """Raise :class:`PlacementError` naming ``model.placement[i].device`` for a device that is not here.

    The validator (``gpu_placement``) checks the spec against the gpu_cluster target's GPUs; this is
    the runtime's check against the devices this process really sees.
    """
    tf, _ = import_tf()
    placement = model.placement if isinstance(model, (SequentialModelParams, FunctionalModelParams)) else None
    if not placement:
        return
    available = {d.name.split("device:")[-1] for d in tf.config.list_logical_devices()}
    for index, group in enumerate(placement):
        if group.device not in available:
            raise PlacementError(
                ("model", "placement", index, "device"), f"{group.device} is not available on this machine "
                f"(visible: {', '.join(sorted(available))})")


def pin_layer_calls(model: Any, device_of: Callable[[str], str | None]) -> Any:
    """Wrap every placed layer's ``call`` in its ``tf.device`` scope; returns ``model``."""
    tf, _ = import_tf()
    for layer in model.layers:
        device = device_of(layer.name)
        if device is None:
            continue
        pinned = _pinned(tf, layer.call, f"/device:{device}")
        layer.call = pinned
        layer._tfspec_device = device  # noqa: SLF001 - read back by placed_devices
    return model


def _pinned(tf: Any, call: Callable[..., Any], scope: str) -> Callable[..., Any]:
    @functools.wraps(call)
    def pinned(*args: Any, **kwargs: Any) -> Any:
        with tf.device(scope):
            return call(*args, **kwargs)

    return pinned


def placed_devices(model: Any) -> dict[str, str]:
    """Layer name → device of the layers :func:`pin_layer_calls` pinned (for metrics and tests)."""
    return {layer.name: layer._tfspec_device for layer in model.layers if hasattr(layer, "_tfspec_device")}
