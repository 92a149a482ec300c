"""Sparse vs dense .tflite of the example's model pruned to 80 %: raw size, gzipped size, accuracy, latency.

    .venv/bin/python benchmarks/bench_sparsity.py [--workdir DIR] [--json results.json]

Two specs run through the executor and share one cache (so one trained and one pruned model):

* the example's compression with its prune stage pinned to 0.8 and 5 fine-tuning epochs (the figures in
  docs/benchmarks.md were measured so; the example itself prunes 0.7), then quantization-aware fine-tuning
  that preserves sparsity,
  with two int8 targets, dense and ``sparse_weights: true`` (``Optimize.EXPERIMENTAL_SPARSITY``);
* prune 0.8 alone with two float32 targets, dense and sparse.

Every figure is the verify step's: accuracy on the test split and p50/p95 latency of one example on
LiteRT (one thread), the raw ``.tflite`` size and its gzipped size. Goal: the sparse int8 file at least
2x smaller than the dense int8 one, at the same accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

import tfspec
from tfspec.runtime.executor import run_plan
from tfspec.running import run_inputs_from_compiled

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "digits" / "deploy.yaml"


def _spec(compression: list[dict[str, Any]], quantization: dict[str, Any]) -> dict[str, Any]:
    tree = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    tree["compression"] = compression
    tree.pop("environments", None)
    tree["targets"] = [{"kind": "tflite", "name": name, "quantization": quantization, "sparse_weights": sparse}
                       for name, sparse in (("dense", False), ("sparse", True))]
    return tree


def _run(tree: dict[str, Any], folder: Path, cache: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "deploy.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    result = tfspec.compile(path, environ={})
    if not result.ok:
        raise SystemExit("\n".join(d.format() for d in result.diagnostics))
    start = time.perf_counter()
    report = run_plan(run_inputs_from_compiled(result), cache_dir=cache, dist_dir=folder / "dist", quiet=True, log=lambda _: None)
    print(f"  {folder.name}: {', '.join(report.ran) or 'all cached'} ({time.perf_counter() - start:.1f} s)", flush=True)
    return report.report["targets"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    example = yaml.safe_load(EXAMPLE.read_text("utf-8"))
    for stage in example["compression"]:
        if stage["kind"] == "prune":  # the sparsity the recorded figures were measured at
            stage.update(target_sparsity=0.8, fine_tune_epochs=5)
    with tempfile.TemporaryDirectory() as scratch:
        work = args.workdir or Path(scratch)
        cache = work / "cache"
        rows: dict[str, dict[str, Any]] = {}
        int8 = _run(_spec(example["compression"], {"kind": "int8", "representative_samples": 200}), work / "int8", cache)
        prune_only = [stage for stage in example["compression"] if stage["kind"] == "prune"]
        float32 = _run(_spec(prune_only, {"kind": "none"}), work / "float32", cache)
        for mode, targets in (("int8", int8), ("float32", float32)):
            for name, target in targets.items():
                m = target["metrics"]
                rows[f"{mode} {name}"] = {"raw_bytes": m["size_bytes"], "gzip_bytes": m["gzip_bytes"],
                                          "accuracy": round(m["accuracy"], 4),
                                          "latency_ms_p50": round(m["latency_ms_p50"], 4),
                                          "latency_ms_p95": round(m["latency_ms_p95"], 4)}
    print(f"{'model':16s} {'raw':>8s} {'gzipped':>8s} {'accuracy':>9s} {'p50 ms':>8s} {'p95 ms':>8s}")
    for name, r in rows.items():
        print(f"{name:16s} {r['raw_bytes']:8d} {r['gzip_bytes']:8d} {r['accuracy']:9.4f} "
              f"{r['latency_ms_p50']:8.4f} {r['latency_ms_p95']:8.4f}")
    for mode in ("int8", "float32"):
        ratio = rows[f"{mode} dense"]["raw_bytes"] / rows[f"{mode} sparse"]["raw_bytes"]
        print(f"{mode}: raw dense / sparse = {ratio:.2f}" + (" (goal >= 2.0)" if mode == "int8" else ""))
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
