"""The wheel: built without a setuptools warning, and carrying exactly what ships below ``src/tfspec/``:
every module, every template, the layer catalogue and the packages' READMEs. Packages are found
automatically (pyproject.toml's ``packages.find``), so a new folder can never be left out."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE = ROOT / "src" / "tfspec"
SOURCES = ("pyproject.toml", "README.md", "src")
WARNING = re.compile(r"Warning|warnings\.warn|deprecated|would be ignored|absent from the `packages`", re.IGNORECASE)
# Files below src/tfspec/ that ship: code, templates, data the code reads, the packages' READMEs.
SHIPPED_SUFFIXES = {".py", ".j2", ".json", ".md"}


def shipped_source_files() -> set[str]:
    """Every file below src/tfspec/ that the wheel must carry, as wheel paths (``tfspec/...``)."""
    return {"tfspec/" + path.relative_to(SOURCE).as_posix() for path in SOURCE.rglob("*")
            if path.is_file() and path.suffix in SHIPPED_SUFFIXES and "__pycache__" not in path.parts}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import setuptools

    tmp_path = tmp_path_factory.mktemp("wheel")
    # With setuptools>=77 here (the test extra), build offline in this environment; otherwise as a plain
    # `pip wheel .` does, in an isolated environment that installs pyproject.toml's build requirements.
    local = int(setuptools.__version__.split(".")[0]) >= 77
    source = tmp_path / "src"  # a copy: building in the checkout would leave build/ and *.egg-info in it
    source.mkdir()
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc",
                                                                                      "*.egg-info"))
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
    (built,) = (tmp_path / "wheel").glob("tfspec-*.whl")
    return built


def test_the_wheel_carries_every_shipped_source_file(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = {name for name in archive.namelist() if name.startswith("tfspec/")}
    expected = shipped_source_files()
    assert sum(name.endswith(".j2") for name in expected) > 20
    assert "tfspec/base/keras_layers.json" in expected
    assert "tfspec/compiler/techniques/registry.py" in expected  # the package an old hand-kept list left out
    assert expected - names == set(), "missing from the wheel"
    assert names - expected == set(), "in the wheel but not in the source tree"


def test_every_source_folder_is_a_package_of_the_wheel(wheel: Path) -> None:
    """Each folder below src/tfspec/ holding Python code is importable from the wheel (an ``__init__.py``)."""
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for folder in [SOURCE, *(p for p in SOURCE.rglob("*") if p.is_dir() and p.name != "__pycache__")]:
        if any(folder.glob("*.py")):
            init = "tfspec/" + (folder / "__init__.py").relative_to(SOURCE).as_posix()
            assert init in names, f"{folder.relative_to(ROOT)} has modules but no __init__.py in the wheel"
