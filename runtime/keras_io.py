"""Save and load ``model.keras`` between steps, inside the tfmot scopes so QAT, pruning and clustering
wrappers deserialize."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .tf import import_tf

__all__ = ["MODEL_FILE", "custom_objects_scope", "save_model", "load_model"]

MODEL_FILE = "model.keras"


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


def save_model(model: Any, folder: Path, name: str = MODEL_FILE) -> Path:
    """Write ``folder/model.keras`` (Keras v3 file format, tf_keras)."""
    path = Path(folder) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with custom_objects_scope():
        model.save(path)
    return path


def load_model(folder: Path, name: str = MODEL_FILE, compile: bool = True) -> Any:
    """Load ``folder/model.keras`` (tfmot wrappers included)."""
    _, keras = import_tf()
    with custom_objects_scope():
        return keras.models.load_model(Path(folder) / name, compile=compile)
