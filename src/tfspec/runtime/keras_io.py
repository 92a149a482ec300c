"""Save and load a model step's Keras model, inside the tfmot scopes so QAT, pruning and clustering
wrappers deserialize (only when the file may hold one: tfmot is not imported for a model of plain layers).

The file is ``model.keras`` (the Keras v3 format), except for quantization-aware models: tf_keras 2.21
cannot reload a ``QuantizeLayer`` from the v3 format (``Layer 'quantize_layer' expected 5 variables, but
received 3``), so those are written as ``model.h5`` (HDF5), which round-trips exactly. ``load_model``
and ``model_file`` find whichever the step wrote.

A model built by the spec's builder (``model.builder``) is the user's own code, as trusted as the spec:
it is loaded with Keras' safe mode off (a ``Lambda`` layer's Python ``lambda`` is bytecode in the file)
and with every name of the builder's module as a custom object, so its custom layer classes deserialize
without ``register_keras_serializable`` and its lambdas see the module's globals (``tf``, ``np``, helpers).
Every other model (the spec's layers, a SavedModel, a teacher) loads in safe mode.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import sys
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from tfspec.plan import BuilderModelParams, TrainParams

from .tf import import_tf

__all__ = ["MODEL_FILE", "MODEL_H5_FILE", "BuilderCode", "builder_code", "custom_objects_scope", "save_model",
           "load_model", "model_file"]

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


def _tfmot_loaded() -> bool:
    return "tensorflow_model_optimization" in sys.modules


def _tfmot_scopes(path: Path) -> contextlib.AbstractContextManager[None]:
    """tfmot's scopes when the model file may hold a tfmot object: an HDF5 file (a QAT model), a ``.keras``
    file whose config names a tfmot class (its ``module``), or any file once tfmot is loaded anyway.
    Importing tfmot takes seconds that a model of plain layers (no compression, or stripped) does not need."""
    if _tfmot_loaded() or path.suffix != ".keras":
        return custom_objects_scope()
    with zipfile.ZipFile(path) as archive:
        config = archive.read("config.json")
    return custom_objects_scope() if b"tensorflow_model_optimization" in config else contextlib.nullcontext()


def _quantization_aware(model: Any) -> bool:
    return any(type(layer).__name__ in _QUANTIZE_CLASSES for layer in getattr(model, "layers", []))


def save_model(model: Any, folder: Path) -> Path:
    """Write the model into ``folder`` (``model.keras``, or ``model.h5`` for a QAT model); returns the file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    # a model holding tfmot wrappers was made with tfmot loaded; saving a plain model needs no scope
    with custom_objects_scope() if _tfmot_loaded() else contextlib.nullcontext():
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


@dataclasses.dataclass(frozen=True)
class BuilderCode:
    """The module of the spec's ``model.builder`` (``nets`` of ``nets:build``), importable from ``spec_dir``."""

    module: str
    spec_dir: Path

    def names(self) -> dict[str, Any]:
        """Every public name of the builder's module (its classes, functions and imports)."""
        added = str(self.spec_dir) not in sys.path
        if added:
            sys.path.insert(0, str(self.spec_dir))
        try:
            module = importlib.import_module(self.module)
        finally:
            if added:
                sys.path.remove(str(self.spec_dir))
        return {name: value for name, value in vars(module).items() if not name.startswith("__")}


def builder_code(plan: Any, root: Path) -> BuilderCode | None:
    """The builder a plan's models come from (its ``train`` step's ``model.builder``); None for other models."""
    train = next((step for step in plan.steps if step.kind == "train"), None)
    model = train.params.model if train is not None and isinstance(train.params, TrainParams) else None
    if not isinstance(model, BuilderModelParams):
        return None
    return BuilderCode(model.builder.partition(":")[0], Path(root))


def load_model(folder: Path, compile: bool = True, code: BuilderCode | None = None) -> Any:
    """Load the model a model step saved (tfmot wrappers included); ``code``: the builder it came from (safe
    mode off, the builder module's names as custom objects, see the module docstring)."""
    _, keras = import_tf()
    path = model_file(folder)
    with _tfmot_scopes(path):
        if code is None:
            return keras.models.load_model(path, compile=compile)
        return keras.models.load_model(path, compile=compile, custom_objects=code.names(), safe_mode=False)
