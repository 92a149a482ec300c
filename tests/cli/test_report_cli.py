"""`tfspec report`: rewrites report.html next to the last run's report.json; clear errors otherwise."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
SPEC = ROOT / "examples" / "digits" / "deploy.yaml"
FIXTURE = ROOT / "tests" / "data" / "report" / "report.json"


def tfspec(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tfspec", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def _spec_sha256() -> str:
    from tfspec.compiler.pipeline import compile_spec

    result = compile_spec(SPEC)
    assert result.plan is not None
    return result.plan.spec_sha256


def test_missing_report_json_is_a_one_line_error(tmp_path: Path) -> None:
    result = tfspec("report", str(SPEC), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == ("error: dist/digits/report.json not found: run `tfspec run` first, or point "
                             "--dist-dir at the folder of a run\n")
    assert not (tmp_path / "dist").exists()


def test_report_writes_html_next_to_report_json(tmp_path: Path) -> None:
    dist = tmp_path / "dist" / "digits"
    dist.mkdir(parents=True)
    data = json.loads(FIXTURE.read_text())
    data["spec"]["sha256"] = _spec_sha256()
    (dist / "report.json").write_text(json.dumps(data))
    result = tfspec("report", str(SPEC), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "wrote dist/digits/report.html\n"
    assert result.stderr == ""
    html = (dist / "report.html").read_text()
    assert html.startswith("<!DOCTYPE html>") and "digits" in html


def test_report_notes_a_spec_changed_since_the_run(tmp_path: Path) -> None:
    dist = tmp_path / "run"
    dist.mkdir()
    shutil.copy(FIXTURE, dist / "report.json")
    data = json.loads(FIXTURE.read_text())
    data["spec"]["sha256"] = "0" * 64
    (dist / "report.json").write_text(json.dumps(data))
    result = tfspec("report", str(SPEC), "--dist-dir", str(dist), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "is from an earlier version of" in result.stderr and "tfspec run" in result.stderr
    assert (dist / "report.html").is_file()


def test_environment_selects_its_own_dist_folder(tmp_path: Path) -> None:
    result = tfspec("report", str(SPEC), "-e", "prod", cwd=tmp_path)
    assert result.returncode == 2
    assert "dist/digits-prod/report.json not found" in result.stderr


def test_broken_report_json_is_a_one_line_error(tmp_path: Path) -> None:
    (tmp_path / "report.json").write_text("{")
    result = tfspec("report", str(SPEC), "--dist-dir", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith(f"error: {tmp_path / 'report.json'}: cannot read the run report:")
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "report.html").exists()
