"""NaN and infinity in the data: refused in every source with file, row or record, and column (exit 2, before
training), or — with ``data.missing_values`` — imputed from the training split only, by the same code in
training, evaluation and (``in_model``) the exported model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime_testing import compile_text, invoke, read_json, step_context
from tfspec.runtime.datasets import load_dataset
from tfspec.runtime.errors import DataError
from tfspec.runtime.steps import data as data_step

SPEC = """\
api_version: tfspec/v1
name: t
version: 1
data:
  source: {source}
  split: {{validation: 0.2, test: 0.2, seed: 3}}
{data}model:
  kind: sequential
  input_shape: [3]
  layers:
    - {{type: dense, units: 3, activation: softmax}}
training: {{epochs: 1}}
targets: [{{kind: tflite, name: m}}]
"""


def _arrays(rows: int = 90, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(rows) % 3
    return (rng.normal(size=(rows, 3)) + y[:, None] * 2.0).astype(np.float32), y


def _data_step(tmp_path: Path, source: str, data: str = "") -> tuple[dict, Path]:
    result = compile_text(tmp_path, SPEC.format(source=source, data=data))
    ctx = step_context(result, "data", tmp_path / "out")
    return data_step.run(ctx), ctx.out


def _refused(tmp_path: Path, source: str, data: str = "") -> DataError:
    with pytest.raises(DataError) as caught:
        _data_step(tmp_path, source, data)
    return caught.value


def test_nan_and_infinity_in_an_npz_are_refused_with_row_and_column(tmp_path: Path) -> None:
    x, y = _arrays()
    x[20, 2] = np.nan
    np.savez(tmp_path / "d.npz", x=x, y=y)
    error = _refused(tmp_path, "{kind: npz, path: d.npz}")
    assert error.path == ("data", "source", "path")
    assert error.message == "d.npz array 'x' row 20: column 2 is NaN: a missing value"
    assert error.hint is not None and "data.missing_values" in error.hint
    x[20, 2], x[33, 0] = 1.0, np.inf
    np.savez(tmp_path / "d.npz", x=x, y=y)
    error = _refused(tmp_path, "{kind: npz, path: d.npz}", "  missing_values: {strategy: mean}\n")
    assert error.message == "d.npz array 'x' row 33: column 0 is inf: feature values must be finite"


def _tfrecord(path: Path, x: np.ndarray, y: np.ndarray) -> None:
    import tensorflow as tf

    with tf.io.TFRecordWriter(str(path)) as writer:
        for row, label in zip(x, y):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "size": tf.train.Feature(float_list=tf.train.FloatList(value=row[:1])),
                "pair": tf.train.Feature(float_list=tf.train.FloatList(value=row[1:])),
                "class": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            })).SerializeToString())


TFRECORD = ("{kind: tfrecord, path: 'part-*.tfrecord', label: class, "
            "features: {size: {dtype: float32, shape: [1]}, pair: {dtype: float32, shape: [2]}}}")


def test_nan_in_a_tfrecord_feature_is_refused_while_streaming_with_file_and_record(tmp_path: Path) -> None:
    x, y = _arrays()
    x[7, 2] = np.nan  # the second element of `pair`
    _tfrecord(tmp_path / "part-0.tfrecord", x, y)
    error = _refused(tmp_path, TFRECORD)
    assert error.message == "part-0.tfrecord record 7: feature 'pair' element 1 is NaN: a missing value"


def _train_raw(out: Path, root: Path) -> np.ndarray:
    data = load_dataset(out, root)
    return np.concatenate([x for x, _ in data.examples("train", raw=True).batch(512).as_numpy_iterator()])


@pytest.mark.parametrize("strategy", ["mean", "median"])
def test_missing_values_are_filled_from_the_training_split_only(tmp_path: Path, strategy: str) -> None:
    x, y = _arrays(rows=150)
    rng = np.random.default_rng(1)
    x[rng.random(150) < 0.2, 1] = np.nan
    np.savez(tmp_path / "d.npz", x=x, y=y)
    _, out = _data_step(tmp_path, "{kind: npz, path: d.npz}",
                        f"  missing_values: {{strategy: {strategy}}}\n  preprocessing: {{normalize: true}}\n")
    info = read_json(out / "data_info.json")
    raw = _train_raw(out, tmp_path)
    expected = np.nanmean(raw, axis=0) if strategy == "mean" else np.nanmedian(raw, axis=0)
    np.testing.assert_allclose(info["impute"]["values"], expected, rtol=1e-5)
    everything = np.nanmean(x, axis=0) if strategy == "mean" else np.nanmedian(x, axis=0)
    assert abs(info["impute"]["values"][1] - everything[1]) > 1e-6  # not the validation and test rows too
    counts = info["impute"]["missing"]
    assert counts["train"] == int(np.isnan(raw).sum()) and sum(counts.values()) == int(np.isnan(x).sum())
    # what training reads: no NaN, normalised with the imputed training split's own statistics
    data = load_dataset(out, tmp_path)
    train, _ = data.arrays("train")
    assert not np.isnan(train).any()
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=1e-4)
    np.testing.assert_allclose(train.std(axis=0), 1.0, atol=1e-3)


def test_a_constant_fills_a_tfrecord_stream(tmp_path: Path) -> None:
    x, y = _arrays()
    x[[3, 50], 0] = np.nan
    _tfrecord(tmp_path / "part-0.tfrecord", x, y)
    _, out = _data_step(tmp_path, TFRECORD, "  missing_values: {strategy: constant, value: -1}\n")
    info = read_json(out / "data_info.json")
    assert info["impute"]["values"] == [-1.0, -1.0, -1.0] and sum(info["impute"]["missing"].values()) == 2
    rows = np.concatenate([load_dataset(out, tmp_path).arrays(s)[0] for s in ("train", "val", "test")])
    assert not np.isnan(rows).any() and int((rows[:, 0] == -1.0).sum()) == 2


@pytest.mark.slow
def test_nan_rows_of_a_csv_stop_the_run_before_training_or_are_imputed_inside_the_served_model(tmp_path: Path) -> None:
    """The case that once trained to 0.37 with NaN normalisation statistics and passed its gates."""
    rng = np.random.default_rng(0)
    y = np.arange(240) % 2
    x = rng.normal(size=(240, 3)) + y[:, None] * 2.5
    lines = ["a,b,c,label"] + [f"{r[0]:.4f},{'nan' if 20 <= i < 40 else f'{r[1]:.4f}'},{r[2]:.4f},{label}"
                               for i, (r, label) in enumerate(zip(x, y))]
    (tmp_path / "t.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    spec = tmp_path / "deploy.yaml"
    text = SPEC.format(source="{kind: csv, path: t.csv, label_column: label}", data="").replace(
        "units: 3", "units: 2").replace("targets: [{kind: tflite, name: m}]", "targets: [{kind: tf_serving, name: serving}]")
    spec.write_text(text, encoding="utf-8")
    refused = invoke("run", str(spec), "--quiet", "--dist-dir", str(tmp_path / "dist"))
    assert refused.exit_code == 2, refused.output
    assert "data.source.path: t.csv line 22: column 'b' holds 'nan': a missing value" in refused.output
    assert not (tmp_path / "dist").exists() and not (tmp_path / ".tfspec" / "cache").exists()

    spec.write_text(text.replace("  split:", "  missing_values: {strategy: mean}\n"
                                 "  preprocessing: {normalize: true, in_model: true}\n  split:").replace(
        "training: {epochs: 1}", "training: {epochs: 20, optimizer: {kind: adam, learning_rate: 0.05}}"),
        encoding="utf-8")
    result = invoke("run", str(spec), "--quiet", "--dist-dir", str(tmp_path / "dist"))
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "dist" / "report.json").read_text("utf-8"))
    assert report["passed"] and report["stages"][0]["value"] > 0.85
    import tensorflow as tf

    [cache_info] = [p for p in (tmp_path / ".tfspec" / "cache").glob("*/data_info.json")]
    fill = read_json(cache_info)["impute"]["values"]
    assert all(np.isfinite(fill)) and read_json(cache_info)["impute"]["missing"]["train"] > 0
    served = tf.saved_model.load(str(tmp_path / "dist" / "serving" / "models" / "t" / "1")).signatures["serving_default"]
    missing = served(inputs=tf.constant([[0.3, np.nan, 1.2]], tf.float32))
    filled = served(inputs=tf.constant([[0.3, fill[1], 1.2]], tf.float32))
    np.testing.assert_allclose(list(missing.values())[0].numpy(), list(filled.values())[0].numpy(), rtol=1e-6)
