"""The work of ``bench_vs_script.py``'s CNN spec written by hand with the same libraries: a small CNN on
scikit-learn's 8x8 digits, trained, pruned to 50 % (polynomial decay over 4 fine-tuning epochs, the schedule
tfspec derives), quantization-aware fine-tuned with the sparsity preserved (2 epochs), converted to int8,
and checked on LiteRT against the trained model's test accuracy.

    .venv/bin/python benchmarks/handwritten_cnn.py OUT_FOLDER
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

BATCH = 64


def pruning_schedule(examples: int, epochs: int, target: float) -> object:
    """Polynomial decay whose last mask update lands one epoch before the end, about 10 updates."""
    per_epoch = int(np.ceil(examples / BATCH))
    end = epochs * per_epoch - per_epoch - 1
    frequency = max(1, min(100, end // 10))
    return tfmot.sparsity.keras.PolynomialDecay(0.0, target, begin_step=0, end_step=frequency * (end // frequency),
                                                frequency=frequency)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    x = (digits.data / 16.0).astype(np.float32).reshape(-1, 8, 8, 1)
    y = digits.target.astype(np.int64)
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, random_state=7, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.1 / 0.8, random_state=7,
                                                      stratify=y_rest)
    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((8, 8, 1)),
        keras.layers.Conv2D(16, 3, padding="same", activation="relu", name="conv1"),
        keras.layers.MaxPool2D(2),
        keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="conv2"),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax", name="logits"),
    ])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=15, batch_size=BATCH, verbose=0)
    trained = model.evaluate(x_test, y_test, verbose=0)[1]
    print(f"trained: test accuracy {trained:.4f}")

    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    pruned = tfmot.sparsity.keras.prune_low_magnitude(clone, pruning_schedule=pruning_schedule(len(x_train), 4, 0.5))
    pruned.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    pruned.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=4, batch_size=BATCH, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    pruned = tfmot.sparsity.keras.strip_pruning(pruned)
    kernel = pruned.get_layer("conv2").kernel.numpy()
    print(f"pruned: conv2 sparsity {float(np.mean(kernel == 0)):.3f}")

    annotated = tfmot.quantization.keras.quantize_annotate_model(pruned)
    qat = tfmot.quantization.keras.quantize_apply(
        annotated, tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
    qat.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    qat.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=2, batch_size=BATCH, verbose=0)
    print(f"pruned + QAT: test accuracy {qat.evaluate(x_test, y_test, verbose=0)[1]:.4f}")

    converter = tf.lite.TFLiteConverter.from_keras_model(qat)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x_train[i:i + 1]] for i in range(200))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    path = out / "digits_cnn.tflite"
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
    accuracy = correct / len(x_test)
    print(f"tflite int8: {path.stat().st_size} bytes, LiteRT test accuracy {accuracy:.4f}")
    if trained - accuracy > 0.02:
        sys.exit(f"int8 accuracy drop {trained - accuracy:.4f} > 0.02")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
