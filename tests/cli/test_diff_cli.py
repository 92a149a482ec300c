"""`tfspec diff`: the pull-request summary of a change between two Git revisions, on repositories the tests
commit, run as users run it (the CLI in a subprocess)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tfspec.compiler.pipeline import compile_spec
from tfspec_testing import ROOT, assert_golden, tfspec_command

DATA = ROOT / "tests" / "data" / "diff" / "repo"
DOC = ROOT / "docs" / "pull-requests.md"

SERVING_POLICIES = """\
policies:
  - name: serving-has-pdb
    severity: warning
    each: targets
    as: target
    when: target.kind == "tf_serving" && has(target.kubernetes)
    rule: objects.exists(o, o.kind == "PodDisruptionBudget")
    path: kubernetes
    message: every serving target should have a PodDisruptionBudget (2 or more replicas)
"""
ANDROID_TARGET = """\
  - kind: tflite
    name: android
    quantization: {kind: dynamic}
    android: {package: com.example.digits, asset_pack: {name: digits_model, delivery: install_time}}
    gates: {max_accuracy_drop: 0.02}
"""


def git_environment(home: Path) -> dict[str, str]:
    """Git with no user or system configuration and a fixed identity and clock: the same commits (and ids)
    on every run."""
    return {**os.environ, "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "test@example.com", "GIT_AUTHOR_DATE": "2025-01-01T00:00:00Z",
            "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "test@example.com",
            "GIT_COMMITTER_DATE": "2025-01-01T00:00:00Z"}


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, env=git_environment(repo.parent), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def commit_all(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, (path, old)
    path.write_text(text.replace(old, new, 1))


def make_repository(tmp_path: Path) -> Path:
    """tests/data/diff/repo committed, then the change a pull request makes: epochs of digits-lite, a tflite
    target added to digits, the base's registry changed, and a policy file added to the project."""
    repo = tmp_path / "repo"
    shutil.copytree(DATA, repo, ignore=shutil.ignore_patterns(".tfspec"))
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "base")
    edit(repo / "specs" / "digits-lite.yaml", "epochs: 30", "epochs: 45")
    edit(repo / "specs" / "digits.yaml", "environments:", ANDROID_TARGET + "environments:")
    edit(repo / "standards" / "base.yaml", "registry: registry.example.com/ml\n", "registry: registry.example.com/ml-prod\n")
    (repo / "standards" / "serving-policies.yaml").write_text(SERVING_POLICIES)
    edit(repo / "tfspec.yaml", "policies: [standards/policies.yaml]",
         "policies: [standards/policies.yaml, standards/serving-policies.yaml]")
    commit_all(repo, "head")
    return repo


