"""Start-up of a `tfspec build` that compiles: what a build of one spec must not pay for (docs/benchmarks.md,
"tfspec build start-up")."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

from tfspec_testing import EXAMPLE

SRC = Path(__file__).resolve().parents[2] / "src" / "tfspec"

# Runs the CLI in a fresh process and prints, after the command, whether multiprocessing was imported.
_PROBE = (
    "import sys\n"
    "from tfspec.cli import cli\n"
    "code = 0\n"
    "try:\n"
    "    cli.main(sys.argv[1:], prog_name='tfspec', standalone_mode=True)\n"
    "except SystemExit as exit:\n"
    "    code = exit.code or 0\n"
    "print('MULTIPROCESSING-IMPORTED' if 'multiprocessing' in sys.modules else 'MULTIPROCESSING-NOT-IMPORTED')\n"
    "sys.exit(code)\n"
)


def test_a_build_of_one_spec_does_not_import_multiprocessing(tmp_path: Path) -> None:
    """Only a folder build with several specs to compile starts worker processes; importing multiprocessing
    cost a single build about 13 ms of its start-up."""
    proc = subprocess.run([sys.executable, "-c", _PROBE, "build", str(EXAMPLE), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    *lines, probe = proc.stdout.splitlines()
    assert lines == [f"wrote 28 files to {tmp_path / 'out'}"]
    assert probe == "MULTIPROCESSING-NOT-IMPORTED"


def test_model_modules_keep_their_annotations_evaluated() -> None:
    """The pydantic models of spec/ and plan/ are created at import by every build that compiles. With
    ``from __future__ import annotations`` every field's annotation is a string that pydantic compiles and
    evaluates again (about 1,800 of them); evaluated by the interpreter they cost nothing extra."""
    postponed = []
    for package in ("spec", "plan"):
        for path in sorted((SRC / package).glob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            if any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
                   and any(alias.name == "annotations" for alias in node.names) for node in tree.body):
                postponed.append(f"{package}/{path.name}")
    assert postponed == []


def test_replacing_an_output_folder_swaps_it_without_running_a_program(tmp_path: Path, monkeypatch) -> None:
    """The atomic swap of a rebuilt output folder (renameat2) finds libc among the process's own symbols:
    ``ctypes.util.find_library`` ran ldconfig (a process start) for every folder replaced."""
    import subprocess as subprocess_module

    from tfspec.base import atomic

    def no_programs(*args: object, **kwargs: object) -> None:
        raise OSError("no program may run here")

    monkeypatch.setattr(subprocess_module, "Popen", no_programs)
    getattr(atomic._renameat2, "cache_clear", lambda: None)()
    out, staging = tmp_path / "out", tmp_path / "staging"
    out.mkdir()
    (out / "old.txt").write_text("old")
    staging.mkdir()
    (staging / "new.txt").write_text("new")
    assert atomic.swap_into_place(staging, out) is True  # swapped in one step, the old output now in staging
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"]
    assert sorted(p.name for p in staging.iterdir()) == ["old.txt"]
