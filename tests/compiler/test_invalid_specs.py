"""Every invalid spec in tests/data/invalid_specs/ gives exactly the diagnostics in its golden file."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import tfspec
from tfspec_testing import ROOT, tfspec_command

CASES = ROOT / "tests" / "data" / "invalid_specs"
INVALID = sorted(p for p in CASES.glob("*.yaml") if p.name != "valid_base.yaml")


def _format(path: Path) -> str:
    result = tfspec.compile(path.name, text=path.read_text(encoding="utf-8"), environ={})
    return "".join(d.format_with_excerpt() + "\n" for d in result.diagnostics)


def test_there_are_at_least_forty_cases() -> None:
    assert len(INVALID) >= 40


def test_the_base_of_the_cases_is_valid() -> None:
    base = CASES / "valid_base.yaml"
    result = tfspec.compile(base.name, text=base.read_text(encoding="utf-8"), environ={})
    assert result.ok, result.diagnostics
    assert tfspec.compile(base.name, env="prod", text=base.read_text(encoding="utf-8"), environ={}).ok


@pytest.mark.parametrize("case", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_spec_reports_exact_diagnostics(case: Path, golden) -> None:
    output = _format(case)
    assert output, f"{case.name} was accepted"
    for line in output.splitlines():
        if line.startswith(case.name):
            # file:line:col: key.path: message
            file, line_no, column, rest = line.split(":", 3)
            assert int(line_no) >= 1 and int(column) >= 1 and rest.strip()
    golden(f"invalid_specs/{case.stem}.txt", output)


@pytest.mark.parametrize("case", ["unknown_source_kind", "yaml_syntax_error", "qat_before_prune"])
def test_cli_exits_2_without_traceback_and_writes_nothing(case: str, tmp_path: Path) -> None:
    spec = tmp_path / f"{case}.yaml"
    spec.write_text((CASES / f"{case}.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    out = tmp_path / "out"
    proc = subprocess.run([*tfspec_command(), "build", str(spec), "--out", str(out)],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.splitlines()[0].startswith(f"{spec}:")
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == [spec.name]


def test_json_diagnostics(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text((CASES / "misspelt_nested_key.yaml").read_text(encoding="utf-8"), encoding="utf-8")
    proc = subprocess.run([*tfspec_command(), "validate", str(spec), "--json"], capture_output=True, text=True)
    assert proc.returncode == 2
    import json

    data = json.loads(proc.stdout)
    assert data["ok"] is False
    assert data["diagnostics"] == [{
        "file": str(spec), "line": 6, "column": 11, "path": "data.split.validaton",
        "message": "unknown key 'validaton'", "hint": "did you mean 'validation'?",
    }]


@pytest.mark.parametrize("old,new", [
    ("activation: relu}", "activation: silu}"),
    ("activation: relu}", "activation: mish}"),
    ("activation: relu}", "activation: gelu, kernel_initializer: truncated_normal}"),
    ("activation: relu}", "activation: swish, kernel_initializer: lecun_uniform}"),
])
def test_keras_names_once_called_misspelt_are_valid(old: str, new: str) -> None:
    # silu was answered "did you mean selu", truncated_normal "did you mean lecun_normal"
    base = (CASES / "valid_base.yaml").read_text(encoding="utf-8")
    assert old in base
    result = tfspec.compile("valid_base.yaml", text=base.replace(old, new, 1), environ={})
    assert result.ok, result.diagnostics


STANDARDS = ROOT / "tests" / "data" / "standards"
STANDARDS_CASES = sorted(p.stem for p in (STANDARDS / "specs").glob("*.yaml") if p.stem != "valid")


def _format_standards(case: str) -> str:
    result = tfspec.compile(f"specs/{case}.yaml", environ={})
    lines = [d.format_with_excerpt() for d in result.diagnostics]
    lines += ["warning: " + w.format() for w in result.warnings]
    return "".join(line + "\n" for line in lines)


def test_the_base_of_the_standards_cases_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(STANDARDS)
    result = tfspec.compile("specs/valid.yaml", environ={})
    assert result.ok and not result.warnings, result.diagnostics


@pytest.mark.parametrize("case", STANDARDS_CASES)
def test_standards_case_reports_exact_diagnostics(case: str, golden, monkeypatch: pytest.MonkeyPatch) -> None:
    """Policy violations and base-level errors: each at the file:line:col that set the value (spec or base)."""
    monkeypatch.chdir(STANDARDS)
    output = _format_standards(case)
    assert output and not output.startswith("warning:"), f"{case} was accepted"
    golden(f"standards/{case}.txt", output)


def test_the_standards_doc_quotes_the_golden_messages() -> None:
    """docs/standards.md shows these messages verbatim: a changed message fails here until the doc follows."""
    doc = (ROOT / "docs" / "standards.md").read_text(encoding="utf-8")
    for case in STANDARDS_CASES:
        for line in (ROOT / "tests" / "golden" / "standards" / f"{case}.txt").read_text(encoding="utf-8").splitlines():
            assert line.removeprefix("warning: ") in doc, f"docs/standards.md does not quote {line!r}"
