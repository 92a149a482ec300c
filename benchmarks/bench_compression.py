"""Compression benchmark on digits: every number comes from the real steps, run through the executor.

    .venv/bin/python benchmarks/bench_compression.py [--workdir DIR] [--json results.json]

One 64-256-128-10 MLP (50,826 parameters) is trained once (the specs share data, model and training, so
they share the ``data`` and ``train`` cache entries); then each spec adds its compression stages:

* prune 0.8 / 0.85 / 0.9 (10 fine-tuning epochs) followed by PQAT (3 epochs) and an int8 .tflite;
* 16 clusters (5 fine-tuning epochs);
* distillation into a student with a quarter of the hidden units (64-64-32-10), against the same
  student trained alone for the same number of epochs with the same optimizer.

Sizes are measured the way the TensorFlow Model Optimization guides measure them (their
``get_gzipped_model_size``: the file compressed with ``zipfile.ZIP_DEFLATED``): the Keras weights file
(``.h5``) for Keras models, the ``.tflite`` file for TFLite models. Accuracies are on the test split
(360 examples, so one example is 0.28 points); TFLite accuracies are measured on LiteRT by the verify step.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import tfspec
from tfspec.runtime.compression import zipped_size
from tfspec.runtime.executor import run_plan
from tfspec.running import run_inputs_from_compiled
from tfspec.runtime.cache import StepCache

MODEL = """\
  layers:
    - {type: dense, name: hidden1, units: 256, activation: relu}
    - {type: dense, name: hidden2, units: 128, activation: relu}
    - {type: dense, name: logits, units: 10, activation: softmax}"""
STUDENT_LAYERS = ("[{type: dense, name: s_hidden1, units: 64, activation: relu}, "
                  "{type: dense, name: s_hidden2, units: 32, activation: relu}, "
                  "{type: dense, name: s_logits, units: 10, activation: softmax}]")
STUDENT_MODEL = """\
  layers:
    - {type: dense, name: s_hidden1, units: 64, activation: relu}
    - {type: dense, name: s_hidden2, units: 32, activation: relu}
    - {type: dense, name: s_logits, units: 10, activation: softmax}"""

SPEC = """\
api_version: tfspec/v1
name: digits
version: 1
data:
  source: {{kind: sklearn_digits}}
  split: {{validation: 0.1, test: 0.2, seed: 7}}
  preprocessing: {{rescale: 0.0625}}
model:
  kind: sequential
  input_shape: [64]
{model}
training:
  optimizer: {{kind: adam, learning_rate: 0.001}}
  epochs: {epochs}
  batch_size: 32
  seed: {seed}
{early_stopping}
targets:
  - {target}
