"""Memory and throughput of the streaming input pipeline on 1x and 8x the data.

Generates ``--base`` and 8 x ``--base`` 32x32x3 float32 examples (random pixels, 10 classes) as TFRecord
shards in a temporary folder, then

1. runs ``tfspec run`` (a new process each, its own cache) of the same spec on both and reports each
   run's peak RSS (``ru_maxrss`` of the child) and the train step's examples/s. The spec sets a small
   ``data.memory_budget`` so neither split is ``cache()``d: what is measured is streaming;
2. times one pass over the training split through :meth:`Dataset.batches` against a hand-written
   ``tf.data`` pipeline (interleave + parallel parse + batch + prefetch) over the same shards. The
   hand-written one reads every record; ours reads every record and keeps the training split (70 %),
   so both records/s and training examples/s are printed.

The folder is deleted afterwards.

8x is each 1x shard copied 8 times (generating records in Python is slow on a loaded machine).

    python benchmarks/bench_data_scale.py [--base 4000] [--shards 16] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SPEC = """\
api_version: tfspec/v1
name: scale
version: 1
data:
  source: {{kind: tfrecord, path: 'shards/*.tfrecord', features: {{image: {{dtype: float32, shape: [32, 32, 3]}}}}, label: label}}
  num_classes: 10
  split: {{validation: 0.1, test: 0.2, seed: 1}}
  memory_budget: 8Mi
model:
  kind: sequential
  input_shape: [32, 32, 3]
  layers:
    - {{type: conv2d, filters: 8, kernel_size: 3, strides: 2, activation: relu}}
    - {{type: global_average_pool2d}}
    - {{type: dense, units: 10, activation: softmax}}
training: {{epochs: {epochs}, batch_size: 128}}
targets:
  - {{kind: tflite, name: phone}}
"""


def generate(folder: Path, examples: int, shards: int) -> None:
    import tensorflow as tf

    (folder / "shards").mkdir(parents=True)
    rng = np.random.default_rng(0)
    writers = [tf.io.TFRecordWriter(str(folder / "shards" / f"part-{i:03d}.tfrecord")) for i in range(shards)]
    for n in range(examples):
        pixels = rng.random(32 * 32 * 3, dtype=np.float32)
        example = tf.train.Example(features=tf.train.Features(feature={
            "image": tf.train.Feature(float_list=tf.train.FloatList(value=pixels)),
            "label": tf.train.Feature(int64_list=tf.train.Int64List(value=[n % 10]))}))
        writers[n % shards].write(example.SerializeToString())
    for writer in writers:
        writer.close()


def tfspec_run(folder: Path, epochs: int) -> dict[str, float]:
    """Peak RSS (MiB) of a ``tfspec run`` child process and its train step's examples/s."""
    spec = folder / "deploy.yaml"
    spec.write_text(SPEC.format(epochs=epochs), encoding="utf-8")
    script = ("import resource, subprocess, sys; p = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
              "print(p.stdout); print(p.stderr[-2000:], file=sys.stderr); "
              "print('MAXRSS', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(p.returncode)")
    tfspec = Path(sys.executable).with_name("tfspec")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", script, str(tfspec), "run", str(spec), "--json", "--quiet",
                           "--cache-dir", str(folder / "cache"), "--dist-dir", str(folder / "dist")],
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if "MAXRSS" not in done.stdout or done.returncode != 0:
        raise SystemExit(done.stdout[-2000:] + done.stderr[-3000:])
    rss_kib = int(done.stdout.rsplit("MAXRSS", 1)[1].split()[0])
    report = json.loads(done.stdout.rsplit("MAXRSS", 1)[0])["report"]
    train = next(s for s in report["steps"] if s["id"] == "train")
    data = next(s for s in report["steps"] if s["id"] == "data")
    seconds = float(train.get("seconds") or train.get("duration_s") or 0.0)
    examples = data["metrics"]["train"] * epochs
    return {"peak_rss_mib": rss_kib / 1024.0, "train_seconds": seconds, "train_examples": examples,
            "examples_per_s": examples / seconds if seconds else float("nan"), "wall_s": wall}


def pipeline_throughput(folder: Path) -> dict[str, float]:
    """One pass of the training split (ours) and of every record (hand-written), examples/s."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf

    from tfspec.runtime.datasets import load_dataset

    entry = next((folder / "cache").glob("*/manifest.json")).parent
    data = load_dataset(entry, folder)
    start = time.perf_counter()
    ours = sum(int(y.shape[0]) for _, y in data.batches("train", batch_size=128))
    ours_s = time.perf_counter() - start
    files = sorted(str(p) for p in (folder / "shards").glob("*.tfrecord"))
    spec = {"image": tf.io.FixedLenFeature([32, 32, 3], tf.float32), "label": tf.io.FixedLenFeature([], tf.int64)}

    def parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        parsed = tf.io.parse_single_example(record, spec)
        return parsed["image"], parsed["label"]

    hand = (tf.data.Dataset.from_tensor_slices(files)
            .interleave(tf.data.TFRecordDataset, cycle_length=8, num_parallel_calls=tf.data.AUTOTUNE)
            .map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(128).prefetch(tf.data.AUTOTUNE))
    start = time.perf_counter()
    records = sum(int(y.shape[0]) for _, y in hand)
    hand_s = time.perf_counter() - start
    total = sum(data.manifest["counts"].values())
    return {"ours_train_examples_per_s": ours / ours_s, "ours_records_per_s": total / ours_s,
            "handwritten_records_per_s": records / hand_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=int, default=4000)
    parser.add_argument("--shards", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tfspec-bench-data-"))
    try:
        results = {}
        start = time.perf_counter()
        generate(root / "x1", args.base, args.shards)
        print(f"generated {args.base} examples in {time.perf_counter() - start:.0f} s", flush=True)
        # 8x: each 1x shard copied 8 times (generating records in Python is slow on a loaded machine; the
        # pipeline's memory and speed depend on the bytes and records read, not on their values)
        (root / "x8" / "shards").mkdir(parents=True)
        for shard in sorted((root / "x1" / "shards").glob("*.tfrecord")):
            for copy in range(8):
                shutil.copyfile(shard, root / "x8" / "shards" / f"{shard.stem}-{copy}.tfrecord")
        for factor in (1, 8):
            folder = root / f"x{factor}"
            print(f"{factor}x: {args.base * factor} examples, load {os.getloadavg()[0]:.2f}", flush=True)
            results[factor] = tfspec_run(folder, args.epochs)
            print(f"{factor}x: {json.dumps(results[factor])}", flush=True)
        print(f"peak RSS ratio 8x/1x: {results[8]['peak_rss_mib'] / results[1]['peak_rss_mib']:.3f}")
        print(f"examples/s 8x/1x: {results[8]['examples_per_s'] / results[1]['examples_per_s']:.3f}")
        throughput = pipeline_throughput(root / "x8")
        print(f"pipeline: {json.dumps(throughput)}")
        print(f"ours/hand-written (records/s): "
              f"{throughput['ours_records_per_s'] / throughput['handwritten_records_per_s']:.3f}")
        print(f"load after: {os.getloadavg()[0]:.2f} (1-min), {os.cpu_count()} CPUs")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
