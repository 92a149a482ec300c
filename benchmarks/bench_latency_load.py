"""Latency figures under machine load: one timed call per example against the fastest of 3 (what `evaluate` and
`verify` report since the latency gates were made to show load).

    .venv/bin/python benchmarks/bench_latency_load.py [ROUNDS]

A digits-sized MLP (64-128-10) as a tf_keras model (eager single-example calls, the Keras baseline) and as a
float `.tflite` on LiteRT (one thread), 200 single examples each, timed both ways in alternating rounds
with the load average printed beside each. Run it on an idle machine and under load (e.g. a test suite
running beside it) to see how far each figure moves.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from tfspec.runtime.quality import machine_load, percentiles, time_single_calls  # noqa: E402
from tfspec.runtime.tf import import_tf  # noqa: E402


def _tflite_call(model: object, folder: Path) -> object:
    from ai_edge_litert.interpreter import Interpreter

    tf, _ = import_tf()
    path = folder / "m.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    index = interpreter.get_input_details()[0]["index"]

    def call(sample: np.ndarray) -> None:
        interpreter.set_tensor(index, sample)
        interpreter.invoke()

    return call


def main(rounds: int) -> None:
    _, keras = import_tf()
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    x = np.random.default_rng(0).random((200, 64), dtype=np.float32)
    with tempfile.TemporaryDirectory() as folder:
        calls = {"keras": lambda s: model(s, training=False), "tflite": _tflite_call(model, Path(folder))}
        for call in calls.values():
            time_single_calls(call, x[:20], repeats=1)  # warm up
        print("| model | load (1 min) / cores | one call: p50 / p95 ms | fastest of 3: p50 / p95 ms |")
        print("| --- | --- | --- | --- |")
        for _ in range(rounds):
            for name, call in calls.items():
                load = machine_load()
                one = percentiles(time_single_calls(call, x, repeats=1))
                best = percentiles(time_single_calls(call, x, repeats=3))
                print(f"| {name} | {load['load_1m']} / {load['cores']} | {one[0]:.3f} / {one[1]:.3f} | "
                      f"{best[0]:.3f} / {best[1]:.3f} |", flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
