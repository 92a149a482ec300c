"""Benchmark multi-worker training: examples/second of 1 worker vs 2 local workers on the same data.

    .venv/bin/python benchmarks/bench_distributed.py [--epochs 6] [--json results.json]

Every configuration trains the same data (the digits training split of tests/data/distributed/
digits_workers.yaml, made by the real data step) through the runtime's own code path: the strategy from
``runtime.distribute.strategy_for`` (MultiWorkerMirroredStrategy from TF_CONFIG, ring all-reduce), the
model from ``runtime.model_builder``, ``runtime.fit.compile_model`` and ``runtime.fit.fit_model``. The
batch size is per replica, so 2 workers take global steps of twice the examples. Each worker is its own
process on 127.0.0.1 (free ports), as on a cluster. Throughput is the chief's: training examples of the
epochs after the first (which traces the functions) divided by their wall time.

On a machine with 2 cores shared by both workers no speed-up is expected: the point is a measured
baseline of what the collective exchange costs.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "tests" / "data" / "distributed" / "digits_workers.yaml"
MODELS = {
    "digits MLP 64-128-10": [{"type": "dense", "name": "hidden", "units": 128, "activation": "relu"},
                             {"type": "dense", "name": "logits", "units": 10, "activation": "softmax"}],
    "wide MLP 64-1024-1024-10": [{"type": "dense", "name": "h1", "units": 1024, "activation": "relu"},
                                 {"type": "dense", "name": "h2", "units": 1024, "activation": "relu"},
                                 {"type": "dense", "name": "logits", "units": 10, "activation": "softmax"}],
}
BATCH_PER_REPLICA = 64


def free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def make_data(work: Path) -> Path:
    """Run the spec's real data step once; every worker of every configuration reads its output."""
    from tfspec.compiler.pipeline import compile_spec
    from tfspec.runtime.context import StepContext
    from tfspec.runtime.steps import data as data_step

    result = compile_spec(SPEC)
    assert result.plan is not None and result.resolved is not None
    out = work / "data"
    out.mkdir(parents=True)
    ctx = StepContext(step=result.plan.step("data"), plan=result.plan, root=SPEC.parent, out=out,
                      inputs={}, quiet=True, log=lambda line: None)
    data_step.run(ctx)
    return out


def child(data_dir: Path, model_name: str, epochs: int) -> dict[str, Any]:
    """One worker (TF_CONFIG in the environment): train and time each epoch."""
    from tfspec.runtime.datasets import load_dataset
    from tfspec.runtime.distribute import peer_failures, strategy_for
    from tfspec.runtime.fit import compile_model, fit_model
    from tfspec.runtime.model_builder import build_model
    from tfspec.runtime.tf import import_tf

    _, keras = import_tf()
    data = load_dataset(data_dir)
    fit = {"optimizer": {"kind": "adam", "learning_rate": 1e-3},
           "loss": {"kind": "sparse_categorical_crossentropy", "from_logits": False, "label_smoothing": 0.0},
           "metrics": ["accuracy"], "batch_size": BATCH_PER_REPLICA, "seed": 42, "shuffle_buffer": 10000,
           "distribution": {"kind": "multi_worker_mirrored", "communication": "ring"}}
    distributed = strategy_for({"fit": fit})
    with distributed.scope():
        model = build_model({"kind": "sequential", "input_shape": [64], "layers": MODELS[model_name]},
                            spec_dir=ROOT, seed=42)
        callbacks = compile_model(model, fit, replicas=distributed.replicas)

    class Timer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.ends: list[float] = []

        def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            self.ends.append(time.perf_counter())

    timer = Timer()
    with peer_failures(distributed):
        result = fit_model(model, data, fit=fit, epochs=epochs, quiet=True, callbacks=[*callbacks, timer],
                           distributed=distributed)
    steady = timer.ends[-1] - timer.ends[0]
    examples = len(data.x_train) * (epochs - 1)
    return {"replicas": distributed.replicas, "chief": distributed.chief, "train_examples": len(data.x_train),
            "global_batch": distributed.global_batch_size(BATCH_PER_REPLICA), "timed_epochs": epochs - 1,
            "seconds": steady, "examples_per_second": examples / steady,
            "final_accuracy": result.history["accuracy"][-1]}


def run_cluster(workers: int, data_dir: Path, model_name: str, epochs: int) -> dict[str, Any]:
    hosts = [f"127.0.0.1:{port}" for port in free_ports(workers)]
    processes = []
    for index in range(workers):
        env = {k: v for k, v in os.environ.items() if k not in ("TF_CONFIG", "JOB_COMPLETION_INDEX")}
        env.update({"JOB_COMPLETION_INDEX": str(index), "TFSPEC_WORKER_HOSTS": ",".join(hosts)})
        processes.append(subprocess.Popen(
            [sys.executable, __file__, "--child", str(data_dir), model_name, str(epochs)],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = [p.communicate(timeout=900) for p in processes]
    for process, (_, err) in zip(processes, outputs):
        if process.returncode != 0:
            raise SystemExit(f"worker failed ({process.returncode}):\n{err[-3000:]}")
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    return next(r for r in results if r["chief"])


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(child(Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as work:
        data_dir = make_data(Path(work))
        for model_name in MODELS:
            one = run_cluster(1, data_dir, model_name, args.epochs)
            two = run_cluster(2, data_dir, model_name, args.epochs)
            rows.append({"model": model_name, "one_worker": one, "two_workers": two,
                         "ratio": two["examples_per_second"] / one["examples_per_second"]})
    print(f"cores: {os.cpu_count()}, per-replica batch {BATCH_PER_REPLICA}, {args.epochs} epochs "
          f"(first one untimed), ring all-reduce over 127.0.0.1")
    print(f"{'model':28} {'1 worker ex/s':>14} {'2 workers ex/s':>15} {'ratio':>6}")
    for row in rows:
        print(f"{row['model']:28} {row['one_worker']['examples_per_second']:14.0f} "
              f"{row['two_workers']['examples_per_second']:15.0f} {row['ratio']:6.2f}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
