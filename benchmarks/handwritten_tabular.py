"""The work of ``bench_vs_script.py``'s tabular spec (what ``tfspec init --from data.csv --label diagnosis``
writes for scikit-learn's breast-cancer table, its tflite target), written by hand with the same libraries:
read the CSV, check it, split it (stratified), normalise with the training split's statistics, train the
MLP with early stopping, convert to int8 and check the accuracy on LiteRT against the trained model.

    .venv/bin/python benchmarks/handwritten_tabular.py DATA_CSV OUT_FOLDER
"""

from __future__ import annotations

import csv
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

LABEL = "diagnosis"


def read_table(path: Path) -> tuple[np.ndarray, np.ndarray, list[str]]:
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    header, body = rows[0], rows[1:]
    at = header.index(LABEL)
    x = np.asarray([[float(v) for i, v in enumerate(row) if i != at] for row in body], dtype=np.float32)
    names = sorted({row[at] for row in body})
    y = np.asarray([names.index(row[at]) for row in body], dtype=np.int64)
    if not np.isfinite(x).all():
        sys.exit("the table has missing or infinite values")
    return x, y, names


def main(data: Path, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    x, y, names = read_table(data)
    counts = np.bincount(y, minlength=len(names))
    print(f"{len(x)} rows, {x.shape[1]} features, classes {dict(zip(names, counts.tolist()))}")
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=0.2, random_state=7, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(x_rest, y_rest, test_size=0.1 / 0.8, random_state=7,
                                                      stratify=y_rest)
    mean, std = x_train.mean(axis=0), x_train.std(axis=0)
    std = np.where(std < 1e-7, 1.0, std).astype(np.float32)
    x_train, x_val, x_test = ((a - mean) / std for a in (x_train, x_val, x_test))

    keras.utils.set_random_seed(0)
    model = keras.Sequential([
        keras.Input((x.shape[1],)),
        keras.layers.Dense(64, activation="relu", name="hidden"),
        keras.layers.Dense(len(names), activation="softmax", name="output"),
    ])
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=5, restore_best_weights=True)
    model.fit(x_train, y_train, validation_data=(x_val, y_val), epochs=50, batch_size=32, callbacks=[stop], verbose=0)
    trained = model.evaluate(x_test, y_test, verbose=0)[1]
    majority = float(np.mean(y_test == np.argmax(np.bincount(y_train))))
    print(f"trained: test accuracy {trained:.4f} (always the majority class: {majority:.4f})")
    if trained <= majority:
        sys.exit("the model is no better than always predicting the majority class")

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x_train[i:i + 1]] for i in range(min(200, len(x_train))))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    path = out / "tabular.tflite"
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
    main(Path(sys.argv[1]), Path(sys.argv[2]))
