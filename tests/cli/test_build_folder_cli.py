"""`tfspec build FOLDER` through the real command line: summary table, exit codes, diagnostics, --check."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits" / "deploy.yaml"
TFSPEC = [sys.executable, "-m", "tfspec"]


def spec_text(name: str, replicas: int = 2) -> str:
    text = DIGITS.read_text("utf-8")
    return text.replace("name: digits ", f"name: {name} ", 1).replace("replicas: 2,", f"replicas: {replicas},", 1)


def tfspec(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*TFSPEC, *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_folder_build_table_cache_and_check(tmp_path: Path) -> None:
    (tmp_path / "specs" / "team").mkdir(parents=True)
    (tmp_path / "specs" / "a.yaml").write_text(spec_text("alpha"))
    (tmp_path / "specs" / "team" / "b.yaml").write_text(spec_text("beta"))
    first = tfspec(tmp_path, "build", "specs")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    count = str(sum(1 for p in (tmp_path / "build" / "alpha").rglob("*") if p.is_file()))
    assert lines[0].split() == ["SPEC", "NAME", "OUTPUT", "STATUS", "FILES"]
    assert lines[1].split() == ["specs/a.yaml", "alpha", "build/alpha", "built", count]
    assert lines[2].split() == ["specs/team/b.yaml", "beta", "build/beta", "built", count]
    assert lines[3].startswith("2 specs: 2 built, 0 unchanged, 0 invalid")
    assert (tmp_path / "build" / "alpha" / "plan.json").is_file()

    second = tfspec(tmp_path, "build", "specs")
    assert second.returncode == 0 and "2 specs: 0 built, 2 unchanged" in second.stdout

    assert tfspec(tmp_path, "build", "specs", "--check").returncode == 0
    (tmp_path / "specs" / "team" / "b.yaml").write_text(spec_text("beta", replicas=9))
    stale = tfspec(tmp_path, "build", "specs", "--check")
    assert stale.returncode == 1
    assert "--- a/plan.json" in stale.stdout and "+++ b/plan.json" in stale.stdout
    assert ["specs/team/b.yaml", "beta", "build/beta", "STALE", count] in [line.split() for line in stale.stdout.splitlines()]
    assert "run `tfspec build specs` and commit the result" in stale.stderr

    built = tfspec(tmp_path, "build", "specs", "--json")
    assert built.returncode == 0 and '"status": "built"' in built.stdout and '"status": "cached"' in built.stdout
    assert tfspec(tmp_path, "build", "specs", "--check").returncode == 0


def test_folder_build_prints_every_diagnostic_and_exits_2(tmp_path: Path) -> None:
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "ok.yaml").write_text(spec_text("fine"))
    (specs / "bad.yaml").write_text(spec_text("bad").replace("units: 128", "units: -1").replace("epochs: 40", "epochs: 0"))
    (specs / "broken.yaml").write_text("api_version: tfspec/v1\nname: [unclosed\n")
    (specs / "dup.yaml").write_text(spec_text("fine"))
    result = tfspec(tmp_path, "build", "specs", "--out", "rendered")
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert "specs/bad.yaml:16:" in result.stderr and "model.layers[0].units" in result.stderr
    assert "training.epochs" in result.stderr
    assert "specs/broken.yaml:3:" in result.stderr and "YAML syntax error" in result.stderr
    assert "spec name 'fine' is also used by specs/ok.yaml" in result.stderr
    assert "spec name 'fine' is also used by specs/dup.yaml" in result.stderr
    assert "5 problems found" in result.stderr
    assert "4 specs: 0 built, 0 unchanged, 4 invalid" in result.stdout
    assert not (tmp_path / "rendered" / "fine").exists()
    check = tfspec(tmp_path, "build", "specs", "--out", "rendered", "--check")
    assert check.returncode == 2


def test_file_only_options_are_rejected_for_a_file(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(spec_text("alpha"))
    result = tfspec(tmp_path, "build", "a.yaml", "--prune")
    assert result.returncode == 2 and "apply to folder builds" in result.stderr
