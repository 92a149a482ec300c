"""A nested functional model (a backbone) flattened into one graph: same outputs, the nested layers side by
side with the head's, the backbone's BatchNorm kept in inference mode."""

from __future__ import annotations

import os

import numpy as np

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def _nested() -> object:
    import tf_keras as keras

    inner_in = keras.Input((6,))
    h = keras.layers.Dense(8, name="inner_dense")(inner_in)
    h = keras.layers.BatchNormalization(name="inner_bn")(h)
    backbone = keras.Model(inner_in, keras.layers.Activation("relu", name="inner_relu")(h), name="backbone")
    backbone.trainable = False
    outer_in = keras.Input((6,), name="inputs")
    x = backbone(outer_in, training=False)
    model = keras.Model(outer_in, keras.layers.Dense(3, name="head")(x), name="model")
    bn = backbone.get_layer("inner_bn")
    bn.moving_mean.assign(np.full(8, 0.5, np.float32))
    bn.moving_variance.assign(np.full(8, 4.0, np.float32))
    return model


def test_flattened_model_has_the_backbone_layers_and_the_same_outputs() -> None:
    from tfspec.runtime.flatten import flatten_model, has_nested_models

    model = _nested()
    flat, nested = flatten_model(model)
    assert nested == ["backbone"] and has_nested_models(model) and not has_nested_models(flat)
    names = [layer.name for layer in flat.layers]
    assert names == ["inputs", "inner_dense", "inner_bn", "inner_relu", "head"]
    x = np.random.default_rng(0).normal(size=(5, 6)).astype(np.float32)
    expected = model(x, training=False).numpy()
    np.testing.assert_allclose(flat(x, training=False).numpy(), expected, atol=1e-6)
    # BatchNorm in inference mode even in a training call (a compression stage's fine-tuning)
    np.testing.assert_allclose(flat(x, training=True).numpy(), expected, atol=1e-6)
    assert not flat.get_layer("inner_bn").trainable
    assert flat.get_layer("inner_dense").trainable and flat.get_layer("head").trainable


def test_a_flat_model_is_returned_as_it_is() -> None:
    import tf_keras as keras

    from tfspec.runtime.flatten import flatten_model

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    assert flatten_model(model) == (model, [])
