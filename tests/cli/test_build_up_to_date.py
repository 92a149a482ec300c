"""``tfspec build SPEC`` on an up-to-date output: nothing compiled or written, the spec models not imported;
any change to what the output depends on builds again (tfspec/io/uptodate.py)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfspec_testing import EXAMPLE, run_cli_probing_import

def _build(*args: str, cwd: Path, env: dict[str, str] | None = None) -> tuple[str, bool]:
    """stdout of ``tfspec build ARGS`` (without the probe's line) and whether it imported the spec models."""
    proc, lines, imported = run_cli_probing_import("tfspec.spec.document", "build", *args, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr
    return "\n".join(lines), imported


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    spec = tmp_path / "digits" / "deploy.yaml"
    spec.parent.mkdir()
    text = EXAMPLE.read_text(encoding="utf-8").replace(
        "description: Handwritten digit classifier (8x8 grayscale)",
        'description: "${TEAM:-Handwritten} digit classifier"', 1)
    assert "${TEAM" in text
    spec.write_text(text, encoding="utf-8")
    return tmp_path


def test_an_unchanged_build_compiles_and_writes_nothing(project: Path) -> None:
    first, compiled = _build("digits/deploy.yaml", cwd=project)
    assert compiled and first == "wrote 28 files to build/digits"
    out = project / "build" / "digits"
    before = (out.stat().st_ino, _tree(out))
    again, compiled = _build("digits/deploy.yaml", cwd=project)
    assert again == first
    assert not compiled  # the fast path decided before importing the spec models
    assert (out.stat().st_ino, _tree(out)) == before  # not even swapped in again
    listed, compiled = _build("digits/deploy.yaml", "--json", cwd=project)
    assert not compiled
    assert json.loads(listed)["files"] == sorted(name for name in before[1] if name != "manifest.json")


def _edit_spec(project: Path) -> dict[str, str]:
    spec = project / "digits" / "deploy.yaml"
    spec.write_text(spec.read_text(encoding="utf-8").replace("epochs: 40", "epochs: 41"), encoding="utf-8")
    return {}


def _set_variable(project: Path) -> dict[str, str]:
    return {"TEAM": "Vision team"}


def _edit_output(project: Path) -> dict[str, str]:
    path = project / "build" / "digits" / "serving" / "kubernetes" / "deployment.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# edited\n", encoding="utf-8")
    return {}


def _delete_output(project: Path) -> dict[str, str]:
    (project / "build" / "digits" / "plan.json").unlink()
    return {}


@pytest.mark.parametrize("change", [_edit_spec, _set_variable, _edit_output, _delete_output],
                         ids=["spec-edited", "variable-set", "output-edited", "output-deleted"])
def test_a_change_builds_again_and_the_output_is_what_a_fresh_build_writes(project: Path, change) -> None:
    _build("digits/deploy.yaml", cwd=project)
    variables = change(project)
    _, compiled = _build("digits/deploy.yaml", cwd=project, env=variables)
    assert compiled
    _build("digits/deploy.yaml", "--out", "fresh/digits", cwd=project, env=variables)
    assert _tree(project / "build" / "digits") == _tree(project / "fresh" / "digits")


def test_another_output_folder_or_environment_builds_again(project: Path) -> None:
    _build("digits/deploy.yaml", cwd=project)
    _, compiled = _build("digits/deploy.yaml", "--out", "build/other", cwd=project)
    assert compiled and (project / "build" / "other" / "plan.json").exists()
    out, compiled = _build("digits/deploy.yaml", "-e", "prod", cwd=project)
    assert compiled and out == "wrote 28 files to build/digits-prod"


def test_check_compares_contents_even_when_the_cache_says_up_to_date(project: Path) -> None:
    _build("digits/deploy.yaml", cwd=project)
    path = project / "build" / "digits" / "serving" / "kubernetes" / "deployment.yaml"
    info = path.stat()
    text = path.read_text(encoding="utf-8")
    edited = text.replace("digits", "digitz", 1)
    assert edited != text
    path.write_text(edited, encoding="utf-8")  # same size
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))  # and the old mtime
    proc = subprocess.run([sys.executable, "-m", "tfspec", "build", "digits/deploy.yaml", "--check"],
                          capture_output=True, text=True, cwd=project)
    assert proc.returncode == 1 and "digitz" in proc.stdout, proc.stdout + proc.stderr


