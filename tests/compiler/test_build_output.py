"""Build output: golden plan/manifest for the example, determinism, --check, overlays and variables."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import yaml

import tfspec
from tfspec_testing import EXAMPLE, ROOT, tfspec_command
from tfspec.base.outputs import MANIFEST, Producer, manifest_text


def _build(spec: Path, out: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tfspec_command(), "build", str(spec), "--out", str(out), *args],
                          capture_output=True, text=True, cwd=cwd or ROOT)


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_example_plan_and_manifest_match_golden(tmp_path: Path, golden) -> None:
    # The plan records the spec's folder relative to the output (its root): build beside a copy of the spec.
    spec = tmp_path / "digits" / EXAMPLE.name
    spec.parent.mkdir()
    shutil.copyfile(EXAMPLE, spec)
    out = tmp_path / "digits" / "build" / "digits"
    proc = _build(spec, out)
    assert proc.returncode == 0, proc.stderr
    assert json.loads((out / "plan.json").read_text(encoding="utf-8"))["root"] == "../.."
    golden("digits/plan.json", (out / "plan.json").read_text(encoding="utf-8"))
    golden("digits/manifest.json", (out / MANIFEST).read_text(encoding="utf-8"))


def test_manifest_lists_every_file_with_its_sha256(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _build(EXAMPLE, out).returncode == 0
    files = {path: data.decode("utf-8") for path, data in _tree(out).items() if path != MANIFEST}
    assert (out / MANIFEST).read_text(encoding="utf-8") == manifest_text(files, Producer("build", "digits"))


def _shuffled(node: Any, rng: random.Random) -> Any:
    if isinstance(node, dict):
        items = list(node.items())
        rng.shuffle(items)
        return {k: _shuffled(v, rng) for k, v in items}
    if isinstance(node, list):
        return [_shuffled(v, rng) for v in node]
    return node


def test_output_is_identical_across_cwd_and_key_order(tmp_path: Path) -> None:
    # Same place of the output relative to the spec (the plan records that), everything else different.
    copy = tmp_path / "first" / EXAMPLE.name
    copy.parent.mkdir()
    shutil.copyfile(EXAMPLE, copy)
    first = copy.parent / "out"
    assert _build(copy, first).returncode == 0
    # Same spec, keys shuffled at every level and comments dropped, built from another working directory.
    other_dir = tmp_path / "elsewhere" / "deeper"
    other_dir.mkdir(parents=True)
    shuffled_spec = other_dir / EXAMPLE.name
    tree = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    shuffled_spec.write_text(yaml.safe_dump(_shuffled(tree, random.Random(7)), sort_keys=False), encoding="utf-8")
    assert shuffled_spec.read_text(encoding="utf-8") != EXAMPLE.read_text(encoding="utf-8")
    second = other_dir / "out"
    proc = _build(Path(os.path.relpath(shuffled_spec, other_dir)), Path("out"), cwd=other_dir)
    assert proc.returncode == 0, proc.stderr
    assert _tree(first) == _tree(second)
    for data in _tree(first).values():
        assert b"\r\n" not in data


def test_check_exit_codes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    missing = _build(EXAMPLE, out, "--check")
    assert missing.returncode == 1 and "+++ b/plan.json" in missing.stdout
    assert not out.exists()
    assert _build(EXAMPLE, out).returncode == 0
    current = _build(EXAMPLE, out, "--check")
    assert current.returncode == 0, current.stdout + current.stderr
    plan = out / "plan.json"
    plan.write_text(plan.read_text(encoding="utf-8").replace('"version": 3', '"version": 2'), encoding="utf-8")
    (out / "stray.txt").write_text("left over\n", encoding="utf-8")
    stale = _build(EXAMPLE, out, "--check")
    assert stale.returncode == 1
    assert '-      "version": 2' in stale.stdout or '-    "version": 2' in stale.stdout
    assert "--- a/stray.txt" in stale.stdout
    assert "tfspec build" in stale.stderr


def test_environment_overlay_merges_targets_by_name() -> None:
    base = tfspec.compile(EXAMPLE)
    prod = tfspec.compile(EXAMPLE, env="prod")
    assert base.ok and prod.ok
    serving = {t.name: t for t in prod.resolved.spec.targets}["serving"]
    assert serving.kubernetes.replicas == 4
    assert serving.kubernetes.autoscale.min == 4 and serving.kubernetes.autoscale.max == 20
    # untouched keys of the merged target survive, and other targets are unchanged
    assert serving.kubernetes.autoscale.target_cpu_percent == 70
    assert serving.batching.max_batch_size == 32
    assert [t.name for t in prod.resolved.spec.targets] == [t.name for t in base.resolved.spec.targets]
    assert base.plan.step("android.tflite").fingerprint == prod.plan.step("android.tflite").fingerprint
    assert json.loads(prod.files["plan.json"])["spec"]["environment"] == "prod"


def test_unknown_environment_is_an_error() -> None:
    result = tfspec.compile(EXAMPLE, env="staging")
    assert not result.ok
    [diagnostic] = result.diagnostics
    assert diagnostic.path == "environments" and "unknown environment 'staging'" in diagnostic.message
    assert diagnostic.hint == "available: prod"


def test_overlay_errors_point_at_the_overlay(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("replicas: 4,", "replicas: many,")
    result = tfspec.compile("deploy.yaml", text=text, env="prod")
    [diagnostic] = result.diagnostics
    overlay_line = next(i for i, line in enumerate(text.splitlines(), 1) if "replicas: many" in line)
    assert (diagnostic.line, diagnostic.path) == (overlay_line, "targets[1].kubernetes.replicas")


def test_variables_expand_with_types_and_defaults() -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace("epochs: 40", "epochs: ${EPOCHS}").replace(
        "version: 3 ", "version: ${MODEL_VERSION:-3} ").replace("name: android", "name: ${TARGET:-android}-app")
    result = tfspec.compile("deploy.yaml", text=text, environ={"EPOCHS": "7"})
    assert result.ok, result.diagnostics
    assert result.resolved.spec.training.epochs == 7
    assert result.resolved.spec.version == 3 and isinstance(result.resolved.spec.version, int)
    assert result.resolved.spec.targets[0].name == "android-app"
    missing = tfspec.compile("deploy.yaml", text=text, environ={})
    [diagnostic] = missing.diagnostics
    assert diagnostic.message == "environment variable EPOCHS is not set"
    assert diagnostic.path == "training.epochs"


def test_dollar_dollar_is_a_literal_dollar() -> None:
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "description: Handwritten digit classifier (8x8 grayscale)", "description: costs $$5")
    result = tfspec.compile("deploy.yaml", text=text, environ={})
    # '$' is not allowed in free text written into generated files: the literal comes out and is rejected
    [diagnostic] = result.diagnostics
    assert diagnostic.path == "description" and "'costs $5'" in diagnostic.message


def test_programmatic_api_returns_plan_files_and_diagnostics() -> None:
    result = tfspec.compile(str(EXAMPLE))
    assert result.ok and result.diagnostics == ()
    assert [s.id for s in result.plan.steps][:3] == ["data", "train", "compress.0.prune"]
    assert "plan.json" in result.files
    steps = {s.id: s for s in result.plan.steps}
    for step in result.plan.steps:
        assert all(i in steps for i in step.inputs)
        assert len(step.fingerprint) == 64


def test_fingerprints_change_only_downstream_of_a_change() -> None:
    base = tfspec.compile(EXAMPLE)
    text = EXAMPLE.read_text(encoding="utf-8")
    gate = tfspec.compile("deploy.yaml", text=text.replace("max_size_kb: 64", "max_size_kb: 80"))
    changed = {s.id for s in gate.plan.steps if s.fingerprint != base.plan.step(s.id).fingerprint and s.kind != "render"}
    assert changed == {"android.verify", "android.bundle"}
    training = tfspec.compile("deploy.yaml", text=text.replace("epochs: 40", "epochs: 41"))
    changed = {s.id for s in training.plan.steps if s.fingerprint != base.plan.step(s.id).fingerprint}
    assert "data" not in changed and {"train", "compress.0.prune", "export", "android.tflite"} <= changed


def test_build_writes_into_a_fresh_folder_atomically(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert _build(EXAMPLE, out).returncode == 0
    (out / "stray.txt").write_text("x", encoding="utf-8")
    assert _build(EXAMPLE, out).returncode == 0
    assert not (out / "stray.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_default_output_folders(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    shutil.copy(EXAMPLE, spec)
    base = subprocess.run([*tfspec_command(), "build", "deploy.yaml"], capture_output=True, text=True, cwd=tmp_path)
    prod = subprocess.run([*tfspec_command(), "build", "deploy.yaml", "-e", "prod"], capture_output=True,
                          text=True, cwd=tmp_path)
    assert base.returncode == 0 and prod.returncode == 0, base.stderr + prod.stderr
    assert (tmp_path / "build" / "digits" / "plan.json").is_file()
    assert (tmp_path / "build" / "digits-prod" / "plan.json").is_file()
