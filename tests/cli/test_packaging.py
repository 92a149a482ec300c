"""The wheel: built without a setuptools warning (license table, template folders "absent from packages"),
and carrying every template, so a `pip install .` renders exactly what the source tree does."""

from __future__ import annotations

import os
import re
import shutil
import tomllib
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _sources() -> tuple[str, ...]:
    """pyproject.toml, README.md and every top-level folder that pyproject.toml maps a package to."""
    package_dirs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"]
    return ("pyproject.toml", "README.md", *sorted({path.split("/")[0] for path in package_dirs.values()}))


SOURCES = _sources()
WARNING = re.compile(r"Warning|warnings\.warn|deprecated|would be ignored|absent from the `packages`", re.IGNORECASE)


def test_wheel_builds_without_warnings_and_carries_every_template(tmp_path: Path) -> None:
    import setuptools

    # With setuptools>=77 here (the test extra), build offline in this environment; otherwise as a plain
    # `pip wheel .` does, in an isolated environment that installs pyproject.toml's build requirements.
    local = int(setuptools.__version__.split(".")[0]) >= 77
    source = tmp_path / "src"  # a copy: building in the checkout would leave build/ and *.egg-info in it
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copyfile(ROOT / name, source / name)
    env = {**os.environ, "PIP_NO_INDEX": "1"} if local else None
    isolation = ["--no-build-isolation"] if local else []
    result = subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", *isolation,
                             "--wheel-dir", str(tmp_path / "wheel"), "-v"], capture_output=True, text=True,
                            timeout=300, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    # pip's own "WARNING: ..." lines are about this machine's index configuration, not the package
    warnings = [line for line in output.splitlines() if WARNING.search(line)
                and not line.lstrip().startswith("WARNING: ") and "byte-compiling is disabled" not in line]
    assert warnings == [], "\n".join(warnings)

    (wheel,) = (tmp_path / "wheel").glob("tfspec-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    templates = {"tfspec/templates/" + p.relative_to(ROOT / "templates").as_posix()
                 for p in (ROOT / "templates").rglob("*.j2")}
    assert len(templates) > 20
    assert templates - names == set(), "templates missing from the wheel"
    assert {n for n in names if n.startswith("tfspec/templates/") and n.endswith(".j2")} == templates
