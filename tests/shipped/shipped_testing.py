"""Helpers of the shipped-form tests: the wheel and sdist built from a clean copy, fresh virtualenvs with the
wheel installed (not editable), and the commands run through a venv's own ``tfspec`` script.

Every venv gets a ``sitecustomize.py`` that, when ``TFSPEC_TEST_IMPORT_LOG`` names a file, appends at exit
one line per process: its arguments and the heavy modules it imported (TensorFlow, Keras, tfmot, numpy).
So a test proves that a command never imported TensorFlow, even where TensorFlow is installed.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from tfspec_testing import ROOT

__all__ = ["clean_copy", "build_distributions", "Venv", "make_venv", "HEAVY_MODULES", "example_copy"]

HEAVY_MODULES = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "numpy")
IMPORT_LOG = "TFSPEC_TEST_IMPORT_LOG"

_SITECUSTOMIZE = f'''\
"""Installed by tfspec's shipped-wheel tests: with {IMPORT_LOG} set, record at exit which heavy
modules this process imported."""
import atexit
import os
import sys

_LOG = os.environ.get("{IMPORT_LOG}")
if _LOG:
    def _record():
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in {HEAVY_MODULES!r})
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(" ".join(sys.argv[1:]) + "\\t" + ",".join(heavy) + "\\n")

    atexit.register(_record)
'''


def clean_copy(into: Path) -> Path:
    """The files of this checkout that Git tracks or would track (nothing ignored: no .venv, build/, caches),
    copied to ``into``: what a clean clone holds, with the working tree's changes."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True, timeout=60).stdout.decode("utf-8").split("\0")
    for relative in filter(None, listed):
        source = ROOT / relative
        if source.is_file():  # a deleted file still listed by the index is not in a clean clone's work tree
            (into / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, into / relative)
    return into


def build_distributions(source: Path, out: Path) -> tuple[Path, Path]:
    """``python -m build``: the sdist, then the wheel built from that sdist (so the sdist must hold all
    the wheel needs). Without build isolation, from this environment's setuptools (the test extra): offline."""
    done = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
                          capture_output=True, text=True, timeout=600, cwd=out.parent)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (sdist,) = out.glob("tfspec-*.tar.gz")
    (wheel,) = out.glob("tfspec-*-py3-none-any.whl")
    return sdist, wheel


@dataclasses.dataclass(frozen=True)
class Venv:
    """A fresh virtualenv with the wheel installed; ``seconds``: what creating and installing it took."""

    path: Path
    seconds: float

    @property
    def tfspec(self) -> Path:
        return self.path / "bin" / "tfspec"

    @property
    def python(self) -> Path:
        return self.path / "bin" / "python"

    def run(self, *args: str, cwd: Path, log: Path | None = None, timeout: float = 600,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``tfspec ARGS`` through this venv's console script, outside the checkout (``cwd``)."""
        environ = {key: value for key, value in os.environ.items()
                   if key not in ("PYTHONPATH", "VIRTUAL_ENV", IMPORT_LOG)}
        environ.update({"PATH": f"{self.path / 'bin'}{os.pathsep}{environ.get('PATH', '')}", "CI": "true",
                        "TF_CPP_MIN_LOG_LEVEL": "2"})
        if log is not None:
            environ[IMPORT_LOG] = str(log)
        environ.update(env or {})
        return subprocess.run([str(self.tfspec), *args], cwd=cwd, env=environ, capture_output=True, text=True,
                              timeout=timeout)

    def packages(self) -> set[str]:
        listed = subprocess.run([str(self.python), "-m", "pip", "list", "--format", "freeze"], capture_output=True,
                                text=True, check=True, timeout=120).stdout
        return {line.split("==")[0].lower() for line in listed.splitlines() if "==" in line}


def make_venv(path: Path, requirement: str) -> Venv:
    """A new venv at ``path`` with ``requirement`` (the wheel file, with or without extras) installed by pip
    as a user would: not editable. ``--no-compile`` skips writing .pyc files of TensorFlow's thousands of
    modules, the largest part of an install's time that no test depends on."""
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    done = subprocess.run([str(path / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile",
                           requirement], capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    site = next((path / "lib").glob("python3*/site-packages"))
    (site / "sitecustomize.py").write_text(_SITECUSTOMIZE, "utf-8")
    return Venv(path, time.monotonic() - started)


def example_copy(into: Path) -> Path:
    """examples/ copied outside the checkout (builds and runs write beside the specs); for the GitOps
    example a ``.git`` folder stops the project-file search at its root, as in its own repository."""
    shutil.copytree(ROOT / "examples", into, ignore=shutil.ignore_patterns(".tfspec", "build", "dist", "rendered"))
    (into / "gitops" / ".git").mkdir()
    return into


def imported(log: Path) -> list[tuple[str, str]]:
    """(arguments, heavy modules) of every process that recorded itself in ``log``."""
    if not log.exists():
        return []
    return [tuple(line.split("\t", 1)) for line in log.read_text("utf-8").splitlines()]  # type: ignore[misc]
