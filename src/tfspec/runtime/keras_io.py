"""Save and load a model step's Keras model, inside the tfmot scopes so QAT, pruning and clustering
wrappers deserialize.

The file is ``model.keras`` (the Keras v3 format), except for quantization-aware models: tf_keras 2.21
cannot reload a ``QuantizeLayer`` from the v3 format (``Layer 'quantize_layer' expected 5 variables, but
received 3``), so those are written as ``model.h5`` (HDF5), which round-trips exactly. ``load_model``
and ``model_file`` find whichever the step wrote.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .tf import import_tf

__all__ = ["MODEL_FILE", "MODEL_H5_FILE", "custom_objects_scope", "save_model", "load_model", "model_file"]

MODEL_FILE = "model.keras"
MODEL_H5_FILE = "model.h5"
_QUANTIZE_CLASSES = ("QuantizeLayer", "QuantizeWrapper", "QuantizeWrapperV2")


@contextlib.contextmanager
def custom_objects_scope() -> Iterator[None]:
    """tfmot's quantize, prune and cluster scopes together (every wrapper a model step may leave)."""
    import_tf()
    import tensorflow_model_optimization as tfmot

    with contextlib.ExitStack() as stack:
        stack.enter_context(tfmot.quantization.keras.quantize_scope())
        stack.enter_context(tfmot.sparsity.keras.prune_scope())
        stack.enter_context(tfmot.clustering.keras.cluster_scope())
        yield


def _quantization_aware(model: Any) -> bool:
    return any(type(layer).__name__ in _QUANTIZE_CLASSES for layer in getattr(model, "layers", []))


def save_model(model: Any, folder: Path) -> Path:
    """Write the model into ``folder`` (``model.keras``, or ``model.h5`` for a QAT model); returns the file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with custom_objects_scope():
        if _quantization_aware(model):
            path = folder / MODEL_H5_FILE
            with warnings.catch_warnings():
                warnings.filterwarnings("ignore", message="You are saving your model as an HDF5 file")
                model.save(path, save_format="h5")
        else:
            path = folder / MODEL_FILE
            model.save(path)
    return path


def model_file(folder: Path) -> Path:
    """The model file a model step left in ``folder``."""
    folder = Path(folder)
    for name in (MODEL_FILE, MODEL_H5_FILE):
        if (folder / name).is_file():
            return folder / name
    raise FileNotFoundError(f"no {MODEL_FILE} or {MODEL_H5_FILE} in {folder}")


def load_model(folder: Path, compile: bool = True) -> Any:
    """Load the model a model step saved (tfmot wrappers included)."""
    _, keras = import_tf()
    with custom_objects_scope():
        return keras.models.load_model(model_file(folder), compile=compile)
