"""The data step's manifest and the streamed splits: hashed keys, disjoint and stable splits, bad records
named with their file and record index, no copy of the data in the cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from runtime_testing import compile_text, invoke, step_context

from tfspec.runtime.datasets import load_dataset
from tfspec.runtime.errors import DataError
from tfspec.runtime.steps import data as data_step

SPEC = """\
api_version: tfspec/v1
name: t
version: 1
data:
  source: {source}
  split: {{validation: 0.2, test: 0.2, seed: {seed}}}
  num_classes: 3
model:
  kind: sequential
  input_shape: {shape}
  layers:
{layers}
training: {{epochs: 1, batch_size: 16}}
targets: [{{kind: tflite, name: m}}]
"""
TFRECORD = "{kind: tfrecord, path: 'shards/*.tfrecord', label: y, features: {x: {dtype: float32, shape: [2]}}}"
DENSE = "    - {type: dense, name: logits, units: 3, activation: softmax}"


def write_shards(folder: Path, shards: int, per_shard: int, labels: list[int] | None = None) -> None:
    """Example ``n`` has features ``[n, n % 3]`` and label ``n % 3`` (unless ``labels`` says otherwise)."""
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    n = 0
    for s in range(shards):
        with tf.io.TFRecordWriter(str(folder / f"part-{s:02d}.tfrecord")) as writer:
            for _ in range(per_shard):
                label = labels[n] if labels is not None else n % 3
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    "x": tf.train.Feature(float_list=tf.train.FloatList(value=[float(n), float(n % 3)])),
                    "y": tf.train.Feature(int64_list=tf.train.Int64List(value=[label]))})).SerializeToString())
                n += 1


def spec_text(source: str = TFRECORD, seed: int = 5, shape: str = "[2]", layers: str = DENSE) -> str:
    return SPEC.format(source=source, seed=seed, shape=shape, layers=layers)


def run_data(tmp_path: Path, text: str, out: str = "out") -> Path:
    result = compile_text(tmp_path, text)
    ctx = step_context(result, "data", tmp_path / out)
    data_step.run(ctx)
    return ctx.out


def split_ids(entry: Path, spec_dir: Path) -> dict[str, set[int]]:
    data = load_dataset(entry, spec_dir)
    return {split: {int(v) for v in data.arrays(split)[0][:, 0]} for split in ("train", "val", "test")}


def test_the_cache_entry_is_a_manifest_and_the_splits_stream_disjoint_and_stable(tmp_path: Path) -> None:
    write_shards(tmp_path / "shards", shards=3, per_shard=30)
    entry = run_data(tmp_path, spec_text())
    assert sorted(p.name for p in entry.iterdir()) == ["data_info.json", "manifest.json"]  # no copy of the data
    data = load_dataset(entry, tmp_path)
    assert [f["name"] for f in data.files] == [f"shards/part-{s:02d}.tfrecord" for s in range(3)]
    assert data.manifest["counts"] == {"train": 54, "val": 18, "test": 18}
    # stratified: each class (30 examples) gives exactly 6 test and 6 validation examples
    assert data.manifest["class_counts"] == {"train": [18, 18, 18], "val": [6, 6, 6], "test": [6, 6, 6]}
    ids = split_ids(entry, tmp_path)
    assert not ids["train"] & ids["val"] and not ids["train"] & ids["test"] and not ids["val"] & ids["test"]
    assert ids["train"] | ids["val"] | ids["test"] == set(range(90))
    for split in ("train", "val", "test"):  # labels travel with their examples through the split filter
        x, y = data.arrays(split)
        np.testing.assert_array_equal(x[:, 1].astype(np.int64), y)
    # the same keys and seed give the same splits on another run (and on every worker); another seed differs
    assert split_ids(run_data(tmp_path, spec_text(), "again"), tmp_path) == ids
    other = split_ids(run_data(tmp_path, spec_text(seed=6), "other"), tmp_path)
    assert other["test"] != ids["test"]


def test_normalisation_statistics_come_from_the_training_split(tmp_path: Path) -> None:
    write_shards(tmp_path / "shards", shards=2, per_shard=30)
    text = spec_text().replace("  num_classes: 3\n", "  num_classes: 3\n  preprocessing: {normalize: true}\n")
    data = load_dataset(run_data(tmp_path, text), tmp_path)
    x_train, _ = data.arrays("train")
    np.testing.assert_allclose(x_train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(x_train.std(axis=0), 1.0, atol=1e-4)


def test_a_split_over_the_memory_budget_is_not_cached(tmp_path: Path) -> None:
    write_shards(tmp_path / "shards", shards=1, per_shard=30)
    big = load_dataset(run_data(tmp_path, spec_text()), tmp_path)
    text = spec_text().replace("  num_classes: 3\n", "  num_classes: 3\n  memory_budget: \"64\"\n")
    small = load_dataset(run_data(tmp_path, text, "small"), tmp_path)
    assert small.info["memory_budget"] == 64 and big.info["memory_budget"] == 512 * 2 ** 20

    def cached(ds: object) -> bool:
        return "Cache" in type(ds).__name__  # the pipeline ends with cache() or it does not

    assert cached(big.examples("train")) and not cached(small.examples("train"))


def corrupt_record(path: Path, record: int) -> None:
    """Flip a byte inside record ``record``'s payload (its CRC then fails)."""
    raw = bytearray(path.read_bytes())
    offset = 0
    for _ in range(record):
        length = int.from_bytes(raw[offset:offset + 8], "little")
        offset += 8 + 4 + length + 4
    raw[offset + 8 + 4 + 5] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_a_corrupt_record_fails_with_its_file_and_index_and_nothing_written(tmp_path: Path) -> None:
    write_shards(tmp_path / "shards", shards=2, per_shard=20)
    corrupt_record(tmp_path / "shards" / "part-01.tfrecord", 7)
    spec = tmp_path / "deploy.yaml"
    spec.write_text(spec_text(), encoding="utf-8")
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"),
                    "--dist-dir", str(tmp_path / "dist"))
    assert result.exit_code == 2, result.output
    assert "data.source.path: shards/part-01.tfrecord record 7: " in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "dist").exists()
    assert not [p for p in (tmp_path / "cache").iterdir() if (p / "manifest.json").exists()]


def test_an_undecodable_image_is_named(tmp_path: Path) -> None:
    from PIL import Image

    for label, name in enumerate(["a", "b", "c"]):
        folder = tmp_path / "images" / name
        folder.mkdir(parents=True)
        for i in range(6):
            Image.fromarray(np.full((4, 4), 50 * label + i, dtype=np.uint8), mode="L").save(folder / f"{i}.png")
    (tmp_path / "images" / "b" / "3.png").write_bytes(b"not a png at all")
    text = spec_text("{kind: image_folder, path: images, image_size: [4, 4], color_mode: grayscale}", shape="[4, 4, 1]",
                     layers="    - {type: flatten}\n" + DENSE)
    with pytest.raises(DataError) as caught:
        run_data(tmp_path, text)
    assert caught.value.path == ("data", "source", "path")
    assert caught.value.message.startswith("cannot decode image images/b/3.png: ")


def test_a_label_outside_the_classes_is_named_with_its_file(tmp_path: Path) -> None:
    labels = [n % 3 for n in range(40)]
    labels[27] = 7
    write_shards(tmp_path / "shards", shards=2, per_shard=20, labels=labels)
    with pytest.raises(DataError) as caught:
        run_data(tmp_path, spec_text())
    assert "(first: shards/part-01.tfrecord record 7 has label 7)" in caught.value.message
