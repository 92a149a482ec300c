"""The ``model`` section: a Keras model described as layers, a functional graph, a builder or a SavedModel."""

import functools
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from tfspec.base.catalogue import NESTED_LAYER_ARGS, catalogue, check_layer_arguments
from .base import (
    MAX_INT, FiniteFloat, Identifier, NonNegativeFloat, PositiveFloat, PositiveInt, Probability, RelativePath,
    StrictBool, StrictInt, StrictModel,
)
from .data import DataLocation, DataStorage

__all__ = [
    "Regularizer",
    "Activation",
    "Padding",
    "LAYER_TYPES",
    "Layer",
    "DenseLayer",
    "Conv1DLayer",
    "Conv2DLayer",
    "DepthwiseConv2DLayer",
    "SeparableConv2DLayer",
    "MaxPool1DLayer",
    "MaxPool2DLayer",
    "AveragePool2DLayer",
    "GlobalAveragePool1DLayer",
    "GlobalAveragePool2DLayer",
    "GlobalMaxPool2DLayer",
    "FlattenLayer",
    "DropoutLayer",
    "BatchNormLayer",
    "LayerNormLayer",
    "EmbeddingLayer",
    "LstmLayer",
    "GruLayer",
    "ReshapeLayer",
    "ActivationLayer",
    "AddLayer",
    "ConcatenateLayer",
    "KerasLayer",
    "CATALOGUE_LAYER_TYPES",
    "InputSpec",
    "SequentialModel",
    "FunctionalModel",
    "BuilderModel",
    "SavedModelModel",
    "ApplicationModel",
    "FineTune",
    "APPLICATIONS",
    "ModelSpec",
    "Placement",
]

# Names tf_keras' activations.get and initializers.get accept (the runtime passes them through).
Activation = Literal[
    "linear", "relu", "relu6", "leaky_relu", "elu", "selu", "gelu", "swish", "silu", "mish", "sigmoid", "tanh",
    "softmax", "softplus", "softsign", "hard_sigmoid", "exponential",
]
Padding = Literal["valid", "same"]
IntOrPair = PositiveInt | Annotated[list[PositiveInt], Field(min_length=2, max_length=2)]
Initializer = Literal[
    "glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_uniform", "lecun_normal", "truncated_normal",
    "random_normal", "random_uniform", "orthogonal", "zeros", "ones",
]


class Regularizer(StrictModel):
    """Weight penalty added to the loss (``tf.keras.regularizers.L1L2``)."""

    l1: NonNegativeFloat = 0.0
    """L1 factor."""
    l2: NonNegativeFloat = 0.0
    """L2 factor."""


class _LayerBase(StrictModel):
    name: Identifier | None = None
    """Layer name; generated from the type and position when omitted. Compression stages refer to it."""
    inputs: list[Identifier] | None = None
    """Functional models only: names of the layers (or model inputs) feeding this one."""


class _WeightedLayer(_LayerBase):
    use_bias: StrictBool = True
    """Add a bias vector."""
    kernel_initializer: Initializer = "glorot_uniform"
    """Kernel initializer."""
    kernel_regularizer: Regularizer | None = None
    """Penalty on the kernel weights."""
    bias_regularizer: Regularizer | None = None
    """Penalty on the bias."""


class DenseLayer(_WeightedLayer):
    """Fully connected layer (``Dense``)."""

    type: Literal["dense"]
    """Layer type."""
    units: PositiveInt
    """Number of output units."""
    activation: Activation = "linear"
    """Activation function."""


class Conv1DLayer(_WeightedLayer):
    """1-D convolution (``Conv1D``)."""

    type: Literal["conv1d"]
    """Layer type."""
    filters: PositiveInt
    """Number of output channels."""
    kernel_size: PositiveInt
    """Kernel length."""
    strides: PositiveInt = 1
    """Step of the window along each spatial axis (Keras ``strides``)."""
    padding: Padding = "valid"
    """Padding mode."""
    activation: Activation = "linear"
    """Activation function."""


class Conv2DLayer(_WeightedLayer):
    """2-D convolution (``Conv2D``)."""

    type: Literal["conv2d"]
    """Layer type."""
    filters: PositiveInt
    """Number of output channels."""
    kernel_size: IntOrPair
    """Kernel height and width (one number for a square kernel)."""
    strides: IntOrPair = 1
    """Step of the window along each spatial axis (Keras ``strides``)."""
    padding: Padding = "valid"
    """Padding mode."""
    dilation_rate: IntOrPair = 1
    """Spacing between kernel elements (Keras ``dilation_rate``)."""
    activation: Activation = "linear"
    """Activation function."""


