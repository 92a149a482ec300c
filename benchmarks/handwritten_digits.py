"""The work of examples/digits/deploy.yaml's android target, written by hand with the same libraries:
train, prune to 70 % (polynomial decay over 10 fine-tuning epochs, the schedule tfspec derives) +
quantization-aware training (sparsity preserved), int8 conversion and a LiteRT accuracy check on the test
split. ``bench_vs_script.py`` times it against `tfspec run`. (No SavedModel: the android target converts
from the Keras model, and tfspec plans an export only for a target that serves a SavedModel.)

    .venv/bin/python benchmarks/handwritten_digits.py OUT_FOLDER
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x, y = (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, random_state=7, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.1 / 0.8, random_state=7,
                                                      stratify=y_rest)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(128, activation="relu", kernel_regularizer=keras.regularizers.l2(1e-4), name="hidden"),
        keras.layers.Dropout(0.2),
        keras.layers.Dense(10, activation="softmax", name="logits"),
    ])
    schedule = keras.optimizers.schedules.ExponentialDecay(1e-3, decay_steps=500, decay_rate=0.9)
    model.compile(keras.optimizers.Adam(schedule), "sparse_categorical_crossentropy", ["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=40, batch_size=64, callbacks=[stop], verbose=0)
    print(f"trained: test accuracy {model.evaluate(x_test, y_test, verbose=0)[1]:.4f}")

    steps = int(np.ceil(len(x_train) / 64))
    end = 10 * steps - steps - 1  # the last mask update one epoch before the end, about 10 updates
    frequency = max(1, min(100, end // 10))
    pruning = tfmot.sparsity.keras.PolynomialDecay(0.0, 0.7, begin_step=0, end_step=frequency * (end // frequency),
                                                   frequency=frequency)
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    pruned = tfmot.sparsity.keras.prune_low_magnitude(clone, pruning_schedule=pruning)
    pruned.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    pruned.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=10, batch_size=64, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    pruned = tfmot.sparsity.keras.strip_pruning(pruned)

    annotated = tfmot.quantization.keras.quantize_annotate_model(pruned)
    qat = tfmot.quantization.keras.quantize_apply(
        annotated, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
    qat.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    qat.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=2, batch_size=64, verbose=0)
    print(f"pruned + QAT: test accuracy {qat.evaluate(x_test, y_test, verbose=0)[1]:.4f}")

    converter = tf.lite.TFLiteConverter.from_keras_model(qat)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x_train[i:i + 1]] for i in range(200))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    path = out / "digits.tflite"
    path.write_bytes(converter.convert())

    interpreter = Interpreter(model_path=str(path), num_threads=1)
    interpreter.allocate_tensors()
    inp, outp = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    correct = 0
    for i in range(len(x_test)):
        sample = np.clip(np.round(x_test[i:i + 1] / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], sample)
        interpreter.invoke()
        correct += int(np.argmax(interpreter.get_tensor(outp["index"])[0]) == y_test[i])
    print(f"tflite int8: {path.stat().st_size} bytes, LiteRT test accuracy {correct / len(x_test):.4f}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
