"""Spec model → tf_keras model: sequential layers, a functional graph, a builder function or a SavedModel.

Layer dicts are the plan's JSON form of ``tfspec.spec.model`` layers (Keras names and arguments). Layers
without a ``name`` get ``<type>_<index>`` so names are the same in every process (Keras' own counters are
not). ``placement`` groups build their layers under ``tf.device`` (``device_for`` is the hook).
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.base.catalogue import NESTED_LAYER_ARGS, SPEC_KEYS, layer_entry

from .errors import ModelError

from .tf import import_tf

__all__ = ["build_model", "build_layer", "layer_name", "device_for", "load_saved_model", "all_layers",
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



def layer_name(layer: dict[str, Any], index: int) -> str:
    return layer.get("name") or f"{layer['type']}_{index}"


def _regularizer(value: dict[str, float] | None) -> Any:
    if not value:
        return None
    _, keras = import_tf()
    return keras.regularizers.L1L2(l1=value.get("l1", 0.0), l2=value.get("l2", 0.0))


def _weighted(layer: dict[str, Any]) -> dict[str, Any]:
    return {
        "use_bias": layer.get("use_bias", True),
        "kernel_initializer": layer.get("kernel_initializer", "glorot_uniform"),
        "kernel_regularizer": _regularizer(layer.get("kernel_regularizer")),
        "bias_regularizer": _regularizer(layer.get("bias_regularizer")),
    }


def _pair(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


def _dense(L: Any, d: dict[str, Any], name: str) -> Any:
    return L.Dense(d["units"], activation=d.get("activation", "linear"), name=name, **_weighted(d))


def _conv1d(L: Any, d: dict[str, Any], name: str) -> Any:
    return L.Conv1D(d["filters"], d["kernel_size"], strides=d.get("strides", 1), padding=d.get("padding", "valid"),
                    activation=d.get("activation", "linear"), name=name, **_weighted(d))


def _conv2d(L: Any, d: dict[str, Any], name: str) -> Any:
    return L.Conv2D(d["filters"], _pair(d["kernel_size"]), strides=_pair(d.get("strides", 1)),
                    padding=d.get("padding", "valid"), dilation_rate=_pair(d.get("dilation_rate", 1)),
                    activation=d.get("activation", "linear"), name=name, **_weighted(d))


def _depthwise(L: Any, d: dict[str, Any], name: str) -> Any:
    return L.DepthwiseConv2D(_pair(d["kernel_size"]), depth_multiplier=d.get("depth_multiplier", 1),
                             strides=_pair(d.get("strides", 1)), padding=d.get("padding", "valid"),
                             activation=d.get("activation", "linear"), use_bias=d.get("use_bias", True),
                             depthwise_initializer=d.get("kernel_initializer", "glorot_uniform"),
                             depthwise_regularizer=_regularizer(d.get("kernel_regularizer")),
                             bias_regularizer=_regularizer(d.get("bias_regularizer")), name=name)


def _separable(L: Any, d: dict[str, Any], name: str) -> Any:
    init = d.get("kernel_initializer", "glorot_uniform")
    reg = d.get("kernel_regularizer")
    return L.SeparableConv2D(d["filters"], _pair(d["kernel_size"]), strides=_pair(d.get("strides", 1)),
                             padding=d.get("padding", "valid"), activation=d.get("activation", "linear"),
                             use_bias=d.get("use_bias", True), depthwise_initializer=init, pointwise_initializer=init,
                             depthwise_regularizer=_regularizer(reg), pointwise_regularizer=_regularizer(reg),
                             bias_regularizer=_regularizer(d.get("bias_regularizer")), name=name)


def _pool(cls_name: str) -> Callable[[Any, dict[str, Any], str], Any]:
    def build(L: Any, d: dict[str, Any], name: str) -> Any:
        strides = d.get("strides")
        return getattr(L, cls_name)(pool_size=_pair(d.get("pool_size", 2)),
                                    strides=_pair(strides) if strides is not None else None,
                                    padding=d.get("padding", "valid"), name=name)
    return build


def _recurrent(cls_name: str) -> Callable[[Any, dict[str, Any], str], Any]:
    def build(L: Any, d: dict[str, Any], name: str) -> Any:
        return getattr(L, cls_name)(d["units"], return_sequences=d.get("return_sequences", False),
                                    dropout=d.get("dropout", 0.0), name=name, **_weighted(d))
    return build


LAYER_BUILDERS: dict[str, Callable[[Any, dict[str, Any], str], Any]] = {
    "dense": _dense,
    "conv1d": _conv1d,
    "conv2d": _conv2d,
    "depthwise_conv2d": _depthwise,
    "separable_conv2d": _separable,
    "max_pool1d": _pool("MaxPooling1D"),
    "max_pool2d": _pool("MaxPooling2D"),
    "average_pool2d": _pool("AveragePooling2D"),
    "global_average_pool1d": lambda L, d, n: L.GlobalAveragePooling1D(name=n),
    "global_average_pool2d": lambda L, d, n: L.GlobalAveragePooling2D(name=n),
    "global_max_pool2d": lambda L, d, n: L.GlobalMaxPooling2D(name=n),
    "flatten": lambda L, d, n: L.Flatten(name=n),
    "dropout": lambda L, d, n: L.Dropout(d["rate"], name=n),
    "batch_norm": lambda L, d, n: L.BatchNormalization(momentum=d.get("momentum", 0.99),
                                                       epsilon=d.get("epsilon", 1e-3), name=n),
    "layer_norm": lambda L, d, n: L.LayerNormalization(epsilon=d.get("epsilon", 1e-3), name=n),
    "embedding": lambda L, d, n: L.Embedding(d["input_dim"], d["output_dim"], name=n),
    "lstm": _recurrent("LSTM"),
    "gru": _recurrent("GRU"),
    "reshape": lambda L, d, n: L.Reshape(tuple(d["target_shape"]), name=n),
    "activation": lambda L, d, n: L.Activation(d["activation"], name=n),
    "add": lambda L, d, n: L.Add(name=n),
    "concatenate": lambda L, d, n: L.Concatenate(axis=d.get("axis", -1), name=n),
}

_MERGE_TYPES = {"add", "concatenate"}


# Catalogue layers that take their inputs as one list (the others take several inputs positionally,
# e.g. multi_head_attention(query, value)).
_LIST_INPUT_CLASSES = frozenset({"Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate", "Dot"})


def _catalogue_layer(keras: Any, layer: dict[str, Any], name: str) -> Any:
    """A layer of the tf_keras catalogue: ``keras.layers.<class>(**arguments)``; wrapped layers built first."""
    entry = layer_entry(layer["type"])
    if entry is None:
        raise ModelError(("type",), f"unknown layer type {layer['type']!r}")
    arguments = {k: v for k, v in layer.items() if k not in SPEC_KEYS and v is not None}
    for key in NESTED_LAYER_ARGS & set(arguments):
        arguments[key] = build_layer({**arguments[key], "name": arguments[key].get("name") or f"{name}_{key}"}, 0)
    return getattr(keras.layers, entry["class"])(name=name, **arguments)


def build_layer(layer: dict[str, Any], index: int) -> Any:
    """One tf_keras layer from its spec dict (a written-out type, or any layer of the tf_keras catalogue)."""
    _, keras = import_tf()
    builder = LAYER_BUILDERS.get(layer["type"])
    if builder is None:
        return _catalogue_layer(keras, layer, layer_name(layer, index))
    return builder(keras.layers, layer, layer_name(layer, index))


def _call(layer: dict[str, Any], built: Any, args: list[Any]) -> Any:
    """Call a functional layer on its inputs: a list for merging layers, positionally for the others."""
    if len(args) == 1 and layer["type"] not in _MERGE_TYPES:
        return built(args[0])
    if layer["type"] in _MERGE_TYPES or type(built).__name__ in _LIST_INPUT_CLASSES:
        return built(args)
    return built(*args)


def device_for(model: dict[str, Any]) -> Callable[[str], str | None]:
    """Layer name → the device its ``placement`` group names (None: let TensorFlow place it)."""
    table = {name: group["device"] for group in model.get("placement") or [] for name in group["layers"]}
    return table.get


@contextlib.contextmanager
def _device_scope(device: str | None) -> Iterator[None]:
    if device is None:
        yield
        return
    tf, _ = import_tf()
    with tf.device(f"/{device}"):
        yield


def _sequential(model: dict[str, Any]) -> Any:
    _, keras = import_tf()
    place = device_for(model)
    inputs = keras.Input(shape=tuple(model["input_shape"]), dtype=model.get("input_dtype", "float32"),
                         name=model.get("input_name", "inputs"))
    if not model.get("placement"):
        layers = [build_layer(layer, i) for i, layer in enumerate(model["layers"])]
        return keras.Sequential([inputs, *layers], name="model")
    x = inputs
    for i, layer in enumerate(model["layers"]):
        with _device_scope(place(layer_name(layer, i))):
            x = build_layer(layer, i)(x)
    return keras.Model(inputs, x, name="model")


def _functional(model: dict[str, Any]) -> Any:
    _, keras = import_tf()
    place = device_for(model)
    tensors: dict[str, Any] = {}
    model_inputs = []
    for spec_input in model["inputs"]:
        tensor = keras.Input(shape=tuple(spec_input["shape"]), dtype=spec_input.get("dtype", "float32"),
                             name=spec_input["name"])
        tensors[spec_input["name"]] = tensor
        model_inputs.append(tensor)
    for i, layer in enumerate(model["layers"]):
        name = layer_name(layer, i)
        feeds = layer.get("inputs") or []
        missing = [n for n in feeds if n not in tensors]
        if missing or not feeds:
            raise ModelError(("model", "layers", i, "inputs"), f"layer {name!r} needs inputs defined before it"
                             + (f" (unknown: {', '.join(missing)})" if missing else ""))
        args = [tensors[n] for n in feeds]
        with _device_scope(place(name)):
            tensors[name] = _call(layer, build_layer(layer, i), args)
    outputs = [tensors[n] for n in model["outputs"]]
    return keras.Model(model_inputs, outputs[0] if len(outputs) == 1 else outputs, name="model")


def _builder(model: dict[str, Any], spec_dir: Path) -> Any:
    _, keras = import_tf()
    module_name, _, function_name = model["builder"].partition(":")
    added = str(spec_dir) not in sys.path
    if added:
        sys.path.insert(0, str(spec_dir))
    try:
        function = getattr(importlib.import_module(module_name), function_name)
    except (ImportError, AttributeError) as error:
        raise ModelError(("model", "builder"), f"cannot import {model['builder']!r}: {error}") from error
    finally:
        if added:
            sys.path.remove(str(spec_dir))
    built = function(**model.get("args", {}))
    if not isinstance(built, keras.Model):
        raise ModelError(("model", "builder"), f"{model['builder']} returned {type(built).__name__}, not a tf_keras "
                         "Model", "build it with `import tf_keras`, not Keras 3")
    expected = (None, *model["input_shape"])
    if tuple(built.input_shape) != expected:
        raise ModelError(("model", "input_shape"), f"the builder's model takes {tuple(built.input_shape)[1:]}, "
                         f"the spec says {tuple(model['input_shape'])}")
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


def _application(model: dict[str, Any], spec_dir: Path) -> Any:
    """``keras.applications.<name>(include_top=False)`` frozen, its weights from a local file, and the head."""
    _, keras = import_tf()
    shape = tuple(model["input_shape"])
    try:
        backbone = getattr(keras.applications, model["application"])(include_top=False, weights=None,
                                                                      input_shape=shape, **model.get("args", {}))
    except (TypeError, ValueError) as error:
        raise ModelError(("model", "args"), f"{model['application']} rejected its arguments: {error}") from error
    backbone._name = BACKBONE_NAME  # a stable name: the fine-tuning phase and the layer summary find it
    if model.get("weights"):
        path = spec_dir / model["weights"]
        try:
            backbone.load_weights(str(path))
        except (OSError, ValueError) as error:
            raise ModelError(("model", "weights"), f"cannot load {model['weights']} into {model['application']}"
                             f"{model.get('args') or ''}: {error}",
                             "save it with save_weights from the same application and arguments") from error
    backbone.trainable = False
    inputs = keras.Input(shape=shape, name=model.get("input_name", "inputs"))
    x = backbone(inputs, training=False)  # BatchNorm in inference mode in both phases (Keras' transfer guide)
    for i, layer in enumerate(model["head"]):
        x = build_layer(layer, i)(x)
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


def build_model(model: dict[str, Any], *, spec_dir: Path, seed: int | None = None) -> Any:
    """The tf_keras model the spec's ``model`` section describes (weights seeded by ``seed``)."""
    _, keras = import_tf()
    if seed is not None:
        keras.utils.set_random_seed(seed)
    kind = model["kind"]
    if kind == "sequential":
        return _sequential(model)
    if kind == "functional":
        return _functional(model)
    if kind == "builder":
        return _builder(model, spec_dir)
    if kind == "saved_model":
        from .staging import StagingError, staged

        try:
            with staged(spec_dir, model["path"], model.get("storage")) as folder:  # a bucket: a local copy
                return load_saved_model(folder)
        except StagingError as error:
            raise ModelError(("model", "path"), str(error)) from None
    if kind == "application":
        return _application(model, spec_dir)
    raise ModelError(("model", "kind"), f"unknown model kind {kind!r}")
