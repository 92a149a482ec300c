"""The resolved spec's sections in the plan's types: the one place a spec model becomes a plan model.

The plan's types (``tfspec.plan``) are their own: they mirror the resolved spec's sections without its
constraints and without defaults, and hold what the runtime needs decided (a layer's name, a catalogue
layer's Keras class, object-store credentials by variable name). Each section is dumped from the resolved
spec and validated as its plan type, with the fields that differ set here: a spec field the plan type does
not know (or a plan field the spec lacks) fails loudly, so the two cannot drift apart unnoticed.
"""

from __future__ import annotations

import functools
from typing import Any

from pydantic import TypeAdapter

from tfspec.plan import (AndroidParams, AugmentationParams, DistributionParams, EarlyStoppingParams, FitParams,
                         GatesParams, LayerParams, LossParams, MissingValuesParams, ModelParams, OptimizerParams,
                         SourceParams, StorageParams, TfliteGatesParams)
from tfspec.base.catalogue import NESTED_LAYER_ARGS, SPEC_KEYS, layer_entry
from tfspec.spec.model import Layer, LAYER_TYPES

__all__ = ["storage_params", "source_params", "missing_values_params", "layer_params", "layers_params",
           "model_params", "optimizer_params", "fit_params", "early_stopping_params", "gates_params",
           "tflite_gates_params", "android_params"]


@functools.cache
def _adapter(plan_type: Any) -> TypeAdapter[Any]:
    return TypeAdapter(plan_type)


def _as(plan_type: Any, section: Any, *, drop: tuple[str, ...] = (), **fields: Any) -> Any:
    """``section`` (a resolved spec model) as ``plan_type``: its JSON form less ``drop``, with ``fields`` set."""
    value = {k: v for k, v in section.model_dump(mode="json").items() if k not in drop}
    return _adapter(plan_type).validate_python({**value, **fields})


def storage_params(storage: Any | None) -> StorageParams | None:
    """``data.storage`` (or a model's or teacher's ``storage``): the endpoint and the credentials' variable names."""
    if storage is None:
        return None
    return StorageParams(endpoint_url=storage.endpoint_url,
                         access_key_id_env=storage.credentials.access_key_id_env,
                         secret_access_key_env=storage.credentials.secret_access_key_env)


def source_params(source: Any) -> SourceParams:
    return _as(SourceParams, source)


def missing_values_params(missing: Any | None) -> MissingValuesParams | None:
    return None if missing is None else _as(MissingValuesParams, missing)


@functools.cache
def _spec_layer() -> TypeAdapter[Any]:
    return TypeAdapter(Layer)


def layer_params(layer: Any, index: int, default_name: str | None = None) -> LayerParams:
    """One spec layer, named: its own name, else ``default_name`` (a wrapper's inner layer:
    ``<wrapper>_<argument>``), else ``<type>_<index>`` (the same in every process)."""
    name = layer.name or default_name or f"{layer.type}_{index}"
    if layer.type in LAYER_TYPES:
        return _as(LayerParams, layer, name=name)
    entry = layer_entry(layer.type)
    assert entry is not None, layer.type  # the spec admits catalogue types only
    value = layer.model_dump(mode="json")
    nested = {key: layer_params(_spec_layer().validate_python(value[key]), 0, f"{name}_{key}").model_dump(mode="json")
              for key in sorted(NESTED_LAYER_ARGS & set(value)) if value[key] is not None}
    arguments = {key: argument for key, argument in value.items()
                 if key not in SPEC_KEYS and key not in nested and argument is not None}
    return _adapter(LayerParams).validate_python({"type": layer.type, "name": name, "inputs": layer.inputs,
                                                  "keras_class": entry["class"], "arguments": arguments,
                                                  "layers": nested})


def layers_params(layers: Any) -> list[LayerParams]:
    return [layer_params(layer, index) for index, layer in enumerate(layers)]


def model_params(model: Any) -> ModelParams:
    """``model``; compile-time settings (``external_locations``, ``output_activation``) stay behind."""
    fields: dict[str, Any] = {}
    if model.kind in ("sequential", "functional"):
        fields["layers"] = [layer.model_dump(mode="json") for layer in layers_params(model.layers)]
    if model.kind == "application":
        fields["head"] = [layer.model_dump(mode="json") for layer in layers_params(model.head)]
    if model.kind == "saved_model":
        storage = storage_params(model.storage)
        fields["storage"] = storage.model_dump(mode="json") if storage is not None else None
    return _as(ModelParams, model, drop=("external_locations", "output_activation"), **fields)


def optimizer_params(optimizer: Any) -> OptimizerParams:
    return _as(OptimizerParams, optimizer)


def early_stopping_params(early_stopping: Any | None) -> EarlyStoppingParams | None:
    return None if early_stopping is None else _as(EarlyStoppingParams, early_stopping)


def fit_params(training: Any, augmentation: Any | None) -> FitParams:
    """How the train step and every fine-tuning stage compile and fit a model (``training`` and
    ``data.augmentation``)."""
    return FitParams(
        optimizer=optimizer_params(training.optimizer),
        loss=_as(LossParams, training.loss_spec),
        metrics=list(training.metrics),
        batch_size=training.batch_size,
        seed=training.seed,
        shuffle_buffer=training.shuffle_buffer,
        distribution=_as(DistributionParams, training.distribution),
        augmentation=None if augmentation is None else _as(AugmentationParams, augmentation),
    )


def gates_params(gates: Any) -> GatesParams:
    """A target's gates on its artifact. ``vs_released`` is the compare step's (``compiler/released.py``), so a
    target without a released model keeps its fingerprints."""
    return _as(GatesParams, gates, drop=("vs_released",))


def tflite_gates_params(gates: Any) -> TfliteGatesParams:
    return _as(TfliteGatesParams, gates, drop=("vs_released",))


def android_params(android: Any | None) -> AndroidParams | None:
    return None if android is None else _as(AndroidParams, android)
