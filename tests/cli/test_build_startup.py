"""Start-up of a `tfspec build` that compiles: what a build of one spec must not pay for (docs/benchmarks.md,
"tfspec build start-up")."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import tfspec
from tfspec_testing import EXAMPLE, run_cli_probing_import

# the installed package (a wheel in CI), not the working tree
SRC = Path(tfspec.__file__).resolve().parent


@pytest.mark.parametrize("module", ["multiprocessing", "subprocess"])
def test_a_build_of_one_spec_does_not_import_process_modules(tmp_path: Path, module: str) -> None:
    """Only a folder build with several specs to compile starts worker processes (importing multiprocessing
    cost a single build about 13 ms of its start-up), and only a spec reading a folder lists it with find."""
    proc, lines, imported = run_cli_probing_import(module, "build", str(EXAMPLE), "--out",
                                                   str(tmp_path / "out"), cwd=tmp_path,
                                                   env={"XDG_CACHE_HOME": str(tmp_path / "cache")})
    assert proc.returncode == 0, proc.stderr
    assert lines == [f"wrote 28 files to {tmp_path / 'out'}"]
    assert not imported


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
