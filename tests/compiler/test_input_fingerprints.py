"""Step fingerprints follow the content of the files a spec reads, not their paths (the ``inputs`` stage).

Each test fills a real step cache (``StepCache``, what ``tfspec run`` writes) for every step of the plan,
changes one input file in place, and checks which steps ``tfspec plan --json`` no longer reports as
cached: exactly the steps that read the input and the steps downstream of them.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import io
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

import tfspec
from tfspec.cli import cli
from tfspec.compiler import pipeline
from tfspec.compiler.file_digests import MEMO_FILE, TREES_FILE, memo_path
from tfspec.compiler.inputs import InputDigests, input_sources
from tfspec.compiler.plan import build_plan
from tfspec.runtime.cache import StepCache, default_cache_dir
from tfspec.spec.loader import load_yaml

SEQUENTIAL = """\
model:
  kind: sequential
  input_shape: {shape}
  layers:
{layers}"""
DENSE = "    - {type: dense, units: 3, activation: softmax}"
FLAT = "    - {type: flatten}\n" + DENSE


def spec_text(source: str, model: str | None = None, shape: str = "[2]", layers: str = DENSE, extra: str = "") -> str:
    model = model or SEQUENTIAL.format(shape=shape, layers=layers)
    return (f"api_version: tfspec/v1\nname: t\nversion: 1\ndata:\n  source: {source}\n  num_classes: 3\n"
            f"{model}\ntraining: {{epochs: 1}}\ntargets: [{{kind: tflite, name: m}}]\n{extra}")


def npz(seed: int) -> bytes:
    """A small valid ``.npz`` (``x`` two features, ``y`` the three classes): the compiler reads its arrays."""
    buffer = io.BytesIO()
    np.savez(buffer, x=np.arange(6, dtype=np.float32).reshape(3, 2) + seed, y=np.arange(3))
    return buffer.getvalue()


def write_spec(folder: Path, text: str, name: str = "deploy.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def compiled(path: Path) -> tfspec.compiler.CompileResult:
    result = tfspec.compile(path)
    assert result.ok, [d.format() for d in result.diagnostics]
    return result


def fingerprints(path: Path) -> dict[str, str]:
    return {s.id: s.fingerprint for s in compiled(path).plan.steps if s.kind != "render"}


def cache_every_step(path: Path) -> None:
    """Put a finished entry for every runtime step of the plan into the spec's step cache."""
    cache = StepCache(default_cache_dir(path))
    for step in compiled(path).plan.steps:
        if step.kind != "render":
            with cache.writing(step.fingerprint, step.id):
                pass