class DepthwiseConv2DLayer(_WeightedLayer):
    """Depthwise 2-D convolution (``DepthwiseConv2D``), the mobile building block."""

    type: Literal["depthwise_conv2d"]
    """Layer type."""
    kernel_size: IntOrPair
    """Kernel height and width."""
    depth_multiplier: PositiveInt = 1
    """Output channels per input channel."""
    strides: IntOrPair = 1
    """Step of the window along each spatial axis (Keras ``strides``)."""
    padding: Padding = "valid"
    """Padding mode."""
    activation: Activation = "linear"
    """Activation function."""


class SeparableConv2DLayer(_WeightedLayer):
    """Depthwise-separable 2-D convolution (``SeparableConv2D``)."""

    type: Literal["separable_conv2d"]
    """Layer type."""
    filters: PositiveInt
    """Number of output channels."""
    kernel_size: IntOrPair
    """Kernel height and width."""
    strides: IntOrPair = 1
    """Step of the window along each spatial axis (Keras ``strides``)."""
    padding: Padding = "valid"
    """Padding mode."""
    activation: Activation = "linear"
    """Activation function."""


class MaxPool1DLayer(_LayerBase):
    """1-D max pooling."""

    type: Literal["max_pool1d"]
    """Layer type."""
    pool_size: PositiveInt = 2
    """Window length."""
    strides: PositiveInt | None = None
    """Stride; the pool size when omitted."""
    padding: Padding = "valid"
    """Padding mode."""


class MaxPool2DLayer(_LayerBase):
    """2-D max pooling."""

    type: Literal["max_pool2d"]
    """Layer type."""
    pool_size: IntOrPair = 2
    """Window size."""
    strides: IntOrPair | None = None
    """Stride; the pool size when omitted."""
    padding: Padding = "valid"
    """Padding mode."""


class AveragePool2DLayer(_LayerBase):
    """2-D average pooling."""

    type: Literal["average_pool2d"]
    """Layer type."""
    pool_size: IntOrPair = 2
    """Window size."""
    strides: IntOrPair | None = None
    """Stride; the pool size when omitted."""
    padding: Padding = "valid"
    """Padding mode."""


class GlobalAveragePool1DLayer(_LayerBase):
    """Average over the time axis."""

    type: Literal["global_average_pool1d"]
    """Layer type."""


class GlobalAveragePool2DLayer(_LayerBase):
    """Average over height and width."""

    type: Literal["global_average_pool2d"]
    """Layer type."""


class GlobalMaxPool2DLayer(_LayerBase):
    """Maximum over height and width."""

    type: Literal["global_max_pool2d"]
    """Layer type."""


class FlattenLayer(_LayerBase):
    """Flatten everything but the batch axis."""

    type: Literal["flatten"]
    """Layer type."""


class DropoutLayer(_LayerBase):
    """Dropout (active in training only)."""

    type: Literal["dropout"]
    """Layer type."""
    rate: Annotated[FiniteFloat, Field(ge=0.0, lt=1.0)]
    """Fraction of units dropped."""


class BatchNormLayer(_LayerBase):
    """Batch normalisation."""

    type: Literal["batch_norm"]
    """Layer type."""
    momentum: Probability = 0.99
    """Moving-average momentum."""
    epsilon: PositiveFloat = 1e-3
    """Variance epsilon."""


class LayerNormLayer(_LayerBase):
    """Layer normalisation."""

    type: Literal["layer_norm"]
    """Layer type."""
    epsilon: PositiveFloat = 1e-3
    """Variance epsilon."""


class EmbeddingLayer(_LayerBase):
    """Integer token ids to dense vectors."""

    type: Literal["embedding"]
    """Layer type."""
    input_dim: PositiveInt
    """Vocabulary size."""
    output_dim: PositiveInt
    """Embedding width."""


class LstmLayer(_WeightedLayer):
    """Long short-term memory recurrent layer."""

    type: Literal["lstm"]
    """Layer type."""
    units: PositiveInt
    """Hidden units."""
    return_sequences: StrictBool = False
    """Return the whole sequence rather than the last output."""
    dropout: Annotated[FiniteFloat, Field(ge=0.0, lt=1.0)] = 0.0
    """Input dropout."""


