"""Model layers as the plan holds them: the written-out layer types (Keras names and arguments, every
argument decided) and any other tf_keras layer of the catalogue (its class and constructor arguments).

Every layer has its name: the spec's, or ``<type>_<position>`` given by the compiler, so the names are the
same in every process (Keras' own counters are not).
"""

from typing import Annotated, Any, Literal, Union

from pydantic import Discriminator, Tag

from .common import JsonValue, Params

__all__ = [
    "RegularizerParams",
    "DenseLayerParams",
    "Conv1DLayerParams",
    "Conv2DLayerParams",
    "DepthwiseConv2DLayerParams",
    "SeparableConv2DLayerParams",
    "PoolLayerParams",
    "PlainLayerParams",
    "DropoutLayerParams",
    "BatchNormLayerParams",
    "LayerNormLayerParams",
    "EmbeddingLayerParams",
    "RecurrentLayerParams",
    "ReshapeLayerParams",
    "ActivationLayerParams",
    "ConcatenateLayerParams",
    "CatalogueLayerParams",
    "LayerParams",
    "WRITTEN_OUT_LAYER_TYPES",
]

IntOrPair = int | list[int]


class RegularizerParams(Params):
    """``L1L2(l1, l2)``."""

    l1: float
    l2: float


class _LayerParams(Params):
    name: str
    inputs: list[str] | None
    """Functional models: the layers (or model inputs) feeding this one; None in a stack of layers."""


class _WeightedLayerParams(_LayerParams):
    use_bias: bool
    kernel_initializer: str
    kernel_regularizer: RegularizerParams | None
    bias_regularizer: RegularizerParams | None


class DenseLayerParams(_WeightedLayerParams):
    type: Literal["dense"]
    units: int
    activation: str


class Conv1DLayerParams(_WeightedLayerParams):
    type: Literal["conv1d"]
    filters: int
    kernel_size: int
    strides: int
    padding: str
    activation: str


class Conv2DLayerParams(_WeightedLayerParams):
    type: Literal["conv2d"]
    filters: int
    kernel_size: IntOrPair
    strides: IntOrPair
    padding: str
    dilation_rate: IntOrPair
    activation: str


class DepthwiseConv2DLayerParams(_WeightedLayerParams):
    type: Literal["depthwise_conv2d"]
    kernel_size: IntOrPair
    depth_multiplier: int
    strides: IntOrPair
    padding: str
    activation: str


class SeparableConv2DLayerParams(_WeightedLayerParams):
    type: Literal["separable_conv2d"]
    filters: int
    kernel_size: IntOrPair
    strides: IntOrPair
    padding: str
    activation: str


class PoolLayerParams(_LayerParams):
    type: Literal["max_pool1d", "max_pool2d", "average_pool2d"]
    pool_size: IntOrPair
    strides: IntOrPair | None
    """None: the pool size."""
    padding: str


class PlainLayerParams(_LayerParams):
    """Layers without arguments."""

    type: Literal["global_average_pool1d", "global_average_pool2d", "global_max_pool2d", "flatten", "add"]


class DropoutLayerParams(_LayerParams):
    type: Literal["dropout"]
    rate: float


class BatchNormLayerParams(_LayerParams):
    type: Literal["batch_norm"]
    momentum: float
    epsilon: float


class LayerNormLayerParams(_LayerParams):
    type: Literal["layer_norm"]
    epsilon: float


class EmbeddingLayerParams(_LayerParams):
    type: Literal["embedding"]
    input_dim: int
    output_dim: int


class RecurrentLayerParams(_WeightedLayerParams):
    type: Literal["lstm", "gru"]
    units: int
    return_sequences: bool
    dropout: float


class ReshapeLayerParams(_LayerParams):
    type: Literal["reshape"]
    target_shape: list[int]


class ActivationLayerParams(_LayerParams):
    type: Literal["activation"]
    activation: str


class ConcatenateLayerParams(_LayerParams):
    type: Literal["concatenate"]
    axis: int


class CatalogueLayerParams(_LayerParams):
    """Any other tf_keras layer: ``keras.layers.<keras_class>(name=name, **arguments, **built layers)``."""

    type: str
    """The catalogue's snake_case name (for messages)."""
    keras_class: str
    arguments: dict[str, JsonValue]
    """Keras constructor arguments as the spec gave them (unset ones left to Keras' own defaults)."""
    layers: dict[str, "LayerParams"]
    """Wrappers: the argument (``layer``, ``backward_layer``) → the layer built for it."""


_WRITTEN_OUT: dict[str, type[_LayerParams]] = {
    "dense": DenseLayerParams,
    "conv1d": Conv1DLayerParams,
    "conv2d": Conv2DLayerParams,
    "depthwise_conv2d": DepthwiseConv2DLayerParams,
    "separable_conv2d": SeparableConv2DLayerParams,
    "max_pool1d": PoolLayerParams,
    "max_pool2d": PoolLayerParams,
    "average_pool2d": PoolLayerParams,
    "global_average_pool1d": PlainLayerParams,
    "global_average_pool2d": PlainLayerParams,
    "global_max_pool2d": PlainLayerParams,
    "flatten": PlainLayerParams,
    "add": PlainLayerParams,
    "dropout": DropoutLayerParams,
    "batch_norm": BatchNormLayerParams,
    "layer_norm": LayerNormLayerParams,
    "embedding": EmbeddingLayerParams,
    "lstm": RecurrentLayerParams,
    "gru": RecurrentLayerParams,
    "reshape": ReshapeLayerParams,
    "activation": ActivationLayerParams,
    "concatenate": ConcatenateLayerParams,
}
WRITTEN_OUT_LAYER_TYPES: tuple[str, ...] = tuple(_WRITTEN_OUT)


def _layer_class(value: Any) -> str:
    """The union member of a layer (a model or its JSON form): its class name, the catalogue's for the rest."""
    layer_type = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    found = _WRITTEN_OUT.get(layer_type) if isinstance(layer_type, str) else None
    return found.__name__ if found is not None else CatalogueLayerParams.__name__


LayerParams = Annotated[
    Union[tuple(Annotated[cls, Tag(cls.__name__)]  # type: ignore[valid-type]
                for cls in dict.fromkeys([*_WRITTEN_OUT.values(), CatalogueLayerParams]))],
    Discriminator(_layer_class),
]
"""One layer: a written-out type, or a catalogue layer."""

CatalogueLayerParams.model_rebuild()
