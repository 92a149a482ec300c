"""The model the train step builds, as the plan holds it: a stack of layers, a functional graph, a builder
function, a SavedModel or a ``keras.applications`` backbone with a head (``model`` of the resolved spec).
Paths are relative to the plan root unless they are locations."""

from typing import Annotated, Literal, Union

from pydantic import Field

from .common import InputParams, JsonValue, Params
from .data import StorageParams
from .layers import LayerParams

__all__ = [
    "PlacementParams",
    "SequentialModelParams",
    "FunctionalModelParams",
    "BuilderModelParams",
    "SavedModelModelParams",
    "FineTuneParams",
    "ApplicationModelParams",
    "ModelParams",
]


class PlacementParams(Params):
    """A group of layers built and called under one device."""

    device: str
    """``GPU:0``, ``CPU:0``, ..."""
    layers: list[str]


class SequentialModelParams(Params):
    kind: Literal["sequential"]
    input_shape: list[int]
    input_dtype: str
    input_name: str
    output_name: str
    layers: list[LayerParams]
    placement: list[PlacementParams] | None


class FunctionalModelParams(Params):
    kind: Literal["functional"]
    inputs: list[InputParams]
    layers: list[LayerParams]
    outputs: list[str]
    output_name: str
    placement: list[PlacementParams] | None


class BuilderModelParams(Params):
    """``builder`` (``package.module:function``) called with ``args``; the module is found beside the plan root."""

    kind: Literal["builder"]
    builder: str
    args: dict[str, JsonValue]
    input_shape: list[int]
    input_dtype: str
    input_name: str
    output_name: str


class SavedModelModelParams(Params):
    kind: Literal["saved_model"]
    path: str
    storage: StorageParams | None
    """For an ``s3://`` / ``gs://`` path."""
    input_shape: list[int]
    input_dtype: str
    input_name: str
    output_name: str
    trainable: bool
    serve_as_is: bool
    """Deployed unchanged: copied, never loaded as a Keras model."""
    signature: str
    """The signature used when served as it is."""


class FineTuneParams(Params):
    unfreeze: int | Literal["all"]
    epochs: int
    learning_rate: float


class ApplicationModelParams(Params):
    kind: Literal["application"]
    application: str
    """The ``keras.applications`` function (``MobileNetV2``)."""
    args: dict[str, JsonValue]
    weights: str | None
    """Backbone weights file; None: random initialisation."""
    input_shape: list[int]
    input_name: str
    output_name: str
    head: list[LayerParams]
    fine_tune: FineTuneParams | None


ModelParams = Annotated[
    Union[SequentialModelParams, FunctionalModelParams, BuilderModelParams, SavedModelModelParams,
          ApplicationModelParams],
    Field(discriminator="kind"),
]
