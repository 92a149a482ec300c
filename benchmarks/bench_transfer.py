"""Benchmark transfer learning on a MobileNetV2 backbone (alpha 0.35, 96×96) on this machine's CPUs:
per-phase training time, and the int8 .tflite's size and accuracy against the float .tflite and Keras.

    .venv/bin/python benchmarks/bench_transfer.py [--examples 240]

No downloads: the backbone's weights file is a random initialisation saved here (the issue's air-gapped
setting; with ImageNet weights the accuracies would be higher, the times the same). The images are
synthetic: two classes told apart by a red square in the top-left or a blue one in the bottom-right corner.
Phase times come from the train step's `phases`, sizes and accuracies from report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SPEC = """\
api_version: tfspec/v1
name: corners
version: 1
data:
  source: {kind: npz, path: images.npz, features: x, labels: y}
  split: {validation: 0.1, test: 0.25, seed: 4}
model:
  kind: application
  application: MobileNetV2
  args: {alpha: 0.35}
  weights: backbone.h5
  input_shape: [96, 96, 3]
  head:
    - {type: global_average_pool2d}
    - {type: dense, name: classes, units: 2, activation: softmax}
  fine_tune: {unfreeze: 30, epochs: 2, learning_rate: 1.0e-4}
training:
  optimizer: {kind: adam, learning_rate: 0.01}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 15
  batch_size: 16
targets:
  - {kind: tflite, name: float, quantization: {kind: none}}
  - {kind: tflite, name: int8, quantization: {kind: int8, representative_samples: 64}}
"""


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--examples", type=int, default=240)
    args = parser.parse_args()
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with tempfile.TemporaryDirectory(prefix="bench-transfer-") as tmp:
        root = Path(tmp)
        import tf_keras

        tf_keras.utils.set_random_seed(0)
        rng = np.random.default_rng(0)
        y = np.arange(args.examples) % 2
        x = rng.uniform(-1.0, -0.5, size=(args.examples, 96, 96, 3)).astype(np.float32)
        # the colour tells the classes apart: where the square is would not survive global average pooling
        # (the first run, with a white square in opposite corners, stayed at chance: 0.5)
        x[y == 0, :32, :32, 0] = 1.0
        x[y == 1, -32:, -32:, 2] = 1.0
        np.savez(root / "images.npz", x=x, y=y.astype(np.int64))
        backbone = tf_keras.applications.MobileNetV2(alpha=0.35, input_shape=(96, 96, 3), include_top=False,
                                                     weights=None)
        # Random weights with BatchNorm's initial statistics (mean 0, variance 1) saturate after a few blocks:
        # constant features, chance accuracy (two runs at 0.5). Set each BatchNorm's moving statistics from
        # one batch of these images (momentum 0 for that call), as pretraining would have: random features
        # that vary with the input. Nothing is trained.
        norms = [layer for layer in backbone.layers if isinstance(layer, tf_keras.layers.BatchNormalization)]
        for layer in norms:
            layer.momentum = 0.0
        backbone(x[:64], training=True)
        backbone.save_weights(str(root / "backbone.h5"))
        (root / "deploy.yaml").write_text(SPEC, encoding="utf-8")
        load_before = Path("/proc/loadavg").read_text().split()[:3]
        tfspec = Path(sys.executable).with_name("tfspec")
        command = [str(tfspec), "run", "deploy.yaml", "--quiet", "--dist-dir", "dist"] if tfspec.exists() else [
            sys.executable, "-m", "tfspec", "run", "deploy.yaml", "--quiet", "--dist-dir", "dist"]
        done = subprocess.run(command, cwd=root, capture_output=True, text=True)
        load_after = Path("/proc/loadavg").read_text().split()[:3]
        if done.returncode not in (0, 1):
            print(done.stdout, done.stderr, file=sys.stderr)
            return done.returncode
        report = json.loads((root / "dist" / "report.json").read_text("utf-8"))
    train = next(s for s in report["steps"] if s["id"] == "train")
    result = {
        "examples": args.examples,
        "phases": train["metrics"]["phases"],
        "keras_accuracy": report["stages"][0]["value"],
        "targets": {name: {"size_bytes": t["metrics"]["size_bytes"], "accuracy": t["metrics"]["accuracy"]}
                    for name, t in report["targets"].items()},
        "steps_s": {s["id"]: s["duration_s"] for s in report["steps"] if s["kind"] != "render"},
        "loadavg_before": load_before, "loadavg_after": load_after, "cores": os.cpu_count(),
    }
    result["int8_size_ratio"] = result["targets"]["int8"]["size_bytes"] / result["targets"]["float"]["size_bytes"]
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
