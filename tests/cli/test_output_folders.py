"""Output folders: tfspec replaces or deletes only its own earlier output of the same spec, never a user's folder.

Every case runs the real command line (or the watcher that ``tfspec watch`` runs) and checks that the user's
files are still there, byte for byte, with exit 2 and one line saying why.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tfspec_testing import EXAMPLE, tfspec_command

USER_FILE = "print('my code')\n"


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tfspec_command(), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def _refused(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    # build warnings (a spec without a registry) may come first: they are not about the folder
    lines = [line for line in proc.stderr.splitlines() if line.strip() and ": warning: " not in line]
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    """A project folder: the spec, a source folder of the user's and a tfspec.yaml."""
    shutil.copyfile(EXAMPLE, tmp_path / "deploy.yaml")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "main.py").write_text(USER_FILE, encoding="utf-8")
    return tmp_path


def _intact(project: Path) -> None:
    assert (project / "src" / "main.py").read_text(encoding="utf-8") == USER_FILE
    assert (project / "deploy.yaml").read_bytes() == EXAMPLE.read_bytes()


def test_build_into_a_users_folder_is_refused(project: Path) -> None:
    _refused(_run(project, "build", "deploy.yaml", "--out", "src"), "--out src", "no manifest.json")
    _intact(project)
    assert sorted(p.name for p in project.iterdir()) == ["deploy.yaml", "src"]  # no staging folder left


@pytest.mark.parametrize(("out", "reason"), [(".", "is the current folder"), ("..", "contains the current folder")])
def test_build_into_the_current_folder_or_a_parent_is_refused(project: Path, out: str, reason: str) -> None:
    _refused(_run(project, "build", "deploy.yaml", "--out", out), reason)
    _intact(project)


def test_build_into_a_folder_holding_the_spec_or_the_project_root_is_refused(project: Path) -> None:
    (project / "tfspec.yaml").write_text("bases: []\n", encoding="utf-8")
    (project / "team").mkdir()
    shutil.move(project / "deploy.yaml", project / "team" / "deploy.yaml")
    other = project.parent / f"{project.name}-elsewhere"
    other.mkdir()
    try:  # from another folder: the current folder is not involved, the spec and the project root are
        _refused(_run(other, "build", str(project / "team" / "deploy.yaml"), "--out", str(project / "team")),
                 "contains the spec")
        _refused(_run(other, "build", str(project / "team" / "deploy.yaml"), "--out", str(project)),
                 "contains the spec")
        # the project root itself, with the spec elsewhere below it: still refused
        (project / "team" / "deploy.yaml").rename(project / "team" / "x.yaml")
        empty_project = project / "sub"
        empty_project.mkdir()
        (empty_project / "tfspec.yaml").write_text("bases: []\n", encoding="utf-8")
        shutil.copyfile(EXAMPLE, empty_project / "specs.yaml")
        _refused(_run(other, "build", str(empty_project / "specs.yaml"), "--out", str(project)), "contains")
    finally:
        shutil.rmtree(other)
    assert (project / "src" / "main.py").read_text(encoding="utf-8") == USER_FILE


def test_a_file_as_the_output_folder_is_refused(project: Path) -> None:
    proc = _run(project, "build", "deploy.yaml", "--out", "src/main.py")  # click's own check: a usage error
    assert proc.returncode == 2 and "is a file" in proc.stderr and "Traceback" not in proc.stderr
    _intact(project)


