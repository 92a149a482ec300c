"""Save and load ``model.keras`` between steps, inside the tfmot scopes so QAT, pruning and clustering
wrappers deserialize.

Quantization-aware models are the exception: they are written as ``model.h5`` (HDF5). tf_keras 2.21
cannot reload tfmot's ``QuantizeLayer``/``QuantizeWrapperV2`` from a ``.keras`` file (``build_from_config``
builds them and the first call builds them again, so loading fails with "Layer 'quantize_layer' expected
5 variables, but received 3"); HDF5 round-trips them exactly. :func:`load_model` and :func:`model_path`
find whichever of the two a model step wrote.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .tf import import_tf

__all__ = ["MODEL_FILE", "QAT_MODEL_FILE", "custom_objects_scope", "is_quantization_aware", "model_path", "save_model",
           "load_model"]

MODEL_FILE = "model.keras"
QAT_MODEL_FILE = "model.h5"


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


def is_quantization_aware(model: Any) -> bool:
    """Whether ``model`` holds tfmot quantize layers or wrappers (a quantization-aware model)."""
    return any(type(layer).__name__ in ("QuantizeLayer", "QuantizeWrapper", "QuantizeWrapperV2")
               for layer in getattr(model, "layers", []))


def model_path(folder: Path) -> Path:
    """The model file a model step wrote in ``folder``: ``model.keras``, or ``model.h5`` (quantization-aware)."""
    folder = Path(folder)
    if not (folder / MODEL_FILE).is_file() and (folder / QAT_MODEL_FILE).is_file():
        return folder / QAT_MODEL_FILE
    return folder / MODEL_FILE


def save_model(model: Any, folder: Path, name: str = MODEL_FILE) -> Path:
    """Write ``folder/model.keras`` (Keras v3 file format, tf_keras); quantization-aware: ``folder/model.h5``."""
    if name == MODEL_FILE and is_quantization_aware(model):
        name = QAT_MODEL_FILE
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with custom_objects_scope():
        if path.suffix == ".h5":
            model.save(path, include_optimizer=False)
        else:
            model.save(path)
    return path


def load_model(folder: Path, name: str = MODEL_FILE, compile: bool = True) -> Any:
    """Load ``folder/model.keras`` (or ``folder/model.h5`` from a quantization-aware step; wrappers included)."""
    _, keras = import_tf()
    path = model_path(folder) if name == MODEL_FILE else Path(folder) / name
    with custom_objects_scope():
        return keras.models.load_model(path, compile=compile)
