"""Benchmark what gates against the released model add to a run: the ``released`` step (copy the released
model into the cache, check its files and its input contract) and the ``compare`` step (both models over the
test split, then timed alternately), per target, beside the rest of the run.

    .venv/bin/python benchmarks/bench_released.py

The model of ``bench_verify.py`` (a digits MLP 64-1200-1000-10, ~5 MB as float32, one epoch) with a float
tflite target and a tf_serving target. A first run writes the dist folder that serves as the released model;
then, each with a fresh cache and alternating, runs of the same spec without and with ``released: {kind:
dist}`` and ``vs_released`` gates on both targets. Step durations come from each run's report.json.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SPEC = """\
api_version: tfspec/v1
name: big
version: {version}
data:
  source: {{kind: sklearn_digits}}
  split: {{validation: 0.1, test: 0.2, seed: 7}}
  preprocessing: {{rescale: 0.0625}}
model:
  kind: sequential
  input_shape: [64]
  layers:
    - {{type: dense, name: wide1, units: 1200, activation: relu}}
    - {{type: dense, name: wide2, units: 1000, activation: relu}}
    - {{type: dense, name: logits, units: 10, activation: softmax}}
training:
  optimizer: {{kind: adam, learning_rate: 1.0e-3}}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 1
  batch_size: 64
targets:
  - kind: tflite
    name: phone
    quantization: {{kind: none}}
{phone}
  - kind: tf_serving
    name: serving
{serving}
"""

PLAIN = "    gates: {max_accuracy_drop: 0.01}"
RELEASED = ("    released: {kind: dist, path: releases/big}\n"
            "    gates: {max_accuracy_drop: 0.01, vs_released: {max_accuracy_drop: 0.05, max_latency_growth_percent: 500}}")


def _run(work: Path, version: int, target: str) -> tuple[float, dict]:
    """``tfspec run`` of the spec in ``work`` with a fresh cache: (wall seconds, report)."""
    (work / "deploy.yaml").write_text(SPEC.format(version=version, phone=target, serving=target), encoding="utf-8")
    shutil.rmtree(work / ".tfspec", ignore_errors=True)
    shutil.rmtree(work / "dist", ignore_errors=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "tfspec", "run", "deploy.yaml", "--json"], cwd=work,
                          capture_output=True, text=True, env={**os.environ, "CI": "true"})
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"tfspec run failed ({done.returncode}):\n{done.stderr[-4000:]}")
    return wall, json.loads(done.stdout)["report"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2, help="pairs of runs (without, with) after the first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-released-") as folder:
        work = Path(folder)
        _run(work, 1, PLAIN)
        shutil.copytree(work / "dist" / "big", work / "releases" / "big")
        walls: dict[str, list[float]] = {"without": [], "with": []}
        steps: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for label, target in (("without", PLAIN), ("with", RELEASED)):
                wall, report = _run(work, 2, target)
                walls[label].append(wall)
                if label == "with":
                    for step in report["steps"]:
                        if step["kind"] in ("released", "compare", "verify"):
                            steps.setdefault(step["id"], []).append(step["duration_s"])
                    for name, target_report in report["targets"].items():
                        change = target_report["released"]["change"]
                        print(f"{name}: worse by {change['worse_by']:+.4f}, size {change['size_growth_percent']:+.1f} %, "
                              f"p95 {change['latency_growth_percent']:+.1f} %")
    print(f"load: {Path('/proc/loadavg').read_text().strip()}; cores: {os.cpu_count()}")
    for step_id, durations in steps.items():
        print(f"{step_id:<18} median {statistics.median(durations):6.2f} s  ({', '.join(f'{d:.2f}' for d in durations)})")
    added = sum(statistics.median(d) for s, d in steps.items() if s.endswith((".released", ".compare")))
    without, with_ = statistics.median(walls["without"]), statistics.median(walls["with"])
    print(f"released + compare steps: {added:.2f} s; whole run without {without:.1f} s, with {with_:.1f} s "
          f"(medians of {args.rounds}, fresh cache each)")


if __name__ == "__main__":
    main()