class GruLayer(_WeightedLayer):
    """Gated recurrent unit layer."""

    type: Literal["gru"]
    """Layer type."""
    units: PositiveInt
    """Hidden units."""
    return_sequences: StrictBool = False
    """Return the whole sequence rather than the last output."""
    dropout: Annotated[FiniteFloat, Field(ge=0.0, lt=1.0)] = 0.0
    """Input dropout."""


class ReshapeLayer(_LayerBase):
    """Reshape (batch axis excluded)."""

    type: Literal["reshape"]
    """Layer type."""
    target_shape: Annotated[list[Annotated[StrictInt, Field(ge=-1, le=MAX_INT)]], Field(min_length=1)]
    """New shape; one entry may be -1."""


class ActivationLayer(_LayerBase):
    """A standalone activation."""

    type: Literal["activation"]
    """Layer type."""
    activation: Activation
    """Activation function."""


class AddLayer(_LayerBase):
    """Element-wise sum of its inputs (functional models)."""

    type: Literal["add"]
    """Layer type."""


class ConcatenateLayer(_LayerBase):
    """Concatenation of its inputs along an axis (functional models)."""

    type: Literal["concatenate"]
    """Layer type."""
    axis: Annotated[StrictInt, Field(ge=-8, le=8)] = -1
    """Concatenation axis."""


LAYER_TYPES: tuple[str, ...] = (
    "dense", "conv1d", "conv2d", "depthwise_conv2d", "separable_conv2d", "max_pool1d", "max_pool2d",
    "average_pool2d", "global_average_pool1d", "global_average_pool2d", "global_max_pool2d", "flatten",
    "dropout", "batch_norm", "layer_norm", "embedding", "lstm", "gru", "reshape", "activation", "add",
    "concatenate",
)

# Every other tf_keras layer, by the catalogue's name (the written-out classes above keep their short names).
CATALOGUE_LAYER_TYPES: tuple[str, ...] = tuple(t for t in catalogue() if t not in LAYER_TYPES)


