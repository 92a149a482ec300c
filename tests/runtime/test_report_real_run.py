"""A small real run (tfspec run on the runtime's fast digits spec), then `tfspec report`, opened in Chromium."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from chromium_page import open_page

ROOT = Path(__file__).parents[2]
FAST_SPEC = ROOT / "tests" / "data" / "runtime" / "digits_fast.yaml"


@pytest.mark.slow
def test_report_of_a_real_run_opens_cleanly(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    shutil.copy(FAST_SPEC, spec)
    run = subprocess.run([sys.executable, "-m", "tfspec", "run", "deploy.yaml", "--quiet"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode in (0, 1), run.stderr[-3000:]  # 1: a gate missed, the report is still written
    dist = tmp_path / "dist" / "digits"
    assert (dist / "report.json").is_file()
    report = subprocess.run([sys.executable, "-m", "tfspec", "report", "deploy.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert report.returncode == 0, report.stderr
    assert report.stdout == "wrote dist/digits/report.html\n" and report.stderr == ""
    page = open_page(dist / "report.html")
    assert page.errors == []
    # size against accuracy of every stage + targets chart + the train step's curves + the plan graph
    assert len(page.images) == 4
    assert all(i["complete"] and i["naturalWidth"] > 100 and i["naturalHeight"] > 100 for i in page.images)
    html = (dist / "report.html").read_text()
    for target in ("android", "float", "serving"):
        assert f"<strong>{target}</strong>" in html
