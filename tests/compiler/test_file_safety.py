"""What a spec can make the compiler read: bases and policy files inside the project only, regular files only,
never a secret echoed, and a bounded amount of data.

A FIFO would block ``open()`` forever, so every case that involves one runs the CLI as a subprocess with a
timeout: before the fix these cases hung (the test then fails on the timeout instead of hanging the suite).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import tfspec
from tfspec.compiler.file_digests import InputLimits, InputTooLarge, StatMemo
from tfspec_testing import EXAMPLE, tfspec_command

SECRET = "AKIAIOSFODNN7EXAMPLE"
EXAMPLE_TEXT = EXAMPLE.read_text(encoding="utf-8")


def _validate(cwd: Path, spec: str = "deploy.yaml", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tfspec_command(), "validate", spec], cwd=cwd, capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def _one_line(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    [line, summary] = proc.stderr.splitlines()
    assert summary == "1 problem found"
    for word in words:
        assert word in line, line
    return line


@pytest.fixture()
def repo(tmp_path: Path) -> Path:
    """A repository (``.git``) holding a project: the spec, its secrets outside in ``tmp_path/home``."""
    project = tmp_path / "repo"
    (project / ".git").mkdir(parents=True)
    (project / "deploy.yaml").write_text(EXAMPLE_TEXT, encoding="utf-8")
    home = tmp_path / "home"
    (home / ".aws").mkdir(parents=True)
    (home / ".aws" / "credentials").write_text(f"[default]\naws_access_key_id = {SECRET}\n", encoding="utf-8")
    (home / "secrets.yaml").write_text(f"aws_access_key_id: {SECRET}\nbroken: [\n", encoding="utf-8")
    return project


def _extends(project: Path, target: str) -> None:
    (project / "deploy.yaml").write_text(EXAMPLE_TEXT.replace("name: digits", f"extends: {target}\nname: digits", 1),
                                         encoding="utf-8")


# --- item 2: bases and policies stay inside the project, and nothing else is echoed ----------------------

def test_a_credentials_file_as_a_base_is_refused_unread_and_never_echoed(repo: Path) -> None:
    _extends(repo, str(repo.parent / "home" / ".aws" / "credentials"))
    line = _one_line(_validate(repo), "deploy.yaml:5:1: extends: base spec", "is not a YAML file")
    assert SECRET not in line


def test_a_yaml_file_outside_the_project_is_refused_before_it_is_read(repo: Path) -> None:
    _extends(repo, "../home/secrets.yaml")
    proc = _validate(repo)
    _one_line(proc, "base spec ../home/secrets.yaml is outside the project (the repository root)")
    assert SECRET not in proc.stderr + proc.stdout  # its YAML error (with the line) is never shown


def test_a_link_inside_the_project_to_a_file_outside_counts_as_outside(repo: Path) -> None:
    (repo / "base.yaml").symlink_to(repo.parent / "home" / "secrets.yaml")
    _extends(repo, "base.yaml")
    proc = _validate(repo)
    _one_line(proc, "base spec base.yaml is outside the project")
    assert SECRET not in proc.stderr


def test_policy_files_outside_the_project_need_the_project_files_opt_in(repo: Path) -> None:
    outside = repo.parent / "shared" / "policies.yaml"
    outside.parent.mkdir()
    outside.write_text("policies:\n  - {name: few-epochs, rule: 'spec.training.epochs < 10', "
                       "path: training.epochs, message: at most 9 epochs}\n", encoding="utf-8")
    (repo / "tfspec.yaml").write_text("policies: [../shared/policies.yaml]\n", encoding="utf-8")
    _one_line(_validate(repo), "tfspec.yaml:1:12: policies[0]: policy file ../shared/policies.yaml is outside the "
                               "project (the folder of tfspec.yaml)", "external_locations: true")
    (repo / "tfspec.yaml").write_text("external_locations: true\npolicies: [../shared/policies.yaml]\n", encoding="utf-8")
    _one_line(_validate(repo), "policy few-epochs: at most 9 epochs")  # read and applied


@pytest.mark.parametrize("target", ["/etc/shadow", "/etc/passwd"])
def test_system_files_as_policy_files_are_refused_unread(repo: Path, target: str) -> None:
    (repo / "tfspec.yaml").write_text(f"policies: [{target}]\n", encoding="utf-8")
    proc = _validate(repo)
    _one_line(proc, f"policy file {target} is not a YAML file")
    assert "root:" not in proc.stderr


# --- item 3: regular files only, with the right message --------------------------------------------------

@pytest.mark.parametrize(("make", "message"), [
    (lambda p: os.mkfifo(p), "is a named pipe (FIFO), not a regular file"),
    (lambda p: p.mkdir(), "is a folder, not a file"),
    (lambda p: (p.symlink_to(p.with_name("loop.yaml")), p.with_name("loop.yaml").symlink_to(p)), "is a symbolic link loop"),
    (lambda p: p.symlink_to(p.with_name("missing.yaml")), "is a symbolic link to a missing file"),
])
def test_a_base_that_is_not_a_regular_file_is_named(repo: Path, make, message: str) -> None:
    make(repo / "base.yaml")
    _extends(repo, "base.yaml")
    _one_line(_validate(repo), f"deploy.yaml:5:1: extends: base spec base.yaml {message}")


def test_a_policy_file_that_is_a_fifo_is_an_error_not_a_hang(repo: Path) -> None:
    os.mkfifo(repo / "p.yaml")
    (repo / "tfspec.yaml").write_text("policies: [p.yaml]\n", encoding="utf-8")
    _one_line(_validate(repo), "tfspec.yaml:1:12: policies[0]: policy file p.yaml is a named pipe (FIFO)")


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: os.mkfifo(p), "is a named pipe (FIFO)"),
    (lambda p: p.mkdir(), "is a folder, not a file"),
    (lambda p: p.symlink_to(p.with_name("gone.yaml")), "is a symbolic link to a missing file"),
])
def test_a_broken_project_file_is_an_error_not_no_policies(repo: Path, make, message: str) -> None:
    make(repo / "tfspec.yaml")
    _one_line(_validate(repo), "tfspec.yaml:1:1: <root>: the project file", message)


def _npz_spec(project: Path, path: str) -> None:
    text = EXAMPLE_TEXT.replace("source: {kind: sklearn_digits}",
                                f"source: {{kind: npz, path: '{path}', features: x, labels: y}}\n  external_locations: true")
    (project / "deploy.yaml").write_text(text, encoding="utf-8")


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: os.mkfifo(p), "is a named pipe (FIFO), not a regular file"),
    (lambda p: p.mkdir(), "is a folder, not a file"),
    (lambda p: (p.symlink_to(p.with_name("b.npz")), p.with_name("b.npz").symlink_to(p)), "is a symbolic link loop"),
])
def test_a_data_file_that_is_not_a_regular_file_is_named(repo: Path, make, message: str) -> None:
    make(repo / "train.npz")
    _npz_spec(repo, "train.npz")
    _one_line(_validate(repo), "data.source.path: train.npz " + message)


def test_dev_zero_as_data_is_a_device_not_an_endless_read(repo: Path) -> None:
    _npz_spec(repo, "/dev/zero")
    _one_line(_validate(repo), "data.source.path: /dev/zero is a character device, not a regular file")


def test_a_fifo_inside_an_image_folder_is_named(repo: Path) -> None:
    images = repo / "images"
    for index, label in enumerate("abcdefghij"):
        (images / label).mkdir(parents=True)
        (images / label / "0.png").write_bytes(b"png" * index)
    os.mkfifo(images / "c" / "1.png")
    text = EXAMPLE_TEXT.replace("source: {kind: sklearn_digits}",
                                "source: {kind: image_folder, path: images, image_size: [8, 8], color_mode: grayscale}")
    text = text.replace("preprocessing: {rescale: 0.0625}", "preprocessing: {rescale: 0.0625, reshape: [64]}")
    (repo / "deploy.yaml").write_text(text, encoding="utf-8")
    _one_line(_validate(repo), "data.source.path: images/c/1.png is a named pipe (FIFO)")


# --- item 4: bounded reading -------------------------------------------------------------------------

def _folder_of(folder: Path, count: int, size: int) -> None:
    folder.mkdir(parents=True)
    for index in range(count):
        (folder / f"{index:04d}.bin").write_bytes(b"x" * size)


def test_too_many_files_are_refused_before_any_is_read(tmp_path: Path) -> None:
    _folder_of(tmp_path / "data", 60, 10)
    memo = StatMemo(tmp_path, InputLimits(files=50))
    with pytest.raises(InputTooLarge, match=r"^data holds more than 50 files and folders, .* \(set TFSPEC_INPUT_FILES_LIMIT to raise the limit\)$"):
        memo.tree(tmp_path / "data", "data")
    assert memo.stats.hashed == 0
    assert len(StatMemo(tmp_path, InputLimits(files=100)).tree(tmp_path / "data")) == 60


def test_too_many_bytes_are_refused_before_any_is_read(tmp_path: Path) -> None:
    _folder_of(tmp_path / "data", 10, 1000)
    memo = StatMemo(tmp_path, InputLimits(bytes=4096))
    with pytest.raises(InputTooLarge, match=r"^data holds more than 4 KiB of files, .* \(set TFSPEC_INPUT_BYTES_LIMIT"):
        memo.tree(tmp_path / "data", "data")
    assert memo.stats.hashed == 0
    with pytest.raises(InputTooLarge):
        StatMemo(tmp_path, InputLimits(bytes=4096)).matches("data/*.bin")


def test_the_limits_come_from_the_environment_not_the_spec() -> None:
    assert InputLimits.from_environ({}) == InputLimits(250_000, 4 * 1024**3)
    assert InputLimits.from_environ({"TFSPEC_INPUT_FILES_LIMIT": "1000000", "TFSPEC_INPUT_BYTES_LIMIT": "12"}) == \
        InputLimits(1_000_000, 12)
    assert InputLimits.from_environ({"TFSPEC_INPUT_FILES_LIMIT": "-3"}) == InputLimits()


def test_a_huge_data_folder_is_one_line_at_the_key(repo: Path) -> None:
    images = repo / "images"
    for label in "abcdefghij":
        _folder_of(images / label, 8, 10)
    text = EXAMPLE_TEXT.replace("source: {kind: sklearn_digits}",
                                "source: {kind: image_folder, path: images, image_size: [8, 8], color_mode: grayscale}")
    text = text.replace("preprocessing: {rescale: 0.0625}", "preprocessing: {rescale: 0.0625, reshape: [64]}")
    (repo / "deploy.yaml").write_text(text, encoding="utf-8")
    _one_line(_validate(repo, env={"TFSPEC_INPUT_FILES_LIMIT": "40"}),
              "deploy.yaml:9:32: data.source.path: images holds more than 40 files and folders",
              "set TFSPEC_INPUT_FILES_LIMIT")
    result = tfspec.compile(str(repo / "deploy.yaml"))
    assert result.ok, [d.format() for d in result.diagnostics]