def test_the_same_specs_output_is_replaced_and_another_specs_is_not(project: Path) -> None:
    assert _run(project, "build", "deploy.yaml", "--out", "out").returncode == 0
    manifest = json.loads((project / "out" / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["produced_by"] == {"kind": "build", "spec": "digits", "environment": None}
    assert manifest["manifest_version"] == 2
    (project / "deploy.yaml").write_text(EXAMPLE.read_text(encoding="utf-8").replace("replicas: 2,", "replicas: 3,"),
                                         encoding="utf-8")
    assert _run(project, "build", "deploy.yaml", "--out", "out").returncode == 0  # its own output: rebuilt
    other = EXAMPLE.read_text(encoding="utf-8").replace("name: digits ", "name: other ", 1)
    (project / "other.yaml").write_text(other, encoding="utf-8")
    before = (project / "out" / "plan.json").read_bytes()
    _refused(_run(project, "build", "other.yaml", "--out", "out"), "output of spec 'digits', not of 'other'")
    assert (project / "out" / "plan.json").read_bytes() == before


def _legacy_output(folder: Path, files: dict[str, str]) -> None:
    """An output folder as tfspec wrote it before manifests recorded their producer (manifest_version 1)."""
    import hashlib

    folder.mkdir(parents=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    entries = {name: hashlib.sha256(text.encode()).hexdigest() for name, text in sorted(files.items())}
    (folder / "manifest.json").write_text(json.dumps({"files": entries, "manifest_version": 1}, indent=2),
                                          encoding="utf-8")


def test_an_output_from_before_producer_records_is_replaced_only_when_its_manifest_lists_every_file(
        project: Path) -> None:
    _legacy_output(project / "old", {"plan.json": "{}\n"})
    assert _run(project, "build", "deploy.yaml", "--out", "old").returncode == 0
    assert json.loads((project / "old" / "manifest.json").read_text())["produced_by"]["spec"] == "digits"
    _legacy_output(project / "mixed", {"plan.json": "{}\n"})
    (project / "mixed" / "notes.md").write_text("mine\n", encoding="utf-8")
    _refused(_run(project, "build", "deploy.yaml", "--out", "mixed"), "notes.md", "not in its manifest.json")
    assert (project / "mixed" / "notes.md").read_text(encoding="utf-8") == "mine\n"


def test_folder_build_never_replaces_the_spec_folder(tmp_path: Path) -> None:
    """A spec named like its own folder, built with the output root `.`: the issue's `specs/` wipe."""
    specs = tmp_path / "specs"
    specs.mkdir()
    named_specs = EXAMPLE.read_text(encoding="utf-8").replace("name: digits ", "name: specs ", 1)
    (specs / "a.yaml").write_text(named_specs, encoding="utf-8")
    (specs / "b.yaml").write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    proc = _run(tmp_path, "build", "specs", "--out", ".")
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    [line] = [line for line in proc.stderr.splitlines() if "specs/a.yaml" in line]
    assert line.startswith("specs/a.yaml:5:1: name: output folder specs contains the spec specs/"), line
    assert (specs / "a.yaml").read_text(encoding="utf-8") == named_specs
    assert (tmp_path / "digits" / "plan.json").is_file()  # the other spec was built


def test_prune_deletes_only_orphaned_outputs_of_the_same_environment(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "a.yaml").write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    old = EXAMPLE.read_text(encoding="utf-8").replace("name: digits ", "name: gone ", 1)
    (specs / "old.yaml").write_text(old, encoding="utf-8")
    assert _run(tmp_path, "build", "specs").returncode == 0
    (specs / "old.yaml").unlink()
    user = tmp_path / "build" / "notes"
    user.mkdir()
    (user / "manifest.json").write_text('{"manifest_version": 1, "files": {}}', encoding="utf-8")  # not ours
    (user / "todo.txt").write_text("mine\n", encoding="utf-8")
    prod = tmp_path / "build" / "digits-prod"  # another environment's output: not an orphan of this build
    shutil.copytree(tmp_path / "build" / "digits", prod)
    manifest = json.loads((prod / "manifest.json").read_text(encoding="utf-8"))
    manifest["produced_by"]["environment"] = "prod"
    (prod / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    proc = _run(tmp_path, "build", "specs", "--prune")
    assert proc.returncode == 0, proc.stderr
    assert not (tmp_path / "build" / "gone").exists()
    assert (user / "todo.txt").read_text(encoding="utf-8") == "mine\n"
    assert prod.is_dir()


def test_run_refuses_a_users_dist_or_cache_folder_before_anything_runs(project: Path) -> None:
    _refused(_run(project, "run", "deploy.yaml", "--dist-dir", "src"), "--dist-dir src")
    _refused(_run(project, "run", "deploy.yaml", "--cache-dir", "src"), "--cache-dir src", "not a tfspec step cache")
    _refused(_run(project, "run", "deploy.yaml", "--dist-dir", "."), "is the current folder")
    _intact(project)
    assert not (project / ".tfspec" / "cache").exists()  # nothing ran


def test_search_refuses_a_users_folder_before_any_trial(project: Path) -> None:
    _refused(_run(project, "search", "deploy.yaml", "--out", "src"), "--out src")
    _intact(project)


def test_fleet_page_never_replaces_a_users_file(project: Path) -> None:
    (project / "specs").mkdir()
    shutil.move(project / "deploy.yaml", project / "specs" / "deploy.yaml")
    _refused(_run(project, "fleet", "specs", "--html", "src/main.py"), "not a tfspec fleet page")
    assert (project / "src" / "main.py").read_text(encoding="utf-8") == USER_FILE
    assert _run(project, "fleet", "specs", "--html", "fleet.html").returncode == 0
    assert _run(project, "fleet", "specs", "--html", "fleet.html").returncode == 0  # its own page: replaced


def test_watch_reports_a_refused_output_folder_and_keeps_watching(project: Path) -> None:
    from tfspec.io.watch import SpecWatcher

    errors: list[str] = []
    watcher = SpecWatcher(project / "deploy.yaml", project / "src", None, echo=lambda line: None,
                          echo_error=errors.append)
    watcher._rebuild_one(str(project / "deploy.yaml"))
    errors = [line for line in errors if ": warning: " not in line]
    assert len(errors) == 2 and errors[0].endswith("no manifest.json): refusing to replace it (choose another folder, "
                                                   "or move its files away)"), errors
    assert "deploy.yaml:5:1: name: --out " in errors[0]
    _intact(project)


def test_diff_summary_never_replaces_a_users_file(project: Path) -> None:
    (project / "specs").mkdir()
    shutil.move(project / "deploy.yaml", project / "specs" / "deploy.yaml")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    subprocess.run([*git, "add", "-A"], cwd=project, check=True)
    subprocess.run([*git, "commit", "-qm", "specs"], cwd=project, check=True)
    _refused(_run(project, "diff", "specs", "--base", "HEAD", "--out", "src/main.py"),
             "--out src/main.py", "not an earlier tfspec diff summary")
    assert (project / "src" / "main.py").read_text(encoding="utf-8") == USER_FILE
    (project / "summary.md").write_bytes(b"")  # empty, as $GITHUB_STEP_SUMMARY is before a step writes it
    assert _run(project, "diff", "specs", "--base", "HEAD", "--out", "summary.md").returncode == 0
    assert (project / "summary.md").read_text(encoding="utf-8").startswith("## tfspec diff: ")
    assert _run(project, "diff", "specs", "--base", "HEAD", "--out", "summary.md").returncode == 0  # its own