def test_check_of_an_up_to_date_output_compiles_nothing_and_a_changed_spec_is_stale(project: Path) -> None:
    _build("digits/deploy.yaml", cwd=project)
    said, compiled = _build("digits/deploy.yaml", "--check", cwd=project)
    assert said == "build/digits: up to date"
    assert not compiled  # proven from the record and the files' sha256, without loading the spec models
    _edit_spec(project)
    proc = subprocess.run([sys.executable, "-m", "tfspec", "build", "digits/deploy.yaml", "--check"],
                          capture_output=True, text=True, cwd=project)
    removed = [line for line in proc.stdout.splitlines() if line.startswith("-") and '"epochs": 40' in line]
    assert proc.returncode == 1 and removed, proc.stdout + proc.stderr


def test_a_spec_that_reads_files_is_never_taken_as_up_to_date(project: Path) -> None:
    spec = project / "digits" / "deploy.yaml"
    data = project / "digits" / "train.csv"

    def table(first: int) -> str:  # what the digits spec takes: 64 feature columns, the ten classes
        header = ",".join(f"p{i}" for i in range(64)) + ",label"
        return "\n".join([header] + [",".join([str(first + k)] + ["0"] * 63) + f",{k}" for k in range(10)]) + "\n"

    data.write_text(table(1), encoding="utf-8")
    spec.write_text(spec.read_text(encoding="utf-8").replace(
        "source: {kind: sklearn_digits}", "source: {kind: csv, path: train.csv, label_column: label}"),
        encoding="utf-8")
    _build("digits/deploy.yaml", cwd=project)
    plan = (project / "build" / "digits" / "plan.json").read_text(encoding="utf-8")
    data.write_text(table(3), encoding="utf-8")  # the spec is unchanged, its data is not
    _, compiled = _build("digits/deploy.yaml", cwd=project)
    assert compiled
    assert (project / "build" / "digits" / "plan.json").read_text(encoding="utf-8") != plan
    assert sorted(p.name for p in (project / "build").iterdir()) == ["digits"]


def test_an_extra_file_in_the_output_builds_again_and_nothing_is_left_beside_it(project: Path) -> None:
    _build("digits/deploy.yaml", cwd=project)
    (project / "build" / "digits" / "stray.txt").write_text("x", encoding="utf-8")
    _, compiled = _build("digits/deploy.yaml", cwd=project)
    assert compiled and not (project / "build" / "digits" / "stray.txt").exists()
    assert sorted(p.name for p in (project / "build").iterdir()) == ["digits"]
    shutil.rmtree(project / "build")
    _, compiled = _build("digits/deploy.yaml", cwd=project)
    assert compiled


def test_a_spec_with_a_base_builds_again_when_the_base_or_the_project_file_changes(project: Path) -> None:
    (project / ".git").mkdir()  # the project-file search stops here
    spec = project / "digits" / "deploy.yaml"
    base = project / "standards" / "base.yaml"
    base.parent.mkdir()
    base.write_text("description: Vision team digits\n", encoding="utf-8")
    text = "\n".join(line for line in spec.read_text(encoding="utf-8").splitlines() if not line.startswith("description:"))
    spec.write_text("extends: ../standards/base.yaml\n" + text + "\n", encoding="utf-8")
    _build("digits/deploy.yaml", cwd=project)
    assert not _build("digits/deploy.yaml", cwd=project)[1]  # unchanged: the fast path
    base.write_text("description: Speech team digits\n", encoding="utf-8")
    _, compiled = _build("digits/deploy.yaml", cwd=project)
    dockerfile = project / "build" / "digits" / "serving" / "Dockerfile"
    assert compiled and "Speech team digits" in dockerfile.read_text(encoding="utf-8")
    assert not _build("digits/deploy.yaml", cwd=project)[1]
    (project / "tfspec.yaml").write_text("bases: []\n", encoding="utf-8")  # a project file appears above it
    assert _build("digits/deploy.yaml", cwd=project)[1]
