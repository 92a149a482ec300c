"""The data step on every source kind, with fixtures written here; bad data names the spec key."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from runtime_testing import compile_text, invoke, read_json, step_context
from tfspec.compiler.pipeline import compile_spec
from tfspec.base.errors import Diagnostic
from tfspec.runtime.datasets import load_dataset
from tfspec.runtime.errors import DataError
from tfspec.runtime.steps import data as data_step

CLASSES = 3
PER_CLASS = 20


def spec(source: str, input_shape: str, extra_data: str = "", layers: str = "") -> str:
    layers = layers or "    - {type: dense, units: 3, activation: softmax}\n"
    return (
        "api_version: tfspec/v1\nname: t\nversion: 1\n"
        "data:\n"
        f"  source: {source}\n"
        "  split: {validation: 0.2, test: 0.2, seed: 3}\n"
        f"{extra_data}"
        "model:\n  kind: sequential\n"
        f"  input_shape: {input_shape}\n"
        "  layers:\n" + layers +
        "training: {epochs: 1}\n"
        "targets: [{kind: tflite, name: m}]\n"
    )


def features(n_features: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(CLASSES), PER_CLASS)
    x = (rng.normal(size=(len(y), n_features)) + y[:, None] * 3.0).astype(np.float32)
    return x, y


def run_data(tmp_path: Path, text: str, out: str = "out") -> tuple[dict, dict[str, np.ndarray], dict]:
    result = compile_text(tmp_path, text)
    ctx = step_context(result, "data", tmp_path / out)
    metrics = data_step.run(ctx)
    data = load_dataset(ctx.out, tmp_path)
    arrays = {}
    for split in ("train", "val", "test"):
        arrays[f"x_{split}"], arrays[f"y_{split}"] = data.arrays(split)
    return metrics, arrays, read_json(ctx.out / "data_info.json")


def assert_same_rows(actual: np.ndarray, expected: np.ndarray) -> None:
    """The same multiset of rows (splits shuffle them): compare after a lexicographic sort."""
    assert actual.shape == expected.shape
    order = lambda a: a[np.lexsort(a.T[::-1])]  # noqa: E731
    np.testing.assert_allclose(order(actual), order(expected), rtol=1e-5, atol=1e-5)


def assert_stratified(arrays: dict[str, np.ndarray]) -> None:
    for split in ("train", "val", "test"):
        counts = np.bincount(arrays[f"y_{split}"], minlength=CLASSES)
        assert counts.max() - counts.min() <= 1, (split, counts)
    assert sum(len(arrays[f"y_{s}"]) for s in ("train", "val", "test")) == CLASSES * PER_CLASS


def test_npz_source_split_is_stratified_and_normalised_with_train_statistics(tmp_path: Path) -> None:
    x, y = features(4)
    np.savez(tmp_path / "train.npz", pixels=x, target=y)
    metrics, arrays, info = run_data(tmp_path, spec("{kind: npz, path: train.npz, features: pixels, labels: target}",
                                                    "[4]", "  preprocessing: {normalize: true}\n  num_classes: 3\n"))
    assert metrics["examples"] == 60 and metrics["test"] == 12 and metrics["validation"] == 12
    assert_stratified(arrays)
    np.testing.assert_allclose(arrays["x_train"].mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(arrays["x_train"].std(axis=0), 1.0, atol=1e-4)
    # The stored statistics undo the normalisation of every split (the app applies the same ones).
    mean, std = np.array(info["mean"]), np.array(info["std"])
    restored = np.concatenate([arrays[f"x_{s}"] for s in ("train", "val", "test")]) * std + mean
    assert_same_rows(restored, x)
    assert arrays["y_train"].dtype == np.int64


def test_same_seed_gives_the_same_split(tmp_path: Path) -> None:
    x, y = features(4)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    text = spec("{kind: npz, path: d.npz}", "[4]", "  num_classes: 3\n")
    _, first, _ = run_data(tmp_path, text, "first")
    _, second, _ = run_data(tmp_path, text, "second")
    _, other, _ = run_data(tmp_path, text.replace("seed: 3", "seed: 4"), "other")
    assert not np.array_equal(first["y_test"], other["y_test"]) or not np.array_equal(first["x_test"], other["x_test"])
    for key in first:
        np.testing.assert_array_equal(first[key], second[key])


def test_csv_source_reads_the_named_columns_in_order(tmp_path: Path) -> None:
    x, y = features(3)
    with open(tmp_path / "train.csv", "w", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(["c", "label", "a", "b", "note"])
        for row, label in zip(x, y):
            writer.writerow([row[2], label, row[0], row[1], "ignored"])
    _, arrays, info = run_data(tmp_path, spec(
        "{kind: csv, path: train.csv, label_column: label, feature_columns: [a, b, c], delimiter: ';'}",
        "[3]", "  num_classes: 3\n"))
    assert_stratified(arrays)
    rows = np.concatenate([arrays[f"x_{s}"] for s in ("train", "val", "test")])
    assert_same_rows(rows, x)
    assert info["source"] == "csv"


def test_tfrecord_source_concatenates_features_in_spec_order(tmp_path: Path) -> None:
    import tensorflow as tf

    x, y = features(3)
    with tf.io.TFRecordWriter(str(tmp_path / "part-0.tfrecord"), options="GZIP") as writer:
        for row, label in zip(x, y):
            example = tf.train.Example(features=tf.train.Features(feature={
                "pair": tf.train.Feature(float_list=tf.train.FloatList(value=row[:2])),
                "single": tf.train.Feature(float_list=tf.train.FloatList(value=row[2:])),
                "class": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            }))
            writer.write(example.SerializeToString())
    source = ("{kind: tfrecord, path: 'part-*.tfrecord', compression: gzip, label: class, "
              "features: {single: {dtype: float32, shape: [1]}, pair: {dtype: float32, shape: [2]}}}")
    _, arrays, _ = run_data(tmp_path, spec(source, "[3]", "  num_classes: 3\n"))
    assert_stratified(arrays)
    rows = np.concatenate([arrays[f"x_{s}"] for s in ("train", "val", "test")])
    expected = np.concatenate([x[:, 2:], x[:, :2]], axis=1)  # `single` first, as the spec lists it
    assert_same_rows(rows, expected)


def test_tfrecord_classes_are_checked_against_the_output_layer(tmp_path: Path) -> None:
    import tensorflow as tf

    x, y = features(3)
    with tf.io.TFRecordWriter(str(tmp_path / "part-0.tfrecord")) as writer:
        for row, label in zip(x, y):
            writer.write(tf.train.Example(features=tf.train.Features(feature={
                "x": tf.train.Feature(float_list=tf.train.FloatList(value=row)),
                "class": tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
            })).SerializeToString())
    source = "{kind: tfrecord, path: 'part-*.tfrecord', label: class, features: {x: {dtype: float32, shape: [3]}}}"
    error = _error(tmp_path, spec(source, "[3]", layers="    - {type: dense, units: 5, activation: softmax}\n"))
    assert error.path == ("model", "layers", 0, "units")
    assert error.message == ("the model outputs 5 classes but the tfrecord source has 3 (0, 1, 2; no example of 3, 4)")


def test_image_folder_source_uses_folder_names_as_labels(tmp_path: Path) -> None:
    from PIL import Image

    names = ["cat", "dog", "owl"]
    for label, name in enumerate(names):
        folder = tmp_path / "images" / name
        folder.mkdir(parents=True)
        for i in range(PER_CLASS):
            pixels = np.full((12, 10), 40 + 80 * label + i, dtype=np.uint8)
            Image.fromarray(pixels, mode="L").save(folder / f"{i:02d}.png")
    (tmp_path / "images" / "dog" / "notes.txt").write_text("not an image")
    _, arrays, info = run_data(tmp_path, spec(
        "{kind: image_folder, path: images, image_size: [8, 8], color_mode: grayscale}", "[8, 8, 1]",
        "  preprocessing: {rescale: 0.00392156862745098}\n",
        "    - {type: flatten}\n    - {type: dense, units: 3, activation: softmax}\n"))
    assert arrays["x_train"].shape[1:] == (8, 8, 1)
    assert_stratified(arrays)
    assert info["labels"] == names and info["num_classes"] == 3
    for split in ("train", "test"):  # every image of class k has the grey level 40 + 80k + i (over 255)
        levels = arrays[f"x_{split}"][:, 0, 0, 0] * 255
        np.testing.assert_array_equal((levels - 40) // 80, arrays[f"y_{split}"])


def test_sklearn_digits_reshaped_for_a_conv_net(tmp_path: Path) -> None:
    _, arrays, info = run_data(tmp_path, spec(
        "{kind: sklearn_digits}", "[8, 8, 1]", "  preprocessing: {rescale: 0.0625, reshape: [8, 8, 1]}\n",
        "    - {type: conv2d, filters: 4, kernel_size: 3}\n    - {type: flatten}\n"
        "    - {type: dense, units: 10, activation: softmax}\n"))
    assert arrays["x_train"].shape[1:] == (8, 8, 1)
    assert float(arrays["x_train"].max()) == 1.0 and info["rescale"] == 0.0625
    assert info["num_classes"] == 10 and sum(len(arrays[f"y_{s}"]) for s in ("train", "val", "test")) == 1797


def _error(tmp_path: Path, text: str) -> DataError:
    result = compile_text(tmp_path, text)
    with pytest.raises(DataError) as caught:
        data_step.run(step_context(result, "data", tmp_path / "out"))
    return caught.value


def test_missing_file_names_the_source_path_key(tmp_path: Path) -> None:
    # compiling already reports a missing file; this one goes away between compile and run
    x, y = features(4)
    np.savez(tmp_path / "gone.npz", x=x, y=y)  # soon deleted
    result = compile_text(tmp_path, spec("{kind: npz, path: gone.npz}", "[4]", "  num_classes: 3\n"))
    (tmp_path / "gone.npz").unlink()
    with pytest.raises(DataError) as caught:
        data_step.run(step_context(result, "data", tmp_path / "out"))
    assert caught.value.path == ("data", "source", "path") and "gone.npz does not exist" in caught.value.message


def _diagnostic(tmp_path: Path, text: str) -> Diagnostic:
    """What the compiler (``tfspec build``, before any step) says first about the spec and its data file."""
    path = tmp_path / "deploy.yaml"
    path.write_text(text, encoding="utf-8")
    result = compile_spec(path)
    assert not result.ok
    return result.diagnostics[0]


def test_wrong_csv_column_names_the_label_column_key(tmp_path: Path) -> None:
    (tmp_path / "t.csv").write_text("a,b,y\n1,2,0\n")
    first = _diagnostic(tmp_path, spec("{kind: csv, path: t.csv, label_column: label}", "[2]", "  num_classes: 3\n"))
    assert first.path == "data.source.label_column" and "no column 'label'" in first.message
    first = _diagnostic(tmp_path, spec("{kind: csv, path: t.csv, label_column: y, feature_columns: [a, z]}", "[2]",
                                       "  num_classes: 3\n"))
    assert first.path == "data.source.feature_columns[1]"


def test_wrong_npz_array_name_names_the_features_key(tmp_path: Path) -> None:
    x, y = features(4)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    first = _diagnostic(tmp_path, spec("{kind: npz, path: d.npz, features: images}", "[4]", "  num_classes: 3\n"))
    assert first.path == "data.source.features" and "x, y" in first.message


def test_labels_outside_num_classes_are_rejected(tmp_path: Path) -> None:
    x, y = features(4)
    np.savez(tmp_path / "d.npz", x=x, y=y + 5)
    first = _diagnostic(tmp_path, spec("{kind: npz, path: d.npz}", "[4]", "  num_classes: 3\n"))
    assert first.path == "model.layers[0].units"  # the output layer fixes the classes
    assert "holds labels 5, 6, 7" in first.message


def test_labels_outside_num_classes_in_a_file_changed_after_the_build_stop_the_data_step(tmp_path: Path) -> None:
    x, y = features(4)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    result = compile_text(tmp_path, spec("{kind: npz, path: d.npz}", "[4]", "  num_classes: 3\n"))
    np.savez(tmp_path / "d.npz", x=x, y=y + 5)
    with pytest.raises(DataError) as caught:
        data_step.run(step_context(result, "data", tmp_path / "out"))
    assert caught.value.path == ("model", "layers", 0, "units") and "labels 5..7" in caught.value.message


def test_shape_mismatch_through_the_cli_names_file_line_and_key(tmp_path: Path) -> None:
    x, y = features(5)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    path = tmp_path / "deploy.yaml"
    text = spec("{kind: npz, path: d.npz}", "[4]", "  num_classes: 3\n")
    path.write_text(text)
    result = invoke("run", str(path), "--dist-dir", str(tmp_path / "dist"), "--quiet")
    assert result.exit_code == 2, result.output
    line = text.splitlines().index("  input_shape: [4]") + 1
    assert (f"{path}:{line}:3: model.input_shape: input shape [4] does not match d.npz's array 'x' (examples of "
            "shape [5])") in result.stderr  # found by the compiler: `tfspec build --check` says it too
    assert "Traceback" not in result.output
    cache = tmp_path / ".tfspec" / "cache"
    assert not cache.exists() or [p.name for p in cache.iterdir()] == []  # nothing half-written
    assert not (tmp_path / "dist").exists()


def test_a_run_from_the_plan_finds_its_data_under_the_root_and_names_file_line_and_key(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    x, y = features(5)
    np.savez(project / "d.npz", x=x[:, :4], y=y)
    path = project / "deploy.yaml"
    text = spec("{kind: npz, path: d.npz}", "[4]", "  num_classes: 3\n")
    path.write_text(text)
    build = tmp_path / "elsewhere" / "build"
    assert invoke("build", str(path), "--out", str(build)).exit_code == 0
    np.savez(project / "d.npz", x=x, y=y)  # the data changed after the build: the data step finds it
    # relative data paths resolve against the plan's root (the project), not the working directory
    result = invoke("run", "--plan", str(build / "plan.json"), "--dist-dir", str(tmp_path / "dist"), "--quiet")
    assert result.exit_code == 2, result.output
    line = text.splitlines().index("  input_shape: [4]") + 1
    assert f"{path}:{line}:3: model.input_shape: the npz source gives examples of shape [5] but the model takes [4]" \
        in result.stderr
    # --root points the same plan at another copy of the inputs
    other = tmp_path / "mounted"
    other.mkdir()
    np.savez(other / "d.npz", x=x[:, :4], y=y)
    moved = invoke("run", "--plan", str(build / "plan.json"), "--root", str(other), "--step", "data",
                   "--cache-dir", str(tmp_path / "cache"))
    assert moved.exit_code == 0, moved.output


@pytest.mark.parametrize("content", [b"not a zip file at all\n" * 4, b"PK\x03\x04" + b"\x00" * 40])
def test_corrupt_npz_says_what_the_file_should_be(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "d.npz").write_bytes(content)
    first = _diagnostic(tmp_path, spec("{kind: npz, path: d.npz}", "[4]", "  num_classes: 3\n"))
    assert first.path == "data.source.path"
    assert first.message == "d.npz is not a valid .npz archive of numeric arrays (numpy.savez writes one)"
    assert "pickle" not in first.message
    # the data step's own check (a file swapped after the build) says the same
    x, y = features(4)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    result = compile_text(tmp_path, spec("{kind: npz, path: d.npz}", "[4]", "  num_classes: 3\n"))
    (tmp_path / "d.npz").write_bytes(content)
    with pytest.raises(DataError) as caught:
        data_step.run(step_context(result, "data", tmp_path / "out"))
    assert caught.value.message == first.message


def test_npz_with_object_arrays_is_refused_without_suggesting_pickle(tmp_path: Path) -> None:
    x, y = features(4)
    np.savez(tmp_path / "d.npz", x=np.array([list(row) for row in x] + [["a"]], dtype=object), y=y)
    first = _diagnostic(tmp_path, spec("{kind: npz, path: d.npz}", "[4]", "  num_classes: 3\n"))
    assert first.path == "data.source.features"
    assert "is not numeric" in first.message and "allow_pickle" not in first.message


def test_text_labels_in_a_csv_are_classes_in_sorted_order_or_in_data_labels_order(tmp_path: Path) -> None:
    x, y = features(2)
    names = np.array(["dog", "cat", "owl"])[y]  # class k is the k-th of the spec's labels, or of the sorted names
    with open(tmp_path / "t.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["a", "b", "label"])
        writer.writerows([[row[0], row[1], name] for row, name in zip(x, names)])
    _, arrays, info = run_data(tmp_path, spec("{kind: csv, path: t.csv, label_column: label}", "[2]"))
    assert info["labels"] == ["cat", "dog", "owl"] and info["num_classes"] == 3
    written = {tuple(np.round(row, 3)): name for row, name in zip(x, names)}
    for split in ("train", "val", "test"):  # every example keeps its own class name
        assert [info["labels"][k] for k in arrays[f"y_{split}"]] == [
            written[tuple(np.round(row, 3))] for row in arrays[f"x_{split}"]]
    _, _, ordered = run_data(tmp_path, spec("{kind: csv, path: t.csv, label_column: label}", "[2]",
                                            "  labels: [dog, cat, owl]\n"), out="ordered")
    assert ordered["labels"] == ["dog", "cat", "owl"]
    result = compile_text(tmp_path, spec("{kind: csv, path: t.csv, label_column: label}", "[2]"))
    assert result.plan.step("data").params.label_values == ["cat", "dog", "owl"]
