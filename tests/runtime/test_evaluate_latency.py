"""The evaluate step times the final Keras model through one traced ``tf.function``, as a server calls it:
timing it eagerly ran every op (and every time step of a recurrent layer) from Python, which made the
``evaluate`` step of a 12-step LSTM take ~30 s of per-op dispatch for 360 timed calls."""

from __future__ import annotations

import numpy as np

from tfspec.runtime.quality import time_single_calls
from tfspec.runtime.steps.evaluate import _compiled_call
from tfspec.runtime.tf import import_tf

tf, keras = import_tf()


class _CountingLayer(keras.layers.Layer):
    """Counts how often its Python ``call`` runs: once per trace in a graph, once per call eagerly."""

    calls = 0

    def call(self, x):  # type: ignore[no-untyped-def]
        _CountingLayer.calls += 1
        return x


def test_timed_calls_run_the_traced_graph_not_python() -> None:
    model = keras.Sequential([keras.Input((12, 3)), _CountingLayer(), keras.layers.LSTM(4),
                              keras.layers.Dense(2, activation="softmax")])
    x = np.random.default_rng(0).normal(size=(20, 12, 3)).astype(np.float32)
    call = _compiled_call(model, x)  # traces once, on the first example
    traced = _CountingLayer.calls
    latencies = time_single_calls(call, x)
    assert len(latencies) == 20
    assert _CountingLayer.calls == traced  # 60 timed calls, no Python run of the layer
    np.testing.assert_allclose(call(x[:1]).numpy(), model(x[:1], training=False).numpy(), rtol=1e-5, atol=1e-6)


def test_several_named_inputs_are_timed_the_same_way() -> None:
    a, b = keras.Input((3,), name="a"), keras.Input((2,), name="b")
    model = keras.Model({"a": a, "b": b}, keras.layers.Dense(2)(keras.layers.Concatenate()([a, b])))
    x = {"a": np.ones((5, 3), np.float32), "b": np.zeros((5, 2), np.float32)}
    assert len(time_single_calls(_compiled_call(model, x), x)) == 5
