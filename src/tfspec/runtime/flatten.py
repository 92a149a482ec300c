"""A model with nested functional models (a keras.applications backbone) as one flat functional graph.

tfmot wraps layers of a functional or sequential model, never the layers inside a nested model: pruning,
clustering and quantization-aware training of ``input → backbone → head`` would see the backbone as one
layer it cannot wrap. :func:`flatten_model` calls every layer of the nested models again on new tensors,
in graph order, so the result has the backbone's layers (same objects, same weights) side by side with the
head's. The backbone's BatchNormalization layers were called with ``training=False`` (inference mode, the
transfer-learning rule); in the flat graph they keep that by being non-trainable, which tf_keras runs in
inference mode.
"""

from __future__ import annotations

from typing import Any

from .tf import import_tf

__all__ = ["flatten_model", "has_nested_models", "is_graph_model"]


def is_graph_model(layer: Any) -> bool:
    """True for a functional or sequential model (used as a layer: a nested backbone)."""
    return bool(getattr(layer, "_is_graph_network", False))


def has_nested_models(model: Any) -> bool:
    """True when a layer of ``model`` is itself a functional (or sequential) model."""
    return any(is_graph_model(layer) for layer in getattr(model, "layers", []))


def _rebuild(model: Any, inputs: list[Any], frozen_norms: list[Any]) -> Any:
    """The outputs of ``model``'s graph called on ``inputs`` (aligned with ``model.inputs``), nested
    functional models rebuilt the same way instead of being called as one layer."""
    tf, keras = import_tf()
    tensors: dict[int, Any] = {id(t): new for t, new in zip(model.inputs, inputs)}

    def mapped(value: Any) -> Any:
        return tensors[id(value)] if id(value) in tensors else value

    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            layer = node.layer
            args = tf.nest.map_structure(mapped, node.call_args)
            kwargs = tf.nest.map_structure(mapped, node.call_kwargs)
            if is_graph_model(layer):
                inner_inputs = tf.nest.flatten(args[0] if len(args) == 1 else list(args))
                for inner in layer.layers:
                    if isinstance(inner, keras.layers.BatchNormalization):
                        frozen_norms.append(inner)
                outputs = _rebuild(layer, inner_inputs, frozen_norms)
            else:
                outputs = layer(*args, **kwargs)
            for old, new in zip(tf.nest.flatten(node.outputs), tf.nest.flatten(outputs)):
                tensors[id(old)] = new
    return tf.nest.map_structure(lambda t: tensors[id(t)], model._nested_outputs)


def flatten_model(model: Any) -> tuple[Any, list[str]]:
    """``(flat model, names of the nested models flattened)``; ``model`` itself when nothing is nested.

    Every flattened layer becomes trainable (a compression stage fine-tunes the whole model, as it does a
    flat one) except the nested models' BatchNormalization layers, which stay in inference mode.
    """
    _, keras = import_tf()
    nested = [layer.name for layer in model.layers if is_graph_model(layer)]
    if not nested:
        return model, []
    inputs = [keras.Input(shape=t.shape[1:], dtype=t.dtype, name=layer.name)
              for t, layer in zip(model.inputs, model._input_layers)]
    frozen_norms: list[Any] = []
    outputs = _rebuild(model, inputs, frozen_norms)
    flat = keras.Model(inputs if len(inputs) > 1 else inputs[0], outputs, name=model.name)
    for layer in flat.layers:
        layer.trainable = not any(layer is norm for norm in frozen_norms)
    return flat, nested