def tfspec(cwd: Path, *args: str, tmpdir: Path | None = None, timeout: int = 180) -> subprocess.CompletedProcess[str]:
    env = {**git_environment(cwd.parent), **({"TMPDIR": str(tmpdir)} if tmpdir else {})}
    return subprocess.run([*tfspec_command(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def write_report(path: Path, spec_sha256: str, accuracy: float, drop: float, size: int, passed: bool) -> None:
    """A run's report.json as `tfspec run` writes it (the keys tfspec diff reads)."""
    report = {"report_version": 1, "spec": {"name": "digits-lite", "version": 1, "sha256": spec_sha256, "environment": None},
              "baseline": {"metric": "accuracy", "value": 0.9694}, "passed": passed,
              "targets": {"android": {"kind": "tflite", "passed": passed,
                                      "metrics": {"accuracy": accuracy, "accuracy_drop": drop, "size_bytes": size},
                                      "gates": [{"name": "max_accuracy_drop", "limit": 0.01, "value": drop, "passed": drop <= 0.01},
                                                {"name": "max_size_kb", "limit": 16, "value": round(size / 1024, 2),
                                                 "passed": size / 1024 <= 16}]}}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repository(tmp_path)


def test_summary_of_a_pull_request_matches_the_golden_file(repo: Path, tmp_path: Path,
                                                             request: pytest.FixtureRequest) -> None:
    """Epochs changed, a target added, the base changed, a policy added; both sides have a run report."""
    head_sha = compile_spec(repo / "specs" / "digits-lite.yaml").resolved.spec_sha256
    write_report(tmp_path / "dist-main" / "digits-lite" / "report.json", "0" * 64, 0.9611, 0.0083, 15_120, True)
    write_report(repo / "dist" / "digits-lite" / "report.json", head_sha, 0.9667, 0.0027, 17_310, False)
    result = tfspec(repo, "diff", "specs", "--base", "HEAD~1", "--base-dist", "../dist-main", "--head-dist", "dist")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    summary = result.stdout
    # what matters, said in words, before the whole text is compared with the golden file
    assert "| `specs/digits-lite.yaml` | `digits-lite` | changed | 2 | 3 | 2 | 10 of 11 | +1 −0 |" in summary
    assert "| `training.epochs` | `30` | `45` |" in summary
    assert '| `registry` | `"registry.example.com/ml"` | `"registry.example.com/ml-prod"` |' in summary
    assert re.search(r'^\| `targets\.android` \| — \| `\{"kind": "tflite", "name": "android", ', summary, re.M)
    assert "`standards/base.yaml` (changed), `standards/serving-policies.yaml` (added), `tfspec.yaml` (changed)" in summary
    assert re.search(r"^\| `registry\.example\.com/ml-prod/digits-lite-serving` \| — \| `1-[0-9a-f]{12}` \|$", summary, re.M)
    assert "4 new: `android.render`, `android.tflite`, `android.verify`, `android.bundle`" in summary
    assert ("- new: `specs/digits-lite.yaml:21:5: targets[1].kubernetes: policy serving-has-pdb (warning): every "
            "serving target should have a PodDisruptionBudget (2 or more replicas)`") in summary
    assert "| `android` | `max_size_kb` | 16 | 14.77 passed | 16.9 **missed** |" in summary
    assert "The base report was made from another version of the spec" in summary
    assert "The head report" not in summary
    assert_golden("diff/pull_request.md", summary, request)
    # deterministic: a second run writes the same bytes
    again = tfspec(repo, "diff", "specs", "--base", "HEAD~1", "--base-dist", "../dist-main", "--head-dist", "dist")
    assert again.stdout == summary


def test_the_working_tree_index_and_refs_are_untouched_and_no_temporary_folder_is_left(repo: Path, tmp_path: Path) -> None:
    (repo / "specs" / "digits.yaml").write_text("uncommitted edit\n")   # a dirty working tree ...
    (repo / "notes.txt").write_text("untracked\n")
    git(repo, "add", "notes.txt")                                        # ... and a staged file
    before = (git(repo, "status", "--porcelain"), (repo / ".git" / "index").read_bytes(),
              git(repo, "for-each-ref"), git(repo, "worktree", "list"), (repo / "specs" / "digits.yaml").read_text())
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    result = tfspec(repo, "diff", "specs", "--base", "HEAD~1", "--out", str(tmp_path / "summary.md"), tmpdir=scratch)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"wrote {tmp_path / 'summary.md'}: 2 specs, 2 changed")
    after = (git(repo, "status", "--porcelain"), (repo / ".git" / "index").read_bytes(),
             git(repo, "for-each-ref"), git(repo, "worktree", "list"), (repo / "specs" / "digits.yaml").read_text())
    assert after == before
    assert list(scratch.iterdir()) == []
    assert not list(repo.rglob(".tfspec"))  # the compiler's stat memo went to the temporary folders only
    assert "`training.epochs` | `30` | `45`" in (tmp_path / "summary.md").read_text()


@pytest.fixture(scope="module")
def bulky_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository with enough files that writing one revision takes a while."""
    repo = tmp_path_factory.mktemp("bulky") / "repo"
    shutil.copytree(DATA, repo, ignore=shutil.ignore_patterns(".tfspec"))
    for folder in range(24):
        (repo / "bulk" / str(folder)).mkdir(parents=True)
        for index in range(500):
            (repo / "bulk" / str(folder) / f"{index}.txt").write_text(f"{folder}/{index}\n")
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "base")
    return repo


_SIGINT_DEFAULT = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
                   "os.execv(sys.argv[1], sys.argv[1:])")


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_diff_removes_its_temporary_folders(bulky_repo: Path, tmp_path: Path, stop: signal.Signals) -> None:
    repo = bulky_repo
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    env = {**git_environment(tmp_path), "TMPDIR": str(scratch)}
    # Started as a terminal starts it, with Ctrl-C's default action: a process that starts with SIGINT ignored
    # (what a test runner's worker may hand down) keeps ignoring it, as POSIX asks and Python does.
    process = subprocess.Popen([sys.executable, "-c", _SIGINT_DEFAULT, *tfspec_command(), "diff", "specs",
                                "--base", "HEAD"], cwd=repo, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # the base revision's folder: the head's export and both compiles are still to come when it appears, so
    # the signal finds the diff running (the head's folder can be seen in the moment before the diff ends)
    while not any(p.name.startswith("tfspec-diff-base-") for p in scratch.iterdir()):
        assert process.poll() is None, "the diff ended before its temporary folder was seen"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    process.send_signal(stop)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 3, stderr
    assert stderr.strip().splitlines()[-1] == "interrupted"
    assert list(scratch.iterdir()) == []


def test_bad_input_is_one_line_and_exit_2(repo: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "not-a-repo"
    (elsewhere / "specs").mkdir(parents=True)
    cases = {
        "unknown revision": (repo, ["specs", "--base", "no-such-branch"], "unknown revision 'no-such-branch'"),
        "option-like revision": (repo, ["specs", "--base=--output=/tmp/x"], "not a revision"),
        "not a repository": (elsewhere, ["specs", "--base", "HEAD"], "not in a Git repository"),
        "no specs": (repo, ["standards", "--base", "HEAD~1"], "no specs there at HEAD~1"),
        "outside the repository": (repo, [str(elsewhere), "--base", "HEAD"], "not in a Git repository"),
    }
    for what, (cwd, args, message) in cases.items():
        result = tfspec(cwd, "diff", *args)
        assert result.returncode == 2, (what, result.stdout, result.stderr)
        assert result.stdout == ""
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], (what, result.stderr)


def test_specs_added_removed_moved_invalid_and_fixed(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(DATA, repo, ignore=shutil.ignore_patterns(".tfspec"))
    lite = (repo / "specs" / "digits-lite.yaml").read_text()
    (repo / "specs" / "gone.yaml").write_text(lite.replace("name: digits-lite", "name: gone"))
    (repo / "specs" / "broken.yaml").write_text(lite.replace("name: digits-lite", "name: broken").replace("epochs: 30", "epochs: 0"))
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "base")
    (repo / "specs" / "gone.yaml").unlink()
    (repo / "specs" / "team").mkdir()
    git(repo, "mv", "specs/digits.yaml", "specs/team/digits.yaml")       # moved, same model
    (repo / "specs" / "new.yaml").write_text(lite.replace("name: digits-lite", "name: new"))
    edit(repo / "specs" / "broken.yaml", "epochs: 0", "epochs: 5")        # fixed
    edit(repo / "specs" / "digits-lite.yaml", "units: 32", "units: -1")   # made invalid
    commit_all(repo, "head")
    result = tfspec(repo, "diff", "specs", "--base", "HEAD~1")
    assert result.returncode == 0, result.stderr
    rows = {line.split(" | ")[0].strip("| `"): line.split(" | ")[2] for line in result.stdout.splitlines()
            if line.startswith("| `specs/")}
    assert rows == {"specs/broken.yaml": "fixed (invalid at base)", "specs/digits-lite.yaml": "**invalid** at head",
                    "specs/gone.yaml": "removed", "specs/new.yaml": "added",
                    "specs/team/digits.yaml": "moved from `specs/digits.yaml`"}
    assert "5 specs: 1 added, 1 removed, 1 invalid, 1 fixed, 1 moved, 0 unchanged." in result.stdout
    assert re.search(r"^\*\*Invalid at head\*\* \(1 problem; `tfspec build` fails there\):\n\n"
                     r"- `specs/digits-lite\.yaml:7:\d+: model\.layers\[0\]\.units: ", result.stdout, re.M)
    assert "**Invalid at base** (1 problem; `tfspec build` fails there):" in result.stdout
    assert "Its output folder `gone` is no longer generated" in result.stdout
    assert "**Plan**: every step runs (11): `data`, `train`," in result.stdout
    assert "### `digits` in `specs/team/digits.yaml`: moved from `specs/digits.yaml`" in result.stdout


def test_one_spec_with_an_environment_overlay(repo: Path) -> None:
    result = tfspec(repo, "diff", "specs/digits.yaml", "--base", "HEAD~1", "-e", "prod")
    assert result.returncode == 0, result.stderr
    assert "Environment overlay: `prod`." in result.stdout
    assert "1 spec: 1 changed, 0 unchanged." in result.stdout
    assert "In the output folder `digits-prod/`:" in result.stdout


def _doc_commands() -> list[str]:
    """The `$ tfspec diff ...` lines of docs/pull-requests.md (its blocks are `not run` by
    test_docs_commands.py, which has no Git repository: they run here, in one)."""
    text = DOC.read_text(encoding="utf-8")
    return [line[2:] for line in text.splitlines() if line.startswith("$ tfspec diff ")]


def test_the_commands_in_the_docs_run_as_shown(repo: Path) -> None:
    commands = _doc_commands()
    assert len(commands) >= 3
    git(repo, "update-ref", "refs/remotes/origin/main", "HEAD~1")  # as a clone of a repository with main has
    (repo / "dist" / "digits").mkdir(parents=True)
    for command in commands:
        done = subprocess.run(["bash", "-c", command.replace("tfspec ", f"{' '.join(tfspec_command())} ", 1)], cwd=repo,
                              env=git_environment(repo.parent), capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, (command, done.stderr)
        assert "## tfspec diff" in done.stdout or done.stdout.startswith("wrote "), command


def test_the_excerpt_in_the_docs_is_the_golden_summary() -> None:
    excerpt = DOC.read_text(encoding="utf-8").split("```markdown\n", 1)[1].split("```\n", 1)[0]
    golden = (ROOT / "tests" / "golden" / "diff" / "pull_request.md").read_text(encoding="utf-8")
    assert golden.startswith(excerpt)


def test_a_revision_is_written_as_git_stores_it_links_kept_only_inside(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tfspec.io.git_tree import GitError, exported, resolve_commit

    repo = tmp_path / "repo"
    shutil.copytree(DATA, repo, ignore=shutil.ignore_patterns(".tfspec"))
    (repo / "specs" / "same.yaml").symlink_to("digits.yaml")
    (repo / "specs" / "outside.yaml").symlink_to("/etc/hostname")
    (repo / "specs" / "escape.yaml").symlink_to("../../../../etc/hostname")
    (repo / "specs" / "up").symlink_to("..")          # inside: the repository's root
    (repo / "specs" / "chained").symlink_to("up/..")  # looks inside, but up/.. is the root's parent
    (repo / "tool.sh").write_text("#!/bin/sh\n")
    (repo / "tool.sh").chmod(0o755)
    git(repo, "init", "-q", "-b", "main")
    commit_all(repo, "base")
    with exported(repo, resolve_commit(repo, "main"), "base") as folder:
        assert (folder / ".git").is_dir() and not any((folder / ".git").iterdir())
        assert os.readlink(folder / "specs" / "same.yaml") == "digits.yaml"
        assert not (folder / "specs" / "outside.yaml").exists() and not (folder / "specs" / "outside.yaml").is_symlink()
        assert not (folder / "specs" / "escape.yaml").is_symlink()
        assert os.readlink(folder / "specs" / "up") == ".." and not (folder / "specs" / "chained").is_symlink()
        assert os.access(folder / "tool.sh", os.X_OK) and not os.access(folder / "tfspec.yaml", os.X_OK)
        assert (folder / "specs" / "digits.yaml").read_bytes() == (repo / "specs" / "digits.yaml").read_bytes()
    assert not folder.exists()
    monkeypatch.setenv("TFSPEC_DIFF_LIMIT", "100")
    with pytest.raises(GitError, match=r"more than the 100 tfspec diff writes .*TFSPEC_DIFF_LIMIT"):
        with exported(repo, resolve_commit(repo, "main"), "base"):
            pass
