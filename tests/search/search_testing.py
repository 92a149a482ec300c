"""A small digits spec with a search section, and helpers to run ``tfspec search`` on it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tfspec_testing import tfspec_command

SPEC = """\
api_version: tfspec/v1
name: digits
version: 1
data:
  source: {kind: sklearn_digits}
  split: {validation: 0.1, test: 0.2, seed: 7}
  preprocessing: {rescale: 0.0625}
model:
  kind: sequential
  input_shape: [64]
  layers:
    - {type: dense, name: hidden, units: 64, activation: relu}
    - {type: dense, name: logits, units: 10, activation: softmax}
training:
  optimizer: {kind: adam, learning_rate: 0.005}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: EPOCHS
  batch_size: 32
  seed: 1
compression:
  - {kind: prune, target_sparsity: 0.5, fine_tune_epochs: 1}
targets:
  - kind: tflite
    name: android
    quantization: {kind: int8, representative_samples: 100}
    gates: {min_accuracy: 0.85, max_accuracy_drop: 0.05}
search:
  parameters:
    - kind: int
      path: model.layers[0].units
      low: 12
      high: 64
      log: true
    - kind: float
      path: training.optimizer.learning_rate
      low: 0.003
      high: 0.02
      log: true
    - kind: choice
      path: targets[0].quantization.kind
      choices: [int8, dynamic]
  objective: {kind: minimize, target: android, metric: size_kb}
  budget: {trials: TRIALS}
  sampler: SAMPLER
  seed: 3
"""


def write_spec(folder: Path, *, trials: int = 8, epochs: int = 6, sampler: str = "tpe") -> Path:
    spec = folder / "deploy.yaml"
    spec.write_text(SPEC.replace("EPOCHS", str(epochs)).replace("TRIALS", str(trials)).replace("SAMPLER", sampler),
                    encoding="utf-8")
    return spec


def search_env() -> dict[str, str]:
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CI": "true"}


def start_search(spec: Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([*tfspec_command(), "search", spec.name, *args], cwd=spec.parent, env=search_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
