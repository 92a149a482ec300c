"""Benchmark `tfspec run`: a full run from an empty cache, a cached re-run, and per-target
size / accuracy / latency of the Keras model against each artifact, all from one run.

    .venv/bin/python benchmarks/bench_run.py [SPEC] [--no-compression] [--all-modes] [--modes-table]

``--no-compression`` drops the spec's ``compression:`` list; ``--all-modes`` adds one tflite target per
quantization mode (none, dynamic, float16, int8, int16x8; only int8 when the spec has a
quantization-aware stage, which converts to int8 only). ``--modes-table`` runs the spec a second time
without compression and with every mode, for the float32-relative sizes.
Each run is a separate `tfspec run` process, so times include Python and TensorFlow start-up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
MODES = {
    "none": {"kind": "none"},
    "dynamic": {"kind": "dynamic"},
    "float16": {"kind": "float16"},
    "int8": {"kind": "int8", "representative_samples": 200},
    "int16x8": {"kind": "int16x8", "representative_samples": 200},
}


def variant(spec: Path, no_compression: bool, all_modes: bool) -> str:
    tree = yaml.safe_load(spec.read_text())
    if no_compression:
        tree.pop("compression", None)
    if all_modes:
        tree["targets"] = [t for t in tree["targets"] if t["kind"] != "gpu_cluster"]
        qat = any(stage.get("kind") == "quantization_aware" for stage in tree.get("compression", []))
        for mode, quantization in MODES.items():
            if qat and mode != "int8":
                continue
            tree["targets"].append({"kind": "tflite", "name": f"mode-{mode}", "quantization": quantization})
    tree.pop("environments", None)
    return yaml.safe_dump(tree, sort_keys=False)


def timed_run(spec: Path, work: Path) -> tuple[float, dict]:
    command = [sys.executable, "-m", "tfspec", "run", str(spec), "--json", "--dist-dir", str(work / "dist")]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, capture_output=True, text=True, env={**os.environ, "CI": "true"})
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 1):
        sys.exit(f"tfspec run failed ({done.returncode}):\n{done.stdout[-4000:]}{done.stderr[-4000:]}")
    return elapsed, json.loads(done.stdout)


def measure(spec_path: Path, no_compression: bool, all_modes: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        work = Path(tmp)
        spec = work / "deploy.yaml"
        spec.write_text(variant(spec_path, no_compression, all_modes))
        full, first = timed_run(spec, work)
        cached, second = timed_run(spec, work)
    report = first["report"]
    name = spec_path.relative_to(ROOT) if spec_path.is_relative_to(ROOT) else spec_path
    print(f"spec: {name}{' (no compression)' if no_compression else ''}"
          f"{' (+ one tflite target per mode)' if all_modes else ''}; cpu cores: {os.cpu_count()}")
    print(f"full run: {full:.1f} s ({len(first['ran'])} steps ran)")
    print(f"cached re-run: {cached:.2f} s ({len(second['ran'])} steps ran, {len(second['cached'])} cached)")
    print("slowest steps (full run):")
    for step in sorted(report["steps"], key=lambda s: -s["duration_s"])[:5]:
        print(f"  {step['id']:<30} {step['duration_s']:7.2f} s")
    base = report["baseline"]
    float_size = report["targets"].get("mode-none", {}).get("metrics", {}).get("size_bytes")
    print(f"{'artifact':<16} {'accuracy':>9} {'drop':>8} {'bytes':>9} {'x float32':>10} {'p50 ms':>8} {'p95 ms':>8}")
    print(f"{'keras':<16} {base['value']:9.4f} {'':>8} {base['size_bytes']:9d} {'':>10} "
          f"{base['latency_ms']['p50']:8.3f} {base['latency_ms']['p95']:8.3f}")
    for target_name, target in report["targets"].items():
        m = target["metrics"]
        ratio = f"{m['size_bytes'] / float_size:10.3f}" if float_size and target["kind"] == "tflite" else f"{'':>10}"
        print(f"{target_name:<16} {m['accuracy']:9.4f} {m['accuracy_drop']:+8.4f} {m['size_bytes']:9d} {ratio} "
              f"{m['latency_ms_p50']:8.3f} {m['latency_ms_p95']:8.3f}")
    for step in report["steps"]:
        if step["kind"] in ("train", "prune", "cluster", "qat", "distill"):
            layers = ", ".join(f"{l['layer']} sparsity {l['sparsity']:.2f}" for l in step["metrics"].get("layers", []))
            print(f"  {step['id']}: accuracy {step['metrics'].get('accuracy')}; {layers}")
    print(f"gates passed: {report['passed']}\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec", nargs="?", type=Path, default=ROOT / "examples" / "digits" / "deploy.yaml")
    parser.add_argument("--no-compression", action="store_true")
    parser.add_argument("--all-modes", action="store_true")
    parser.add_argument("--modes-table", action="store_true")
    args = parser.parse_args()
    measure(args.spec, args.no_compression, args.all_modes)
    if args.modes_table:
        measure(args.spec, True, True)


if __name__ == "__main__":
    main()
