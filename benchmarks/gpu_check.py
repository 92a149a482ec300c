"""GPU check: `distribution: {kind: mirrored}` training of the digits example on this machine's GPUs.

    python benchmarks/gpu_check.py [--allow-cpu]   (benchmarks/gpu_check.sh makes the venv and calls it)

Prints, as JSON lines and a summary:
* the GPUs TensorFlow sees (and ``nvidia-smi -L`` where present);
* the real ``tfspec`` plan of tests/data/distributed/digits_workers.yaml switched to ``kind: mirrored``
  (data → train → export through ``runtime.executor.run_plan``): replicas, devices, global batch, test
  accuracy, train step time;
* examples/second of the runtime's fit path (``strategy_for`` + ``fit_model``) under MirroredStrategy for
  the digits MLP and a wide MLP, epochs after the first (which traces) only.

Exit 1 when TensorFlow sees no GPU (unless ``--allow-cpu``: the same checks on the CPU, to try the script on
a machine without one), or when the mirrored run did not use every GPU it sees.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import bench_distributed  # noqa: E402  (same data step and models as the multi-worker benchmark)

BATCH_PER_REPLICA = 256
EPOCHS = 6


def emit(kind: str, value: dict[str, Any]) -> None:
    print(json.dumps({"check": kind, **value}, sort_keys=True), flush=True)


def mirrored_spec(work: Path) -> Path:
    text = bench_distributed.SPEC.read_text("utf-8")
    text = text.replace("{kind: multi_worker_mirrored, workers: 2, communication: ring}", "{kind: mirrored}")
    text = text.replace("epochs: 8", "epochs: 20")
    assert "{kind: mirrored}" in text and "epochs: 20" in text
    path = work / "digits_mirrored.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def plan_run(work: Path) -> dict[str, Any]:
    from tfspec.compiler.pipeline import compile_spec
    from tfspec.runtime.executor import run_plan
    from tfspec.running import run_inputs_from_compiled

    result = compile_spec(mirrored_spec(work))
    assert result.ok and result.plan is not None, [d.format() for d in result.diagnostics]
    start = time.perf_counter()
    outcome = run_plan(run_inputs_from_compiled(result), cache_dir=work / "cache", dist_dir=work / "dist", quiet=True, log=lambda line: None)
    train = result.plan.step("train")
    metrics = json.loads((outcome.cache_dir / train.fingerprint / "metrics.json").read_text("utf-8"))
    return {"replicas": metrics["replicas"], "devices": metrics["distribution"]["devices"],
            "global_batch": metrics["distribution"]["global_batch_size"], "test_accuracy": metrics["accuracy"],
            "epochs": metrics["epochs"], "run_seconds": round(time.perf_counter() - start, 2)}


def throughput(data_dir: Path, model_name: str) -> dict[str, Any]:
    from tfspec.runtime.datasets import load_dataset
    from tfspec.runtime.distribute import strategy_for
    from tfspec.runtime.fit import compile_model, fit_model
    from tfspec.runtime.model_builder import build_model
    from tfspec.runtime.tf import import_tf

    _, keras = import_tf()
    data = load_dataset(data_dir)
    fit = {"optimizer": {"kind": "adam", "learning_rate": 1e-3},
           "loss": {"kind": "sparse_categorical_crossentropy", "from_logits": False, "label_smoothing": 0.0},
           "metrics": ["accuracy"], "batch_size": BATCH_PER_REPLICA, "seed": 42, "shuffle_buffer": 10000,
           "distribution": {"kind": "mirrored"}}
    distributed = strategy_for({"fit": fit})
    with distributed.scope():
        model = build_model({"kind": "sequential", "input_shape": [64], "layers": bench_distributed.MODELS[model_name]},
                            spec_dir=ROOT, seed=42)
        callbacks = compile_model(model, fit, replicas=distributed.replicas)
    ends: list[float] = []
    timer = keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: ends.append(time.perf_counter()))
    result = fit_model(model, data, fit=fit, epochs=EPOCHS, quiet=True, callbacks=[*callbacks, timer],
                       distributed=distributed)
    seconds = ends[-1] - ends[0]
    return {"model": model_name, "replicas": distributed.replicas, "devices": list(distributed.devices),
            "global_batch": distributed.global_batch_size(BATCH_PER_REPLICA),
            "examples_per_second": round(len(data.x_train) * (EPOCHS - 1) / seconds, 1),
            "train_accuracy": round(result.history["accuracy"][-1], 4)}


def main() -> int:
    from tfspec.runtime.tf import import_tf

    tf, _ = import_tf()
    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    smi = shutil.which("nvidia-smi")
    listing = subprocess.run([smi, "-L"], capture_output=True, text=True).stdout.strip() if smi else None
    emit("devices", {"tensorflow": tf.__version__, "gpus": gpus, "nvidia_smi": listing,
                     "built_with_cuda": tf.test.is_built_with_cuda()})
    if not gpus and "--allow-cpu" not in sys.argv[1:]:
        print("FAILED: TensorFlow sees no GPU (install tensorflow[and-cuda] matching the pinned version)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="tfspec-gpu-check-") as temp:
        work = Path(temp)
        run = plan_run(work)
        emit("plan_run", run)
        data_dir = bench_distributed.make_data(work / "bench")
        rates = [throughput(data_dir, name) for name in bench_distributed.MODELS]
        for rate in rates:
            emit("throughput", rate)
    print(f"\nGPUs: {', '.join(gpus) or 'none (--allow-cpu)'}")
    print(f"mirrored plan run: {run['replicas']} replicas on {', '.join(run['devices'])}, global batch "
          f"{run['global_batch']}, test accuracy {run['test_accuracy']:.4f} after {run['epochs']} epochs, "
          f"{run['run_seconds']} s")
    for rate in rates:
        print(f"{rate['model']}: {rate['examples_per_second']:.0f} examples/s "
              f"({rate['replicas']} replicas, global batch {rate['global_batch']})")
    expected = len(gpus) or 1
    ok = run["replicas"] == expected and all(r["replicas"] == expected for r in rates)
    if not ok:
        print("FAILED: mirrored training did not use every visible GPU", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