compression:
{stages}
"""
EARLY_STOPPING = "  early_stopping: {monitor: val_loss, patience: 5, restore_best_weights: true}"
FLOAT_TFLITE = "{kind: tflite, name: phone, quantization: {kind: none}}"
INT8_TFLITE = "{kind: tflite, name: phone, quantization: {kind: int8, representative_samples: 500}}"
RENDER_ONLY = "{kind: gpu_cluster, name: cluster, workers: 1, gpus_per_worker: 1}"
TEACHER_EPOCHS = 40
DISTILL_EPOCHS = 30
PRUNE_EPOCHS = 10
QAT_EPOCHS = 3
CLUSTER_EPOCHS = 5


class Bench:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.cache_dir = workdir / "cache"
        self.count = 0

    def run(self, stages: str, target: str, model: str = MODEL, epochs: int = TEACHER_EPOCHS,
            early_stopping: str = EARLY_STOPPING, seed: int = 42) -> tuple[Any, Any, StepCache]:
        self.count += 1
        folder = self.workdir / f"spec{self.count}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "deploy.yaml"
        path.write_text(SPEC.format(model=model, epochs=epochs, early_stopping=early_stopping, target=target,
                                    stages=stages or "  []", seed=seed), encoding="utf-8")
        result = tfspec.compile(path)
        if not result.ok:
            raise SystemExit("\n".join(d.format() for d in result.diagnostics))
        start = time.perf_counter()
        report = run_plan(run_inputs_from_compiled(result), cache_dir=self.cache_dir, dist_dir=folder / "dist", quiet=True, log=lambda _: None)
        print(f"  spec{self.count}: {', '.join(report.ran) or 'all cached'} ({time.perf_counter() - start:.1f} s)",
              flush=True)
        return result, report, StepCache(report.cache_dir)


def metrics(report: Any, step_id: str) -> dict[str, Any]:
    return next(s["metrics"] for s in report.report["steps"] if s["id"] == step_id)


def tflite_zipped(result: Any, cache: StepCache) -> tuple[int, int]:
    step = result.plan.step("phone.tflite")
    path = cache.path(step.fingerprint) / step.params.filename
    return path.stat().st_size, zipped_size(path)


def points(before: float, after: float) -> float:
    return round((before - after) * 100, 2)


def distill_comparison(bench: Bench, seed: int) -> dict[str, Any]:
    """Teacher, distilled student and the student trained alone, all with training seed ``seed``."""
    _, report, _ = bench.run(f"  - {{kind: distill, teacher: {{kind: self}}, student: {STUDENT_LAYERS}, "
                             f"epochs: {DISTILL_EPOCHS}, temperature: 4, alpha: 0.1}}", RENDER_ONLY, seed=seed)
    distilled = metrics(report, "compress.0.distill")
    _, report, _ = bench.run("", RENDER_ONLY, model=STUDENT_MODEL, epochs=DISTILL_EPOCHS, early_stopping="", seed=seed)
    alone = metrics(report, "train")
    return {"seed": seed, "teacher_params": distilled["teacher"]["params"], "student_params": distilled["params"],
            "teacher_accuracy": distilled["teacher"]["accuracy"], "student_accuracy": distilled["accuracy_after"],
            "student_alone_accuracy": alone["accuracy"], "epochs": DISTILL_EPOCHS,
            "distillation_loss_first_last": [distilled["distillation_loss"][0], distilled["distillation_loss"][-1]],
            "student_vs_teacher_points": points(distilled["teacher"]["accuracy"], distilled["accuracy_after"]),
            "student_vs_alone_points": points(alone["accuracy"], distilled["accuracy_after"])}


def distill_seeds(bench: Bench, count: int, json_path: Path | None) -> None:
    rows = []
    for seed in range(1, count + 1):
        print(f"distillation with seed {seed}", flush=True)
        rows.append(distill_comparison(bench, seed))
    print()
    for row in rows:
        print(f"seed {row['seed']}: teacher {row['teacher_accuracy']:.4f}, distilled {row['student_accuracy']:.4f}, "
              f"alone {row['student_alone_accuracy']:.4f}")
    mean = {key: sum(row[key] for row in rows) / len(rows)
            for key in ("teacher_accuracy", "student_accuracy", "student_alone_accuracy")}
    print(f"mean over {count} seeds: teacher {mean['teacher_accuracy']:.4f}, distilled {mean['student_accuracy']:.4f}, "
          f"alone {mean['student_alone_accuracy']:.4f}")
    if json_path:
        json_path.write_text(json.dumps({"seeds": rows, "mean": mean}, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=None, help="keep specs and the step cache here")
    parser.add_argument("--json", type=Path, default=None, help="write the measurements as JSON")
    parser.add_argument("--distill-seeds", type=int, default=0, metavar="N",
                        help="only repeat the distillation comparison with training seeds 1..N (teacher included)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="tfspec-bench-compression-"))
    bench = Bench(workdir)
    if args.distill_seeds:
        distill_seeds(bench, args.distill_seeds, args.json)
        return
    out: dict[str, Any] = {}

    print("dense model and its float32 .tflite", flush=True)
    result, report, cache = bench.run("", FLOAT_TFLITE)
    train = metrics(report, "train")
    dense_accuracy = train["accuracy"]
    dense_tflite = tflite_zipped(result, cache)
    out["dense"] = {"params": train["params"], "epochs": train["epochs"], "accuracy": dense_accuracy,
                    "tflite_float32_bytes": dense_tflite[0], "tflite_float32_zipped_bytes": dense_tflite[1],
                    "tflite_float32_accuracy": metrics(report, "phone.verify")["metrics"]["accuracy"]}

    out["prune"] = []
    for sparsity in (0.8, 0.85, 0.9):
        print(f"prune {sparsity} + PQAT + int8", flush=True)
        result, report, cache = bench.run(
            f"  - {{kind: prune, target_sparsity: {sparsity}, fine_tune_epochs: {PRUNE_EPOCHS}}}\n"
            f"  - {{kind: quantization_aware, preserve: [sparsity], fine_tune_epochs: {QAT_EPOCHS}}}", INT8_TFLITE)
        pruned = metrics(report, "compress.0.prune")
        qat = metrics(report, "compress.1.quantization_aware")
        verify = metrics(report, "phone.verify")["metrics"]
        size, zipped = tflite_zipped(result, cache)
        out["prune"].append({
            "target_sparsity": sparsity,
            "achieved_sparsity": pruned["sparsity"],
            "layers": pruned["layers"],
            "pruned_accuracy": pruned["accuracy_after"],
            "pruned_drop_points": points(dense_accuracy, pruned["accuracy_after"]),
            "dense_h5_zipped_bytes": pruned["size"]["before"]["h5_zipped_bytes"],
            "pruned_h5_zipped_bytes": pruned["size"]["after"]["h5_zipped_bytes"],
            "pruned_zipped_ratio": pruned["size"]["zipped_ratio"],
            "pqat_keras_accuracy": qat["accuracy_after"],
            "pqat_sparsity": qat["sparsity"],
            "int8_tflite_bytes": size,
            "int8_tflite_zipped_bytes": zipped,
            "int8_tflite_accuracy": verify["accuracy"],
            "int8_drop_points": points(dense_accuracy, verify["accuracy"]),
            "int8_vs_dense_float_tflite_zipped_ratio": round(dense_tflite[1] / zipped, 3),
        })

    print("16 clusters", flush=True)
    _, report, _ = bench.run(f"  - {{kind: cluster, number_of_clusters: 16, fine_tune_epochs: {CLUSTER_EPOCHS}}}",
                             RENDER_ONLY)
    clustered = metrics(report, "compress.0.cluster")
    out["cluster"] = {"clusters": 16, "accuracy": clustered["accuracy_after"],
                      "drop_points": points(dense_accuracy, clustered["accuracy_after"]),
                      "unique_per_layer": {layer["layer"]: layer["unique"] for layer in clustered["layers"]},
                      "dense_h5_zipped_bytes": clustered["size"]["before"]["h5_zipped_bytes"],
                      "clustered_h5_zipped_bytes": clustered["size"]["after"]["h5_zipped_bytes"],
                      "zipped_ratio": clustered["size"]["zipped_ratio"]}

    print("distillation, and the same student trained alone", flush=True)
    out["distill"] = distill_comparison(bench, 42)

    print()
    d = out["dense"]
    print(f"dense 64-256-128-10: {d['params']} params, {d['epochs']} epochs, test accuracy {d['accuracy']:.4f}, "
          f"float32 .tflite {d['tflite_float32_bytes']} B ({d['tflite_float32_zipped_bytes']} B zipped)")
    for p in out["prune"]:
        print(f"prune {p['target_sparsity']}: achieved {p['achieved_sparsity']:.4f}; Keras .h5 zipped "
              f"{p['dense_h5_zipped_bytes']} -> {p['pruned_h5_zipped_bytes']} B = {p['pruned_zipped_ratio']:.2f}x, "
              f"accuracy {p['pruned_accuracy']:.4f} ({p['pruned_drop_points']:+.2f} pt drop)")
        print(f"  + PQAT + int8 .tflite: {p['int8_tflite_bytes']} B, zipped {p['int8_tflite_zipped_bytes']} B = "
              f"{p['int8_vs_dense_float_tflite_zipped_ratio']:.2f}x smaller than the dense float32 .tflite zipped, "
              f"LiteRT accuracy {p['int8_tflite_accuracy']:.4f} ({p['int8_drop_points']:+.2f} pt drop)")
    c = out["cluster"]
    print(f"16 clusters: .h5 zipped {c['dense_h5_zipped_bytes']} -> {c['clustered_h5_zipped_bytes']} B = "
          f"{c['zipped_ratio']:.2f}x, accuracy {c['accuracy']:.4f} ({c['drop_points']:+.2f} pt drop), unique "
          f"{c['unique_per_layer']}")
    s = out["distill"]
    print(f"distillation ({s['epochs']} epochs): teacher {s['teacher_params']} params {s['teacher_accuracy']:.4f}; "
          f"student {s['student_params']} params {s['student_accuracy']:.4f} ({s['student_vs_teacher_points']:+.2f} pt "
          f"below the teacher); the student alone {s['student_alone_accuracy']:.4f} "
          f"(distilled is {-s['student_vs_alone_points']:+.2f} pt vs alone)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(f"\nspecs and cache in {workdir}")


if __name__ == "__main__":
    main()
