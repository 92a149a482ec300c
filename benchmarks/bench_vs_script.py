"""`tfspec run` against hand-written scripts doing the same work, for three models:

* ``digits``: examples/digits/deploy.yaml reduced to its android target (train, prune + QAT, int8
  conversion, LiteRT check; the gpu_cluster target only renders files; the tf_serving target is dropped
  because the script has no counterpart for it) against ``handwritten_digits.py``;
* ``tabular``: the spec ``tfspec init tabular --from data.csv --label diagnosis`` writes for scikit-learn's
  breast-cancer table (569 rows, 30 features; written to a CSV file in the temporary folder) with its tflite
  target (int8), against ``handwritten_tabular.py``;
* ``cnn``: a small CNN on the 8x8 digits (two conv layers), pruned to 50 %, quantization-aware fine-tuned,
  int8, against ``handwritten_cnn.py``.

    .venv/bin/python benchmarks/bench_vs_script.py [--repeat N] [--models digits,tabular,cnn]

Every run is a fresh process from an empty cache. tfspec also does what the scripts do not: the data
checks, the evaluate step (every model measured, latency timed, the naive baseline), saving each model to
the step cache, the Android bundle, report.json and report.html. Runs alternate (tfspec, script, next
model, ...) so a change in machine load hits all alike; the table at the end gives, per model, the best
of N of each and their ratio (goal <= 1.15x) with the load average before and after, and beside it
the CPU time (user + system) of each, which a loaded machine changes far less than the wall time.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"

CNN_SPEC = """\
api_version: tfspec/v1
name: digits-cnn
version: 1
data:
  source: {kind: sklearn_digits}
  split: {validation: 0.1, test: 0.2, seed: 7}
  preprocessing: {rescale: 0.0625, reshape: [8, 8, 1]}
model:
  kind: sequential
  input_shape: [8, 8, 1]
  layers:
    - {type: conv2d, name: conv1, filters: 16, kernel_size: 3, padding: same, activation: relu}
    - {type: max_pool2d, pool_size: 2}
    - {type: conv2d, name: conv2, filters: 32, kernel_size: 3, padding: same, activation: relu}
    - {type: flatten}
    - {type: dense, name: logits, units: 10, activation: softmax}
training:
  optimizer: {kind: adam, learning_rate: 1.0e-3}
  loss: sparse_categorical_crossentropy
  metrics: [accuracy]
  epochs: 15
  batch_size: 64
compression:
  - {kind: prune, target_sparsity: 0.5, schedule: polynomial_decay, fine_tune_epochs: 4}
  - {kind: quantization_aware, preserve: [sparsity], fine_tune_epochs: 2}
targets:
  - kind: tflite
    name: android
    quantization: {kind: int8, representative_samples: 200}
    android: {package: com.example.digitscnn, asset_pack: {name: digits_cnn_model, delivery: install_time}}
    gates: {max_accuracy_drop: 0.02}