class KerasLayer(_LayerBase):
    """Any other tf_keras layer (``conv2d_transpose``, ``up_sampling2d``, ``bidirectional``, ``multi_head_attention``,
    ...) with its Keras constructor arguments as keys. Names and arguments come from ``base/keras_layers.json``,
    derived from tf_keras (``python -m tfspec.runtime.catalogue --out src/tfspec/base/keras_layers.json``); wrappers take
    their inner layer as a mapping (``layer: {type: lstm, units: 8}``)."""

    model_config = ConfigDict(extra="allow", frozen=True, validate_default=False, regex_engine="python-re")
    type: Literal[CATALOGUE_LAYER_TYPES]  # type: ignore[valid-type]
    """Layer type: the snake_case tf_keras class name (``*Pooling*`` written ``*_pool*``)."""

    @model_validator(mode="before")
    @classmethod
    def _arguments(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        errors = [InitErrorDetails(type=PydanticCustomError("layer_argument", message), loc=loc,
                                   input=value.get(loc[0], value))
                  for loc, message in check_layer_arguments(value)]
        checked = dict(value)
        for key in NESTED_LAYER_ARGS & set(value):
            try:
                checked[key] = _LAYER_ADAPTER().validate_python(value[key]).model_dump(mode="json", exclude_unset=True)
            except ValidationError as error:
                errors.extend(InitErrorDetails(type=PydanticCustomError("layer_argument", e["msg"]),
                                               loc=(key, *e["loc"]), input=e.get("input")) for e in error.errors())
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return checked


Layer = Annotated[
    DenseLayer
    | Conv1DLayer
    | Conv2DLayer
    | DepthwiseConv2DLayer
    | SeparableConv2DLayer
    | MaxPool1DLayer
    | MaxPool2DLayer
    | AveragePool2DLayer
    | GlobalAveragePool1DLayer
    | GlobalAveragePool2DLayer
    | GlobalMaxPool2DLayer
    | FlattenLayer
    | DropoutLayer
    | BatchNormLayer
    | LayerNormLayer
    | EmbeddingLayer
    | LstmLayer
    | GruLayer
    | ReshapeLayer
    | ActivationLayer
    | AddLayer
    | ConcatenateLayer
    | KerasLayer,
    Field(discriminator="type"),
]


@functools.cache
def _LAYER_ADAPTER() -> TypeAdapter[Any]:
    return TypeAdapter(Layer)

DeviceName = Annotated[str, StringConstraints(pattern=r"^(CPU|GPU|TPU):[0-9]{1,2}$")]


class Placement(StrictModel):
    """Model-parallel placement: a contiguous group of layers pinned to one device."""

    device: DeviceName
    """Logical device, e.g. ``GPU:0``."""
    layers: Annotated[list[Identifier], Field(min_length=1)]
    """Names of the layers built under this device scope."""


class InputSpec(StrictModel):
    """One named model input."""

    name: Identifier
    """Input name; it becomes the serving signature's input key."""
    shape: Annotated[list[PositiveInt], Field(min_length=1)]
    """Shape without the batch axis."""
    dtype: Literal["float32", "int32", "int64"] = "float32"
    """Element type."""


class SequentialModel(StrictModel):
    """A stack of layers, each feeding the next."""

    kind: Literal["sequential"]
    """Model kind."""
    input_shape: Annotated[list[PositiveInt], Field(min_length=1)]
    """Shape of one example, without the batch axis."""
    input_dtype: Literal["float32", "int32", "int64"] = "float32"
    """Element type of the input."""
    input_name: Identifier = "inputs"
    """Name of the input: the serving signature's input key and the model-info ``input.name``."""
    output_name: Identifier = "outputs"
    """Name of the output: the serving signature's output key."""
    layers: Annotated[list[Layer], Field(min_length=1)]
    """Layers in order; Keras names and arguments."""
    placement: list[Placement] | None = None
    """Optional model-parallel placement of layer groups on devices."""


class FunctionalModel(StrictModel):
    """A graph of layers: each layer names its inputs."""

    kind: Literal["functional"]
    """Model kind."""
    inputs: Annotated[list[InputSpec], Field(min_length=1, max_length=16)]
    """Model inputs. Each name is a serving signature input key; with several inputs each one takes the
    data source's features of the same name (``npz`` ``features`` / ``csv`` ``feature_columns`` as a mapping,
    ``tfrecord`` features by name)."""
    layers: Annotated[list[Layer], Field(min_length=1)]
    """Layers; every layer has a ``name`` and ``inputs``."""
    outputs: Annotated[list[Identifier], Field(min_length=1, max_length=1)]
    """Name of the layer whose output is the model output."""
    output_name: Identifier = "outputs"
    """Name of the output: the serving signature's output key."""
    placement: list[Placement] | None = None
    """Optional model-parallel placement of layer groups on devices."""

    @property
    def input_shape(self) -> list[int]:
        return self.inputs[0].shape

    @property
    def input_name(self) -> str:
        return self.inputs[0].name

    @property
    def input_dtype(self) -> str:
        return self.inputs[0].dtype


class BuilderModel(StrictModel):
    """A model returned by a Python function ``package.module:function(**args)`` (a tf_keras model)."""

    kind: Literal["builder"]
    """Model kind."""
    builder: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*:[A-Za-z_][A-Za-z0-9_]*$")]
    """Import path of the builder, ``package.module:function``."""
    args: dict[Identifier, Any] = {}
    """Keyword arguments passed to the builder."""
    input_shape: Annotated[list[PositiveInt], Field(min_length=1)]
    """Shape of one example, without the batch axis."""
    input_dtype: Literal["float32", "int32", "int64"] = "float32"
    """Element type of the input."""
    input_name: Identifier = "inputs"
    """Serving signature input key."""
    output_name: Identifier = "outputs"
    """Serving signature output key."""
    output_activation: Literal["softmax", "sigmoid", "linear"] = "softmax"
    """Activation of the builder's final layer (the validator checks it against the loss)."""


class SavedModelModel(StrictModel):
    """An existing SavedModel (e.g. from another pipeline), fine-tuned or used as it is."""

    kind: Literal["saved_model"]
    """Model kind."""
    path: DataLocation
    """SavedModel folder, relative to the spec file; or (with ``external_locations``) an ``s3://`` or ``gs://``
    folder (staged into a bounded local folder before loading), a ``file://`` URL or an absolute path."""
    external_locations: StrictBool = False
    """Allow ``path`` outside the spec's folder (as ``data.external_locations`` does for data)."""
    storage: DataStorage | None = None
    """Endpoint and credential references (variable names) for an ``s3://`` / ``gs://`` ``path``."""
    input_shape: Annotated[list[PositiveInt], Field(min_length=1)]
    """Shape of one example, without the batch axis."""
    input_dtype: Literal["float32", "int32", "int64"] = "float32"
    """Element type of the input."""
    input_name: Identifier = "inputs"
    """Serving signature input key (with ``serve_as_is``: read from the signature instead)."""
    output_name: Identifier = "outputs"
    """Serving signature output key. With ``serve_as_is``: the output of ``signature`` that verify (serving and
    tflite alike), the clients and ``model_info.json`` use; needed when the signature has several float
    outputs (e.g. class ids and probabilities: name the probabilities); by default its one float output."""
    output_activation: Literal["softmax", "sigmoid", "linear"] = "softmax"
    """Activation of the model's final layer (the validator checks it against the loss)."""
    trainable: StrictBool = True
    """Train (fine-tune) the loaded model; ``false`` skips training."""
    serve_as_is: StrictBool = False
    """Deploy the SavedModel unchanged: any SavedModel (Keras, TF2 ``tf.Module``, TF1 / Estimator export), no
    training or compression; tf_serving serves the original files with all their signatures. ``tfspec build``
    reads the signature's keys, dtypes and shapes from ``saved_model.pb`` (without TensorFlow) and every
    generated client and ``model_info.json`` uses them (``input_name`` unused; ``output_name`` picks one of
    several outputs)."""
    signature: Identifier = "serving_default"
    """With ``serve_as_is``: the signature that verify, warmup, the clients and the tflite conversion use (a
    predict signature: one tensor in, a float output). The others are served unchanged beside it; a name the
    SavedModel does not have is refused at validate, with the names it has."""


# keras.applications backbones offered by name (their constructors take include_top, weights, input_shape).
APPLICATIONS = Literal[
    "MobileNet", "MobileNetV2", "MobileNetV3Small", "MobileNetV3Large", "EfficientNetB0", "EfficientNetB1",
    "EfficientNetB2", "EfficientNetB3", "EfficientNetV2B0", "EfficientNetV2B1", "EfficientNetV2S", "ResNet50",
    "ResNet50V2", "ResNet101", "DenseNet121", "NASNetMobile", "InceptionV3", "Xception", "VGG16", "ConvNeXtTiny",
]


class FineTune(StrictModel):
    """Second phase of transfer learning: unfreeze the top of the backbone and train on at a lower rate."""

    unfreeze: PositiveInt | Literal["all"]
    """How many of the backbone's last layers to unfreeze, or ``all``. BatchNorm layers stay frozen and in
    inference mode (the Keras transfer-learning guide: their statistics would be overwritten)."""
    epochs: PositiveInt
    """Epochs of the fine-tuning phase (after ``training.epochs`` of the head phase)."""
    learning_rate: PositiveFloat
    """Learning rate of the fine-tuning phase (the optimizer is the spec's, recompiled at this rate)."""


class ApplicationModel(StrictModel):
    """A ``keras.applications`` backbone without its top, weights from a local file, and a head of spec layers.

    Phase one trains the head with the backbone frozen (called with ``training=False``, so BatchNorm uses its
    moving statistics); phase two, with ``fine_tune``, unfreezes the backbone's top layers at a lower rate."""

    kind: Literal["application"]
    """Model kind."""
    application: APPLICATIONS
    """The ``keras.applications`` function, e.g. ``MobileNetV2``."""
    args: dict[Identifier, Any] = {}
    """Further keyword arguments of that function, e.g. ``{alpha: 0.35}`` for MobileNetV2."""
    weights: RelativePath | None = None
    """Backbone weights file (``.h5`` from ``save_weights``), relative to the spec; nothing is downloaded.
    Random initialisation when omitted."""
    input_shape: Annotated[list[PositiveInt], Field(min_length=3, max_length=3)]
    """Image height, width and channels."""
    input_name: Identifier = "inputs"
    """Serving signature input key."""
    output_name: Identifier = "outputs"
    """Serving signature output key."""
    head: Annotated[list[Layer], Field(min_length=1)]
    """Layers on top of the backbone's feature map, in order (e.g. pooling, dropout, dense)."""
    fine_tune: FineTune | None = None
    """The unfreezing phase; head only when omitted."""

    @property
    def input_dtype(self) -> str:
        return "float32"


ModelSpec = Annotated[
    SequentialModel | FunctionalModel | BuilderModel | SavedModelModel | ApplicationModel,
    Field(discriminator="kind"),
]
