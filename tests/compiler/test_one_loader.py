"""`build`, a folder build and `watch` read a spec file with the same rules (one loader): a byte that is
not UTF-8 is an error at its line and column in each, never silently replaced."""

from __future__ import annotations

import subprocess
from pathlib import Path

from tfspec.io.watch import SpecWatcher
from tfspec_testing import EXAMPLE, tfspec_command

EXPECTED = ":1:6: <root>: file is not valid UTF-8 text"


def _write_latin1_spec(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "deploy.yaml"
    spec.write_bytes(b"# caf\xe9\n" + EXAMPLE.read_bytes())
    return spec


def test_build_rejects_a_non_utf8_byte(tmp_path: Path) -> None:
    spec = _write_latin1_spec(tmp_path / "specs")
    for target in (spec, spec.parent):  # one file, and the folder holding it
        proc = subprocess.run([*tfspec_command(), "build", str(target), "--out", str(tmp_path / "out")],
                              capture_output=True, text=True, cwd=tmp_path, timeout=120)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"{spec}{EXPECTED}" in proc.stderr, proc.stderr
        assert not (tmp_path / "out" / "digits").exists()


def test_watch_rejects_the_same_byte_and_writes_nothing(tmp_path: Path) -> None:
    spec = _write_latin1_spec(tmp_path)
    out, errors = tmp_path / "out", []
    watcher = SpecWatcher(spec, out, None, echo=lambda line: None, echo_error=errors.append)
    watcher.rebuild([(str(spec), False)])
    assert any(line.startswith(str(spec)) and EXPECTED in line for line in errors), errors
    assert not out.exists()


def test_a_replacement_character_is_refused_too(tmp_path: Path) -> None:
    import tfspec

    text = EXAMPLE.read_text("utf-8").replace("description: Handwritten", "description: Hand\ufffdwritten")
    [diagnostic] = tfspec.compile("deploy.yaml", text=text, environ={}).diagnostics
    assert diagnostic.format().startswith("deploy.yaml:7:18: <root>: file is not valid UTF-8 text")


def test_watch_survives_a_huge_integer(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(EXAMPLE.read_text("utf-8").replace("epochs: 40", "epochs: " + "9" * 5000), encoding="utf-8")
    errors: list[str] = []
    watcher = SpecWatcher(spec, tmp_path / "out", None, echo=lambda line: None, echo_error=errors.append)
    watcher.rebuild([(str(spec), False)])  # raised ValueError (int() of 4,301+ digits) and ended the watch
    assert any(":23:11: training.epochs: number with 5,000 digits is too large" in line for line in errors), errors
    spec.write_text(EXAMPLE.read_text("utf-8"), encoding="utf-8")
    watcher.rebuild([(str(spec), False)])
    assert (tmp_path / "out" / "plan.json").is_file()