"""


def _load() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


def _timed(command: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and CPU seconds (user + system, all threads and child processes) of ``command``.

    On a loaded machine the wall time mostly measures the load; the CPU time is the work done."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, "CI": "true"})
    elapsed = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode not in (0, 1):
        sys.exit(f"{command} failed ({done.returncode}):\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return elapsed, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _tfspec(*args: str) -> list[str]:
    return [sys.executable, "-m", "tfspec", *args]


def _digits(work: Path) -> tuple[str, list[str]]:
    tree = yaml.safe_load((ROOT / "examples" / "digits" / "deploy.yaml").read_text())
    tree["targets"] = [t for t in tree["targets"] if t["kind"] != "tf_serving"]
    tree.pop("environments", None)
    (work / "deploy.yaml").write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return "digits", [sys.executable, str(BENCH / "handwritten_digits.py"), str(work / "script-out")]


def _tabular(work: Path) -> tuple[str, list[str]]:
    from sklearn.datasets import load_breast_cancer

    table = load_breast_cancer()
    with (work / "data.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([name.replace(" ", "_") for name in table.feature_names] + ["diagnosis"])
        for row, target in zip(table.data, table.target):
            writer.writerow([f"{v:.6g}" for v in row] + [table.target_names[target]])
    subprocess.run(_tfspec("init", "tabular", "--from", "data.csv", "--label", "diagnosis"), cwd=work, check=True,
                   capture_output=True)
    tree = yaml.safe_load((work / "deploy.yaml").read_text())
    tree["targets"] = [t for t in tree["targets"] if t["kind"] != "tf_serving"]
    (work / "deploy.yaml").write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    return "tabular", [sys.executable, str(BENCH / "handwritten_tabular.py"), str(work / "data.csv"),
                       str(work / "script-out")]


def _cnn(work: Path) -> tuple[str, list[str]]:
    (work / "deploy.yaml").write_text(CNN_SPEC, encoding="utf-8")
    return "digits-cnn", [sys.executable, str(BENCH / "handwritten_cnn.py"), str(work / "script-out")]


MODELS = {"digits": _digits, "tabular": _tabular, "cnn": _cnn}


def _pair(model: str) -> dict[str, float | str]:
    """One tfspec run and one script run of ``model`` in a fresh temporary folder."""
    with tempfile.TemporaryDirectory(prefix=f"bench-vs-script-{model}-") as folder:
        work = Path(folder)
        name, script = MODELS[model](work)
        load_before = _load()
        tfspec_s, tfspec_cpu = _timed(_tfspec("run", "deploy.yaml", "--quiet"), work)
        script_s, script_cpu = _timed(script, work)
        load_after = _load()
        steps = json.loads((work / "dist" / name / "report.json").read_text())["steps"]
    in_steps = sum(float(s["duration_s"]) for s in steps)
    slowest = sorted(steps, key=lambda s: -float(s["duration_s"]))[:6]
    top = ", ".join(f"{s['id']} {s['duration_s']:.1f}" for s in slowest)
    print(f"  {model}: tfspec {in_steps:.1f} s in steps ({top}), {tfspec_s - in_steps:.1f} s outside them "
          f"(start-up and TensorFlow import, dist swap, report.html)")
    print(f"{model:8s} tfspec run {tfspec_s:6.1f} s   script {script_s:6.1f} s   ratio {tfspec_s / script_s:.2f}x   "
          f"load {load_before} -> {load_after}", flush=True)
    print(f"{'':8s} CPU: tfspec run {tfspec_cpu:6.1f} s   script {script_cpu:6.1f} s   "
          f"ratio {tfspec_cpu / script_cpu:.2f}x", flush=True)
    return {"tfspec": tfspec_s, "script": script_s, "tfspec_cpu": tfspec_cpu, "script_cpu": script_cpu,
            "load": f"{load_before} -> {load_after}"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated: " + ", ".join(MODELS))
    args = parser.parse_args()
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        sys.exit(f"unknown model(s) {', '.join(unknown)}; choose from {', '.join(MODELS)}")
    results: dict[str, list[dict[str, float | str]]] = {m: [] for m in models}
    for _ in range(args.repeat):
        for model in models:
            results[model].append(_pair(model))
    print(f"\nbest of {args.repeat} (cores: {os.cpu_count()}); goal <= 1.15x")
    print("| model | tfspec run | script | ratio | every pair's ratio | CPU: tfspec / script (best) | CPU ratio "
          "| load (1 min) before -> after |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for model, pairs in results.items():
        best_tfspec = min(float(p["tfspec"]) for p in pairs)
        best_script = min(float(p["script"]) for p in pairs)
        ratios = ", ".join(f"{float(p['tfspec']) / float(p['script']):.2f}" for p in pairs)
        loads = "; ".join(str(p["load"]) for p in pairs)
        cpu_tfspec = min(float(p["tfspec_cpu"]) for p in pairs)
        cpu_script = min(float(p["script_cpu"]) for p in pairs)
        print(f"| {model} | {best_tfspec:.1f} s | {best_script:.1f} s | {best_tfspec / best_script:.2f}x | {ratios} "
              f"| {cpu_tfspec:.1f} / {cpu_script:.1f} s | {cpu_tfspec / cpu_script:.2f}x | {loads} |")


if __name__ == "__main__":
    main()
