"""Memory and throughput of the streaming input pipeline on 1x and 8x the data.

Generates ``--base`` and ``--factor`` x ``--base`` 32x32x3 float32 examples (random pixels, 10 classes) as
TFRecord shards in a temporary folder (the issue's sizes are ``--base 25000 --factor 8``), then

1. runs ``tfspec run`` (a new process each, its own cache) of the same spec on both and reports each
   run's peak RSS (``ru_maxrss`` of the child) and the train step's examples/s. The spec sets a small
   ``data.memory_budget`` so neither split is ``cache()``d: what is measured is streaming. The 1x run
   trains ``--factor`` x ``--epochs`` epochs, the 8x run ``--epochs``: both push the same number of
   examples through training, so the fixed cost of the step (building and tracing the model,
   evaluation) weighs the same in both examples/s;
2. times passes over the training split through :meth:`Dataset.batches` against a hand-written
   ``tf.data`` pipeline (interleave + parallel parse + batch + prefetch) over the same shards, alternating
   (``--repeats`` of each, the best kept: the machine is shared). The hand-written one reads every record;
   ours reads every record and keeps the training split (70 %), so both records/s and training
   examples/s are printed; the goal compares records/s.

Records are serialised without ``tf.train.Example`` objects: every example has the same layout, so its
bytes are a fixed prefix, the pixels' bytes and the label's field (checked against the protobuf parser
once); ``TFRecordWriter`` adds the framing. The folder is deleted afterwards.

    python benchmarks/bench_data_scale.py [--base 25000] [--factor 8] [--shards 32] [--epochs 1]
        [--skip-run] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
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


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def example_layout(pixels: int) -> tuple[bytes, list[bytes]]:
    """``(prefix, suffix per label)``: ``prefix + float32 pixels (little-endian) + suffix[label]`` is the
    serialised ``tf.train.Example`` {image: float_list, label: int64_list} (labels 0..9)."""
    float_list = _varint(1 << 3 | 2) + _varint(4 * pixels)  # FloatList.value, packed: the bytes follow
    feature = _varint(2 << 3 | 2) + _varint(len(float_list) + 4 * pixels) + float_list  # Feature.float_list
    entry_head = _field(1, b"image") + _varint(2 << 3 | 2) + _varint(len(feature) + 4 * pixels) + feature
    image_entry_len = len(entry_head) + 4 * pixels
    suffixes = []
    for label in range(10):
        label_entry = _field(1, _field(1, b"label") + _field(2, _field(3, _field(1, _varint(label)))))
        features_len = len(_varint(1 << 3 | 2)) + len(_varint(image_entry_len)) + image_entry_len + len(label_entry)
        suffixes.append(label_entry)
    head = _varint(1 << 3 | 2) + _varint(features_len) + _varint(1 << 3 | 2) + _varint(image_entry_len) + entry_head
    return head, suffixes


def generate(folder: Path, examples: int, shards: int, seed: int = 0) -> float:
    """``examples`` random examples (label ``n % 10``) in ``shards`` TFRecord files; returns examples/s."""
    import tensorflow as tf

    start = time.perf_counter()
    (folder / "shards").mkdir(parents=True)
    rng = np.random.default_rng(seed)
    pixels = 32 * 32 * 3
    head, suffixes = example_layout(pixels)
    check = tf.train.Example.FromString(head + np.arange(pixels, dtype="<f4").tobytes() + suffixes[3])
    assert list(check.features.feature["label"].int64_list.value) == [3]
    assert check.features.feature["image"].float_list.value[pixels - 1] == pixels - 1
    writers = [tf.io.TFRecordWriter(str(folder / "shards" / f"part-{i:03d}.tfrecord")) for i in range(shards)]
    chunk = 4096
    for first in range(0, examples, chunk):
        block = rng.random((min(chunk, examples - first), pixels), dtype=np.float32).astype("<f4")
        for row, n in zip(block, range(first, first + len(block))):
            writers[n % shards].write(head + row.tobytes() + suffixes[n % 10])
    for writer in writers:
        writer.close()
    return examples / (time.perf_counter() - start)


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


def pipeline_throughput(folder: Path, entry: Path, repeats: int) -> dict[str, float]:
    """Passes of the training split (ours) and of every record (hand-written), alternating; the best of
    ``repeats`` each, in records/s."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import tensorflow as tf

    from tfspec.runtime.datasets import load_dataset

    data = load_dataset(entry, folder)
    files = sorted(str(p) for p in (folder / "shards").glob("*.tfrecord"))
    spec = {"image": tf.io.FixedLenFeature([32, 32, 3], tf.float32), "label": tf.io.FixedLenFeature([], tf.int64)}

    def parse(record: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        parsed = tf.io.parse_single_example(record, spec)
        return parsed["image"], parsed["label"]

    def ours() -> int:
        return sum(int(y.shape[0]) for _, y in data.batches("train", batch_size=128))

    def hand() -> int:
        ds = (tf.data.Dataset.from_tensor_slices(files)
              .interleave(tf.data.TFRecordDataset, cycle_length=8, num_parallel_calls=tf.data.AUTOTUNE)
              .map(parse, num_parallel_calls=tf.data.AUTOTUNE).batch(128).prefetch(tf.data.AUTOTUNE))
        return sum(int(y.shape[0]) for _, y in ds)

    best = {"ours": float("inf"), "hand": float("inf")}
    kept = records = 0
    for _ in range(repeats):
        for name, fn in (("ours", ours), ("hand", hand)):
            start = time.perf_counter()
            count = fn()
            best[name] = min(best[name], time.perf_counter() - start)
            kept, records = (count, records) if name == "ours" else (kept, count)
    total = sum(data.manifest["counts"].values())
    return {"ours_train_examples_per_s": kept / best["ours"], "ours_records_per_s": total / best["ours"],
            "handwritten_records_per_s": records / best["hand"], "ours_s": best["ours"], "hand_s": best["hand"]}


def data_entry(folder: Path) -> Path:
    """The data step's cache entry of ``folder`` (after a run, or made by running the data step alone)."""
    found = list((folder / "cache").glob("*/manifest.json"))
    if not found:
        spec = folder / "deploy.yaml"
        spec.write_text(SPEC.format(epochs=1), encoding="utf-8")
        tfspec = Path(sys.executable).with_name("tfspec")
        subprocess.run([str(tfspec), "build", str(spec), "--out", str(folder / "build")], check=True,
                       capture_output=True)
        subprocess.run([str(tfspec), "run", "--plan", str(folder / "build" / "plan.json"), "--step", "data",
                        "--quiet", "--cache-dir", str(folder / "cache")], check=True)
        found = list((folder / "cache").glob("*/manifest.json"))
    return found[0].parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", type=int, default=25000)
    parser.add_argument("--factor", type=int, default=8)
    parser.add_argument("--shards", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--skip-run", action="store_true", help="only the pipeline comparison (on the 1x set)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="tfspec-bench-data-"))
    try:
        results = {}
        factors = (1,) if args.skip_run else (1, args.factor)
        for factor in factors:
            rate = generate(root / f"x{factor}", args.base * factor, args.shards * factor, seed=factor)
            print(f"{factor}x: generated {args.base * factor} examples at {rate:.0f} examples/s", flush=True)
        if not args.skip_run:
            for factor in factors:
                folder = root / f"x{factor}"
                print(f"{factor}x: {args.base * factor} examples, load {os.getloadavg()[0]:.2f}", flush=True)
                epochs = args.epochs * (args.factor if factor == 1 else 1)  # the same examples trained
                results[factor] = tfspec_run(folder, epochs)
                print(f"{factor}x: {json.dumps(results[factor])}", flush=True)
            last = factors[-1]
            print(f"peak RSS ratio {last}x/1x: {results[last]['peak_rss_mib'] / results[1]['peak_rss_mib']:.3f}")
            print(f"examples/s {last}x/1x: {results[last]['examples_per_s'] / results[1]['examples_per_s']:.3f}")
        print(f"pipeline on 1x, load {os.getloadavg()[0]:.2f}", flush=True)
        throughput = pipeline_throughput(root / "x1", data_entry(root / "x1"), args.repeats)
        print(f"pipeline: {json.dumps(throughput)}")
        print(f"ours/hand-written (records/s): "
              f"{throughput['ours_records_per_s'] / throughput['handwritten_records_per_s']:.3f}")
        print(f"load after: {os.getloadavg()[0]:.2f} (1-min), {os.cpu_count()} CPUs")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
