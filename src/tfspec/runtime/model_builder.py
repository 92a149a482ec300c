"""The plan's model → tf_keras model: sequential layers, a functional graph, a builder function, a SavedModel
or an application backbone with a head.

Layers are the plan's typed layers (``tfspec.plan.layers``: Keras names and arguments, every layer named by
the compiler). ``placement`` groups build their layers under ``tf.device`` (``device_for`` is the hook).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.plan import (ActivationLayerParams, ApplicationModelParams, BatchNormLayerParams, BuilderModelParams,
                         CatalogueLayerParams, ConcatenateLayerParams, Conv1DLayerParams, Conv2DLayerParams,
                         DenseLayerParams, DepthwiseConv2DLayerParams, DropoutLayerParams, EmbeddingLayerParams,
                         FunctionalModelParams, LayerNormLayerParams, LayerParams, ModelParams, PlainLayerParams,
                         PoolLayerParams, RecurrentLayerParams, RegularizerParams, ReshapeLayerParams,
                         SavedModelModelParams, SeparableConv2DLayerParams, SequentialModelParams)

from .errors import ModelError
from .tf import import_tf

__all__ = ["build_model", "build_layer", "device_for", "load_saved_model", "all_layers",
           "recurrent_layers", "unfreeze_backbone", "adapt_preprocessing", "LAYER_BUILDERS", "RECURRENT_CLASSES", "BACKBONE_NAME"]

# Layers whose TFLite form keeps state in variable tensors (and needs a static batch to convert).
RECURRENT_CLASSES = frozenset({"LSTM", "GRU", "SimpleRNN", "RNN", "Bidirectional", "ConvLSTM1D", "ConvLSTM2D"})


def all_layers(model: Any) -> list[Any]:
    """Every layer, nested models' (backbones') layers included."""
    out: list[Any] = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        if hasattr(layer, "layers"):
            out.extend(all_layers(layer))
    return out


def recurrent_layers(model: Any) -> list[str]:
    """Names of the recurrent layers of ``model`` (wrapped ones included: tfmot wrappers keep ``.layer``)."""
    return [layer.name for layer in all_layers(model)
            if type(getattr(layer, "layer", layer)).__name__ in RECURRENT_CLASSES]



def _regularizer(value: RegularizerParams | None) -> Any:
    if value is None:
        return None
    _, keras = import_tf()
    return keras.regularizers.L1L2(l1=value.l1, l2=value.l2)


def _weighted(layer: Any) -> dict[str, Any]:
    return {
        "use_bias": layer.use_bias,
        "kernel_initializer": layer.kernel_initializer,
        "kernel_regularizer": _regularizer(layer.kernel_regularizer),
        "bias_regularizer": _regularizer(layer.bias_regularizer),
    }


def _pair(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _dense(L: Any, d: DenseLayerParams) -> Any:
    return L.Dense(d.units, activation=d.activation, name=d.name, **_weighted(d))


def _conv1d(L: Any, d: Conv1DLayerParams) -> Any:
    return L.Conv1D(d.filters, d.kernel_size, strides=d.strides, padding=d.padding, activation=d.activation,
                    name=d.name, **_weighted(d))


def _conv2d(L: Any, d: Conv2DLayerParams) -> Any:
    return L.Conv2D(d.filters, _pair(d.kernel_size), strides=_pair(d.strides), padding=d.padding,
                    dilation_rate=_pair(d.dilation_rate), activation=d.activation, name=d.name, **_weighted(d))


def _depthwise(L: Any, d: DepthwiseConv2DLayerParams) -> Any:
    return L.DepthwiseConv2D(_pair(d.kernel_size), depth_multiplier=d.depth_multiplier, strides=_pair(d.strides),
                             padding=d.padding, activation=d.activation, use_bias=d.use_bias,
                             depthwise_initializer=d.kernel_initializer,
                             depthwise_regularizer=_regularizer(d.kernel_regularizer),
                             bias_regularizer=_regularizer(d.bias_regularizer), name=d.name)


def _separable(L: Any, d: SeparableConv2DLayerParams) -> Any:
    init = d.kernel_initializer
    reg = d.kernel_regularizer
    return L.SeparableConv2D(d.filters, _pair(d.kernel_size), strides=_pair(d.strides), padding=d.padding,
                             activation=d.activation, use_bias=d.use_bias, depthwise_initializer=init,
                             pointwise_initializer=init, depthwise_regularizer=_regularizer(reg),
                             pointwise_regularizer=_regularizer(reg), bias_regularizer=_regularizer(d.bias_regularizer),
                             name=d.name)


def _pool(cls_name: str) -> Callable[[Any, PoolLayerParams], Any]:
    def build(L: Any, d: PoolLayerParams) -> Any:
        return getattr(L, cls_name)(pool_size=_pair(d.pool_size),
                                    strides=_pair(d.strides) if d.strides is not None else None,
                                    padding=d.padding, name=d.name)
    return build


def _recurrent(cls_name: str) -> Callable[[Any, RecurrentLayerParams], Any]:
    def build(L: Any, d: RecurrentLayerParams) -> Any:
        return getattr(L, cls_name)(d.units, return_sequences=d.return_sequences, dropout=d.dropout, name=d.name,
                                    **_weighted(d))
    return build


def _plain(cls_name: str) -> Callable[[Any, PlainLayerParams], Any]:
    return lambda L, d: getattr(L, cls_name)(name=d.name)


def _dropout(L: Any, d: DropoutLayerParams) -> Any:
    return L.Dropout(d.rate, name=d.name)


def _batch_norm(L: Any, d: BatchNormLayerParams) -> Any:
    return L.BatchNormalization(momentum=d.momentum, epsilon=d.epsilon, name=d.name)


def _layer_norm(L: Any, d: LayerNormLayerParams) -> Any:
    return L.LayerNormalization(epsilon=d.epsilon, name=d.name)


def _embedding(L: Any, d: EmbeddingLayerParams) -> Any:
    return L.Embedding(d.input_dim, d.output_dim, name=d.name)


def _reshape(L: Any, d: ReshapeLayerParams) -> Any:
    return L.Reshape(tuple(d.target_shape), name=d.name)


def _activation(L: Any, d: ActivationLayerParams) -> Any:
    return L.Activation(d.activation, name=d.name)


def _concatenate(L: Any, d: ConcatenateLayerParams) -> Any:
    return L.Concatenate(axis=d.axis, name=d.name)


# ``(keras.layers, layer params) → layer`` of every written-out layer type
LAYER_BUILDERS: dict[str, Callable[[Any, Any], Any]] = {
    "dense": _dense,
    "conv1d": _conv1d,
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise,
    "separable_conv2d": _separable,
    "max_pool1d": _pool("MaxPooling1D"),
    "max_pool2d": _pool("MaxPooling2D"),
    "average_pool2d": _pool("AveragePooling2D"),
    "global_average_pool1d": _plain("GlobalAveragePooling1D"),
    "global_average_pool2d": _plain("GlobalAveragePooling2D"),
    "global_max_pool2d": _plain("GlobalMaxPooling2D"),
    "flatten": _plain("Flatten"),
    "dropout": _dropout,
    "batch_norm": _batch_norm,
    "layer_norm": _layer_norm,
    "embedding": _embedding,
    "lstm": _recurrent("LSTM"),
    "gru": _recurrent("GRU"),
    "reshape": _reshape,
    "activation": _activation,
    "add": _plain("Add"),
    "concatenate": _concatenate,
}

_MERGE_TYPES = {"add", "concatenate"}


# Catalogue layers that take their inputs as one list (the others take several inputs positionally,
# e.g. multi_head_attention(query, value)).
_LIST_INPUT_CLASSES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"})


def _catalogue_layer(keras: Any, layer: CatalogueLayerParams) -> Any:
    """A layer of the tf_keras catalogue: ``keras.layers.<class>(**arguments)``; wrapped layers built first."""
    wrapped = {argument: build_layer(inner) for argument, inner in layer.layers.items()}
    return getattr(keras.layers, layer.keras_class)(name=layer.name, **layer.arguments, **wrapped)


def build_layer(layer: LayerParams) -> Any:
    """One tf_keras layer from its plan params (a written-out type, or any layer of the tf_keras catalogue)."""
    _, keras = import_tf()
    if isinstance(layer, CatalogueLayerParams):
        return _catalogue_layer(keras, layer)
    return LAYER_BUILDERS[layer.type](keras.layers, layer)


def _call(layer: LayerParams, built: Any, args: list[Any]) -> Any:
    """Call a functional layer on its inputs: a list for merging layers, positionally for the others."""
    if len(args) == 1 and layer.type not in _MERGE_TYPES:
        return built(args[0])
    if layer.type in _MERGE_TYPES or type(built).__name__ in _LIST_INPUT_CLASSES:
        return built(args)
    return built(*args)


def device_for(model: ModelParams) -> Callable[[str], str | None]:
    """Layer name → the device its ``placement`` group names (None: let TensorFlow place it)."""
    placement = model.placement if isinstance(model, (SequentialModelParams, FunctionalModelParams)) else None
    table = {name: group.device for group in placement or [] for name in group.layers}
    return table.get


@contextlib.contextmanager
def _device_scope(device: str | None) -> Iterator[None]:
    if device is None:
        yield
        return
    tf, _ = import_tf()
    with tf.device(f"/{device}"):
        yield


def _sequential(model: SequentialModelParams) -> Any:
    _, keras = import_tf()
    place = device_for(model)
    inputs = keras.Input(shape=tuple(model.input_shape), dtype=model.input_dtype, name=model.input_name)
    if not model.placement:
        return keras.Sequential([inputs, *(build_layer(layer) for layer in model.layers)], name="model")
    x = inputs
    for layer in model.layers:
        with _device_scope(place(layer.name)):
            x = build_layer(layer)(x)
    return keras.Model(inputs, x, name="model")


def _functional(model: FunctionalModelParams) -> Any:
    _, keras = import_tf()
    place = device_for(model)
    tensors: dict[str, Any] = {}
    model_inputs = []
    for spec_input in model.inputs:
        tensor = keras.Input(shape=tuple(spec_input.shape), dtype=spec_input.dtype, name=spec_input.name)
        tensors[spec_input.name] = tensor
        model_inputs.append(tensor)
    for i, layer in enumerate(model.layers):
        feeds = layer.inputs or []
        missing = [n for n in feeds if n not in tensors]
        if missing or not feeds:
            raise ModelError(("model", "layers", i, "inputs"), f"layer {layer.name!r} needs inputs defined before it"
                             + (f" (unknown: {', '.join(missing)})" if missing else ""))
        args = [tensors[n] for n in feeds]
        with _device_scope(place(layer.name)):
            tensors[layer.name] = _call(layer, build_layer(layer), args)
    outputs = [tensors[n] for n in model.outputs]
    return keras.Model(model_inputs, outputs[0] if len(outputs) == 1 else outputs, name="model")


def _builder(model: BuilderModelParams, spec_dir: Path) -> Any:
    _, keras = import_tf()
    module_name, _, function_name = model.builder.partition(":")
    added = str(spec_dir) not in sys.path
    if added:
        sys.path.insert(0, str(spec_dir))
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ModelError(("model", "builder"), f"cannot import {model.builder!r}: {error}") from error
    finally:
        if added:
            sys.path.remove(str(spec_dir))
    built = function(**model.args)
    if not isinstance(built, keras.Model):
        raise ModelError(("model", "builder"), f"{model.builder} returned {type(built).__name__}, not a tf_keras "
                         "Model", "build it with `import tf_keras`, not Keras 3")
    expected = (None, *model.input_shape)
    if tuple(built.input_shape) != expected:
        raise ModelError(("model", "input_shape"), f"the builder's model takes {tuple(built.input_shape)[1:]}, "
                         f"the spec says {tuple(model.input_shape)}")
    return built


def load_saved_model(path: Path) -> Any:
    """A tf_keras model from a Keras SavedModel folder or ``.keras`` file (``model.path``)."""
    _, keras = import_tf()
    if not path.exists():
        raise ModelError(("model", "path"), f"{path} does not exist")
    try:
        return keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError) as error:
        raise ModelError(("model", "path"), f"{path} is not a Keras SavedModel tf_keras can load: {error}") from error


BACKBONE_NAME = "backbone"


def _application(model: ApplicationModelParams, spec_dir: Path) -> Any:
    """``keras.applications.<name>(include_top=False)`` frozen, its weights from a local file, and the head."""
    _, keras = import_tf()
    shape = tuple(model.input_shape)
    try:
        backbone = getattr(keras.applications, model.application)(include_top=False, weights=None,
                                                                   input_shape=shape, **model.args)
    except (TypeError, ValueError) as error:
        raise ModelError(("model", "args"), f"{model.application} rejected its arguments: {error}") from error
    backbone._name = BACKBONE_NAME  # a stable name: the fine-tuning phase and the layer summary find it
    if model.weights is not None:
        path = spec_dir / model.weights
        try:
            backbone.load_weights(str(path))
        except (OSError, ValueError) as error:
            raise ModelError(("model", "weights"), f"cannot load {model.weights} into {model.application}"
                             f"{model.args or ''}: {error}",
                             "save it with save_weights from the same application and arguments") from error
    backbone.trainable = False
    inputs = keras.Input(shape=shape, name=model.input_name)
    x = backbone(inputs, training=False)  # BatchNorm in inference mode in both phases (Keras' transfer guide)
    for layer in model.head:
        x = build_layer(layer)(x)
    return keras.Model(inputs, x, name="model")


def unfreeze_backbone(model: Any, unfreeze: int | str) -> int:
    """Make the backbone's top ``unfreeze`` layers (or ``all``) trainable, BatchNorm excepted; returns how
    many layers now train."""
    _, keras = import_tf()
    backbone = model.get_layer(BACKBONE_NAME)
    backbone.trainable = True
    layers = backbone.layers
    cut = 0 if unfreeze == "all" else max(len(layers) - int(unfreeze), 0)
    for i, layer in enumerate(layers):
        layer.trainable = i >= cut and not isinstance(layer, keras.layers.BatchNormalization)
    return sum(1 for layer in layers if layer.trainable and layer.weights)


def adapt_preprocessing(model: Any, features: Any) -> list[str]:
    """Adapt every ``normalization`` layer the spec gave no ``mean``/``variance`` on the training split's
    ``features`` (an array, or a batched ``tf.data`` pipeline: streamed, never loaded whole); what reaches
    that layer is the raw input, or the outputs of the layers before it. Returns the adapted layers' names."""
    _, keras = import_tf()
    adapted = []
    for layer in getattr(model, "layers", []):
        if type(layer).__name__ != "Normalization" or layer.input_mean is not None:
            continue
        seen = features
        if layer.input is not model.inputs[0]:
            before = keras.Model(model.inputs, layer.input)
            seen = (before.predict(features, batch_size=256, verbose=0) if isinstance(features, np.ndarray)
                    else features.map(lambda x: before(x, training=False)))
        layer.adapt(seen)
        adapted.append(layer.name)
    return adapted


def build_model(model: ModelParams, *, spec_dir: Path, seed: int | None = None) -> Any:
    """The tf_keras model the plan's ``model`` params describe (weights seeded by ``seed``)."""
    _, keras = import_tf()
    if seed is not None:
        keras.utils.set_random_seed(seed)
    if isinstance(model, SequentialModelParams):
        return _sequential(model)
    if isinstance(model, FunctionalModelParams):
        return _functional(model)
    if isinstance(model, BuilderModelParams):
        return _builder(model, spec_dir)
    if isinstance(model, SavedModelModelParams):
        from .staging import StagingError, staged

        try:
            with staged(spec_dir, model.path, model.storage) as folder:  # a bucket: a local copy
                return load_saved_model(folder)
        except StagingError as error:
            raise ModelError(("model", "path"), str(error)) from None
    if isinstance(model, ApplicationModelParams):
        return _application(model, spec_dir)
    raise TypeError(f"unknown model {type(model).__name__}")