def steps_to_run(path: Path) -> set[str]:
    """The steps ``tfspec plan`` (the real CLI) says are not cached."""
    result = CliRunner().invoke(cli, ["plan", str(path), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return {s["id"] for s in json.loads(result.stdout)["steps"] if s["kind"] != "render" and not s["cached"]}


ALL = {"data", "train", "evaluate", "m.tflite", "m.verify", "m.bundle"}  # a tflite target: no export step
FROM_TRAIN = ALL - {"data"}


def assert_change_reruns(path: Path, change: Any, expected: set[str]) -> None:
    """Cache everything, apply ``change``, and check exactly ``expected`` changed fingerprint and must run."""
    cache_every_step(path)
    before = fingerprints(path)
    assert steps_to_run(path) == set()
    change()
    after = fingerprints(path)
    assert {step for step in before if before[step] != after[step]} == expected
    assert steps_to_run(path) == expected


def rewrite_keeping_stat(path: Path, data: bytes) -> None:
    """Rewrite a file in place with bytes of the same length and put its old mtime back."""
    info = path.stat()
    assert len(data) == info.st_size
    with open(path, "r+b") as handle:
        handle.write(data)
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert path.stat().st_mtime_ns == info.st_mtime_ns and path.stat().st_size == info.st_size


# --- data sources ------------------------------------------------------------------------------------

def test_csv_rewritten_in_place_with_the_same_size_and_mtime_is_detected(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_bytes(b"a,b,label\n1,2,0\n3,4,1\n5,6,2\n")
    path = write_spec(tmp_path, spec_text("{kind: csv, path: train.csv, label_column: label}"))
    _wait_for_next_second()
    fingerprints(path)  # the memo now knows the file's stat, and trusts it (not racy)
    assert json.loads(memo_path(tmp_path).read_text())["entries"]["train.csv"][5] is False
    assert_change_reruns(path, lambda: rewrite_keeping_stat(tmp_path / "train.csv", b"a,b,label\n1,2,0\n3,9,1\n5,6,2\n"),
                         ALL)


def test_npz_file_replaced(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_bytes(npz(1))
    path = write_spec(tmp_path, spec_text("{kind: npz, path: d.npz}"))
    other = npz(2)
    assert_change_reruns(path, lambda: (tmp_path / "d.npz").write_bytes(other), ALL)
    # a file's digest is what sha256sum prints
    assert compiled(path).plan.step("data").params.input_digests == {
        "data.source.path": hashlib.sha256(other).hexdigest()}


def _images(folder: Path, count: int = 2) -> None:
    for name in ("cat", "dog", "owl"):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            (folder / name / f"{i}.png").write_bytes(f"{name}{i}".encode())


IMAGES = "{kind: image_folder, path: images, image_size: [4, 4], color_mode: grayscale}"


def test_image_added_to_an_image_folder(tmp_path: Path) -> None:
    _images(tmp_path / "images")
    path = write_spec(tmp_path, spec_text(IMAGES, shape="[4, 4, 1]", layers=FLAT))
    assert_change_reruns(path, lambda: (tmp_path / "images" / "owl" / "9.png").write_bytes(b"new owl"), ALL)


def test_image_renamed_in_an_image_folder(tmp_path: Path) -> None:
    _images(tmp_path / "images")
    path = write_spec(tmp_path, spec_text(IMAGES, shape="[4, 4, 1]", layers=FLAT))
    # same bytes, another class: only the names tell
    assert_change_reruns(path, lambda: os.rename(tmp_path / "images" / "owl" / "1.png",
                                                 tmp_path / "images" / "cat" / "9.png"), ALL)


TFRECORD = "{kind: tfrecord, path: 'shards/part-*.tfrecord', label: y, features: {x: {dtype: float32, shape: [2]}}}"


def test_shard_added_to_a_tfrecord_glob(tmp_path: Path) -> None:
    (tmp_path / "shards").mkdir()
    for i in range(2):
        (tmp_path / "shards" / f"part-{i}.tfrecord").write_bytes(b"records %d" % i)
    path = write_spec(tmp_path, spec_text(TFRECORD))
    (tmp_path / "shards" / "notes.txt").write_text("not matched")
    assert_change_reruns(path, lambda: (tmp_path / "shards" / "notes.txt").write_text("still not matched"), set())
    assert_change_reruns(path, lambda: (tmp_path / "shards" / "part-2.tfrecord").write_bytes(b"records 2"), ALL)


def test_shard_removed_from_a_tfrecord_glob(tmp_path: Path) -> None:
    (tmp_path / "shards").mkdir()
    for i in range(2):
        (tmp_path / "shards" / f"part-{i}.tfrecord").write_bytes(b"records %d" % i)
    path = write_spec(tmp_path, spec_text(TFRECORD))
    assert_change_reruns(path, lambda: (tmp_path / "shards" / "part-1.tfrecord").unlink(), ALL)


# --- models -----------------------------------------------------------------------------------------

BUILDER = """\
model:
  kind: builder
  builder: "nets:build"
  input_shape: [2]"""
CSV = "{kind: csv, path: train.csv, label_column: label}"


def _builder_project(folder: Path) -> Path:
    (folder / "train.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,2\n")
    (folder / "nets.py").write_text("from helpers.blocks import head\n\ndef build():\n    return head()\n")
    (folder / "helpers").mkdir()
    (folder / "helpers" / "__init__.py").write_text("")
    (folder / "helpers" / "blocks.py").write_text("def head():\n    return 'model'\n")
    (folder / "unrelated").mkdir()
    (folder / "unrelated" / "tool.py").write_text("x = 1\n")
    return write_spec(folder, spec_text(CSV, model=BUILDER))


def test_builder_module_edited(tmp_path: Path) -> None:
    path = _builder_project(tmp_path)
    assert_change_reruns(path, lambda: (tmp_path / "nets.py").write_text(
        "from helpers.blocks import head\n\ndef build():\n    return head()  # v2\n"), FROM_TRAIN)


def test_helper_package_imported_by_the_builder_edited(tmp_path: Path) -> None:
    path = _builder_project(tmp_path)
    assert_change_reruns(path, lambda: (tmp_path / "helpers" / "blocks.py").write_text(
        "def head():\n    return 'other model'\n"), FROM_TRAIN)
    # a package the builder does not import is not an input
    assert_change_reruns(path, lambda: (tmp_path / "unrelated" / "tool.py").write_text("x = 2\n"), set())
    digests = compiled(path).plan.step("train").params.input_digests
    assert list(digests) == ["model.builder"]


def test_builder_package_of_a_dotted_module(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,2\n")
    (tmp_path / "models" / "vision").mkdir(parents=True)
    (tmp_path / "models" / "__init__.py").write_text("")
    (tmp_path / "models" / "vision" / "nets.py").write_text("from . import layers\n")
    (tmp_path / "models" / "vision" / "layers.py").write_text("A = 1\n")
    path = write_spec(tmp_path, spec_text(CSV, model=BUILDER.replace("nets:build", "models.vision.nets:build")))
    assert_change_reruns(path, lambda: (tmp_path / "models" / "vision" / "layers.py").write_text("A = 2\n"),
                         FROM_TRAIN)


SAVED_MODEL = """\
model:
  kind: saved_model
  path: base_model
  input_shape: [2]"""


def _saved_model(folder: Path, weights: bytes) -> None:
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph")
    (folder / "keras_metadata.pb").write_bytes(b"keras")  # a Keras SavedModel (others need serve_as_is)
    (folder / "variables" / "variables.data-00000-of-00001").write_bytes(weights)


def test_saved_model_folder_swapped(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,2\n")
    _saved_model(tmp_path / "base_model", b"weights-1")
    _saved_model(tmp_path / "retrained", b"weights-2")
    path = write_spec(tmp_path, spec_text(CSV, model=SAVED_MODEL))

    def swap() -> None:
        os.rename(tmp_path / "base_model", tmp_path / "old_model")
        os.rename(tmp_path / "retrained", tmp_path / "base_model")

    assert_change_reruns(path, swap, FROM_TRAIN)


# --- distillation teachers ----------------------------------------------------------------------------

STUDENT = ("compression:\n  - {kind: distill, teacher: {kind: spec, path: teacher.yaml}, "
           "student: [{type: dense, units: 3, activation: softmax}]}\n")


def test_teacher_spec_is_compiled_once_with_two_overlays(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_spec(tmp_path, spec_text("{kind: sklearn_digits}", shape="[64]").replace("num_classes: 3", "num_classes: 10")
               .replace("units: 3", "units: 10"), name="teacher.yaml")
    student = spec_text("{kind: sklearn_digits}", shape="[64]", extra=STUDENT).replace(
        "num_classes: 3", "num_classes: 10").replace("units: 3", "units: 10")
    student += "environments:\n  dev: {training: {epochs: 2}}\n  prod: {training: {epochs: 3}}\n"
    path = write_spec(tmp_path, student)
    calls: list[str] = []
    real = pipeline.compile_spec

    def counting(spec: Any, *args: Any, **kwargs: Any) -> Any:
        calls.append(Path(spec).name)
        return real(spec, *args, **kwargs)

    monkeypatch.setattr(pipeline, "compile_spec", counting)
    result = pipeline.compile_spec(path)
    assert result.ok, [d.format() for d in result.diagnostics]
    assert calls == ["deploy.yaml", "teacher.yaml"]
    assert result.plan.step("compress.0.distill").params.teacher.final_model.step == "train"


def test_saved_model_teacher_swapped_reruns_only_the_distill_step(tmp_path: Path) -> None:
    (tmp_path / "train.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,2\n")
    _saved_model(tmp_path / "teacher", b"weights-1")
    _saved_model(tmp_path / "teacher2", b"weights-2")
    stages = ("compression:\n  - {kind: distill, teacher: {kind: saved_model, path: teacher}, "
              "student: [{type: dense, units: 3, activation: softmax}]}\n")
    path = write_spec(tmp_path, spec_text(CSV, extra=stages))

    def swap() -> None:
        shutil.rmtree(tmp_path / "teacher")
        os.rename(tmp_path / "teacher2", tmp_path / "teacher")

    assert_change_reruns(path, swap, {"compress.0.distill", "evaluate", "m.tflite", "m.verify", "m.bundle"})


# --- the stage itself ---------------------------------------------------------------------------------

def test_missing_data_file_is_one_line_exit_2_and_writes_nothing(tmp_path: Path) -> None:
    text = spec_text("{kind: npz, path: data/train.npz}")
    path = write_spec(tmp_path, text)
    out = tmp_path / "build"
    result = CliRunner().invoke(cli, ["build", str(path), "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 2
    line = text.splitlines().index("  source: {kind: npz, path: data/train.npz}") + 1
    assert result.stderr == (f"{path}:{line}:23: data.source.path: data/train.npz does not exist (looked in {tmp_path}) "
                             "(hint: paths are relative to the spec file)\n1 problem found\n")
    assert not out.exists()


def test_glob_without_matches_is_an_error(tmp_path: Path) -> None:
    path = write_spec(tmp_path, spec_text(TFRECORD))
    [diagnostic] = tfspec.compile(path).diagnostics
    assert diagnostic.path == "data.source.path"
    assert diagnostic.message == f"no file matches shards/part-*.tfrecord (looked in {tmp_path})"


def test_plan_does_no_io(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_bytes(npz(0))
    path = write_spec(tmp_path, spec_text("{kind: npz, path: d.npz}"))
    result = compiled(path)
    (tmp_path / "d.npz").unlink()
    again = build_plan(result.resolved, None, InputDigests({"data.source.path": "ab" * 32}))
    assert again.step("data").params.input_digests == {"data.source.path": "ab" * 32}
    assert again.step("data").fingerprint != result.plan.step("data").fingerprint


def test_build_check_reports_stale_output_when_data_changed(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_bytes(npz(1))
    path = write_spec(tmp_path, spec_text("{kind: npz, path: d.npz}"))
    out = str(tmp_path / "build")
    runner = CliRunner()
    assert runner.invoke(cli, ["build", str(path), "--out", out]).exit_code == 0
    assert runner.invoke(cli, ["build", str(path), "--out", out, "--check"]).exit_code == 0
    (tmp_path / "d.npz").write_bytes(npz(2))
    stale = runner.invoke(cli, ["build", str(path), "--out", out, "--check"])
    assert stale.exit_code == 1 and '"input_digests"' in stale.stdout


def _wait_for_next_second() -> None:
    """Let the files written so far fall out of the memo's racy window (the second it is written in)."""
    time.sleep(1.05 - time.time() % 1.0)


def test_second_compile_of_an_unchanged_tree_reads_no_file(tmp_path: Path) -> None:
    _images(tmp_path / "images", count=20)
    path = write_spec(tmp_path, spec_text(IMAGES, shape="[4, 4, 1]", layers=FLAT))
    _wait_for_next_second()
    first = compiled(path)
    assert (first.inputs.stats.files, first.inputs.stats.hashed) == (60, 60)
    second = compiled(path)
    assert (second.inputs.stats.files, second.inputs.stats.hashed, second.inputs.stats.reused) == (60, 0, 60)
    assert second.plan.to_text() == first.plan.to_text()
    assert memo_path(tmp_path).is_file() and memo_path(tmp_path).parent == default_cache_dir(path).parent


def test_an_unchanged_folder_is_taken_from_the_folder_memo_without_the_per_file_memo(tmp_path: Path) -> None:
    _images(tmp_path / "images", count=20)
    path = write_spec(tmp_path, spec_text(IMAGES, shape="[4, 4, 1]", layers=FLAT))
    _wait_for_next_second()
    first = compiled(path)
    assert "images" in json.loads((memo_path(tmp_path).parent / TREES_FILE).read_text())["trees"]
    memo_path(tmp_path).write_text("torn", encoding="utf-8")  # the per-file memo is not needed
    second = compiled(path)
    assert (second.inputs.stats.files, second.inputs.stats.hashed, second.inputs.stats.reused) == (60, 0, 60)
    assert second.plan.to_text() == first.plan.to_text()


def test_an_image_rewritten_with_the_same_size_and_mtime_changes_the_folder_digest(tmp_path: Path) -> None:
    _images(tmp_path / "images", count=20)
    path = write_spec(tmp_path, spec_text(IMAGES, shape="[4, 4, 1]", layers=FLAT))
    _wait_for_next_second()
    compiled(path)  # the folder memo records the tree (not racy)
    assert "images" in json.loads((memo_path(tmp_path).parent / TREES_FILE).read_text())["trees"]
    assert_change_reruns(path, lambda: rewrite_keeping_stat(tmp_path / "images" / "owl" / "1.png", b"OWL1"), ALL)


def test_a_folder_with_a_racy_file_is_not_recorded(tmp_path: Path) -> None:
    time.sleep(1.0 - time.time() % 1.0)  # start of a second: the images and the memos are written in the same one
    _images(tmp_path / "images")
    path = write_spec(tmp_path, spec_text(IMAGES, shape="[4, 4, 1]", layers=FLAT))
    compiled(path)
    trees = json.loads((memo_path(tmp_path).parent / TREES_FILE).read_text())["trees"] \
        if (memo_path(tmp_path).parent / TREES_FILE).exists() else {}
    if "images" in trees:
        pytest.fail("a folder holding a file written in the same second as the memo must not be recorded")
    assert compiled(path).inputs.stats.hashed == 6  # looked up per file, where the racy entries are re-read


def test_racy_entries_are_hashed_again(tmp_path: Path) -> None:
    time.sleep(1.0 - time.time() % 1.0)  # start of a second: the file and the memo are written in the same one
    (tmp_path / "d.npz").write_bytes(npz(0))
    path = write_spec(tmp_path, spec_text("{kind: npz, path: d.npz}"))
    compiled(path)
    entry = json.loads(memo_path(tmp_path).read_text())["entries"]["d.npz"]
    if not entry[5]:
        pytest.fail("a file written in the same second as the memo must be marked racy")
    assert compiled(path).inputs.stats.hashed == 1  # re-read, not trusted
    _wait_for_next_second()
    compiled(path)
    assert compiled(path).inputs.stats.hashed == 0


def test_unreadable_memo_is_recomputed(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_bytes(npz(0))
    path = write_spec(tmp_path, spec_text("{kind: npz, path: d.npz}"))
    expected = compiled(path).plan.step("data").fingerprint
    memo_path(tmp_path).write_text('{"version": 1, "entries": {"d.npz": [1, 2')  # torn
    result = compiled(path)
    assert result.plan.step("data").fingerprint == expected and result.inputs.stats.hashed == 1
    json.loads(memo_path(tmp_path).read_text())  # rewritten whole


def _compile_many(path: str) -> str:
    return "".join(tfspec.compile(path).plan.step("data").fingerprint[:8] for _ in range(15))


def test_processes_racing_on_the_memo_leave_a_whole_file(tmp_path: Path) -> None:
    _images(tmp_path / "images", count=30)
    path = write_spec(tmp_path, spec_text(IMAGES, shape="[4, 4, 1]", layers=FLAT))
    with concurrent.futures.ProcessPoolExecutor(2) as pool:
        results = list(pool.map(_compile_many, [str(path)] * 2))
    assert results[0] == results[1] == compiled(path).plan.step("data").fingerprint[:8] * 15
    memo = json.loads(memo_path(tmp_path).read_text())
    assert len(memo["entries"]) == 90
    # no scratch left: the per-file memo and the folder memo only
    assert sorted(p.name for p in memo_path(tmp_path).parent.iterdir()) == sorted([MEMO_FILE, TREES_FILE])


def test_every_path_field_of_the_spec_is_an_input(tmp_path: Path) -> None:
    """A new path field in spec/ must be digested (add it to ``inputs.input_sources``, then here)."""
    from tfspec.spec import compression, data, model
    from tfspec.spec.base import RelativePath

    # what pydantic copies into a RelativePath or DataLocation field's metadata
    marks = (*RelativePath.__metadata__, *data.DataLocation.__metadata__)
    found = set()
    for module in (data, model, compression):
        for name in module.__all__:
            cls = getattr(module, name)
            for field_name, field in getattr(cls, "model_fields", {}).items():
                if any(any(m is mark for mark in marks) for m in field.metadata):
                    found.add(f"{name}.{field_name}")
    assert found == {"NpzSource.path", "CsvSource.path", "TfrecordSource.path", "ImageFolderSource.path",
                     "SavedModelModel.path", "SavedModelTeacher.path", "SpecTeacher.path"}
    (tmp_path / "train.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,2\n")
    _saved_model(tmp_path / "base_model", b"w")
    (tmp_path / "teacher.yaml").write_text("")
    result = pipeline.resolve_document(load_yaml(write_spec(tmp_path, spec_text(CSV, model=SAVED_MODEL, extra=STUDENT))))
    assert [s.name for s in input_sources(result)] == ["data.source.path", "model.path", "compression[0].teacher.path"]


def test_folder_build_recompiles_a_spec_whose_data_changed(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "d.npz").write_bytes(npz(1))
    write_spec(specs, spec_text("{kind: npz, path: d.npz}"))
    out = tmp_path / "build"
    runner = CliRunner()
    assert runner.invoke(cli, ["build", str(specs), "--out", str(out), "-j", "1"]).exit_code == 0
    second = npz(2)
    (specs / "d.npz").write_bytes(second)
    assert runner.invoke(cli, ["build", str(specs), "--out", str(out), "-j", "1"]).exit_code == 0
    plan = json.loads((out / "t" / "plan.json").read_text())
    [data] = [s for s in plan["steps"] if s["id"] == "data"]
    assert data["params"]["input_digests"] == {"data.source.path": hashlib.sha256(second).hexdigest()}


def test_scratch_file_of_a_killed_memo_writer_is_removed(tmp_path: Path) -> None:
    (tmp_path / "d.npz").write_bytes(npz(0))
    path = write_spec(tmp_path, spec_text("{kind: npz, path: d.npz}"))
    memo_path(tmp_path).parent.mkdir()
    orphan = memo_path(tmp_path).parent / f".{memo_path(tmp_path).name}.999999999.abc.tmp"  # no such pid
    orphan.write_text('{"version": 1, "ent')
    compiled(path)
    assert sorted(p.name for p in memo_path(tmp_path).parent.iterdir()) == [memo_path(tmp_path).name]


def test_file_name_that_is_not_utf8_is_digested(tmp_path: Path) -> None:
    _images(tmp_path / "images")
    path = write_spec(tmp_path, spec_text(IMAGES, shape="[4, 4, 1]", layers=FLAT))
    odd = os.path.join(os.fsencode(tmp_path / "images" / "cat"), b"caf\xe9.png")  # Latin-1, as old cameras write
    assert_change_reruns(path, lambda: Path(os.fsdecode(odd)).write_bytes(b"new cat"), ALL)
    json.loads(memo_path(tmp_path).read_text())  # the memo stays valid JSON


def test_unreadable_file_in_a_data_folder_is_one_line_exit_2(tmp_path: Path) -> None:
    _images(tmp_path / "images")
    # stat calls it a regular file, reading it fails (EIO), even as root: what a permission error looks like
    os.symlink("/proc/self/mem", tmp_path / "images" / "dog" / "broken.png")
    text = spec_text(IMAGES, shape="[4, 4, 1]", layers=FLAT)
    path = write_spec(tmp_path, text)
    result = CliRunner().invoke(cli, ["plan", str(path)], catch_exceptions=False)
    assert result.exit_code == 2
    line = next(n for n, row in enumerate(text.splitlines(), 1) if "image_folder" in row)
    assert result.stderr == (f"{path}:{line}:32: data.source.path: cannot read images/dog/broken.png: Input/output error "
                             "(hint: make it readable, or remove it)\n1 problem found\n")
