"""Benchmark the verify step on a ~5 MB model: how long `verify` takes per target, and the once-per-run
`evaluate` step (the trained/compressed models and the Keras baseline latency) that verify reads.

    .venv/bin/python benchmarks/bench_verify.py

A digits MLP 64-1200-1000-10 (1.29 M parameters, ~5 MB as float32) trained for one epoch, with a float
tflite target (LiteRT over the 360 test examples) and a tf_serving target (the SavedModel's signature).
Step durations come from report.json of one `tfspec run` process (fresh cache). Goal: verify ≤ 10 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SPEC = """\
api_version: tfspec/v1
name: big
version: 1
data:
  source: {kind: sklearn_digits}
  split: {validation: 0.1, test: 0.2, seed: 7}
  preprocessing: {rescale: 0.0625}
model:
  kind: sequential
  input_shape: [64]
  layers:
    - {type: dense, name: wide1, units: 1200, activation: relu}
    - {type: dense, name: wide2, units: 1000, activation: relu}
    - {type: dense, name: logits, units: 10, activation: softmax}
training:
  optimizer: {kind: adam, learning_rate: 1.0e-3}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 1
  batch_size: 64
targets:
  - {kind: tflite, name: phone, quantization: {kind: none}, gates: {max_accuracy_drop: 0.01}}
  - {kind: tf_serving, name: serving, gates: {max_accuracy_drop: 0.01}}
"""


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-verify-") as folder:
        work = Path(folder)
        (work / "deploy.yaml").write_text(SPEC, encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "tfspec", "run", "deploy.yaml", "--json"], cwd=work,
                              capture_output=True, text=True, env={**os.environ, "CI": "true"})
        if done.returncode not in (0, 1):
            sys.exit(f"tfspec run failed ({done.returncode}):\n{done.stderr[-4000:]}")
        report = json.loads(done.stdout)["report"]
    print(f"load: {Path('/proc/loadavg').read_text().strip()}; cores: {os.cpu_count()}")
    sizes = {name: t["metrics"]["size_bytes"] for name, t in report["targets"].items()}
    print(f"keras model: {report['stages'][0]['size_bytes'] / 1e6:.2f} MB, {report['stages'][0]['params']:,} parameters")
    for step in report["steps"]:
        if step["kind"] in ("evaluate", "verify"):
            size = f", artifact {sizes[step['target']] / 1e6:.2f} MB" if step.get("target") else ""
            print(f"{step['id']:<16} {step['duration_s']:6.2f} s{size}")


if __name__ == "__main__":
    main()
