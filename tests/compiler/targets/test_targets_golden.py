"""Golden files: every target artifact of examples/digits/deploy.yaml, byte for byte, and the serving
artifacts of the ``gpu-serving`` variant (model store, canary labels, the kserve target).

On a mismatch the test shows a unified diff and the command that rewrites the golden files; they are
rewritten only when TFSPEC_UPDATE_GOLDEN=1 is set (then review the diff with git before committing).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import pytest

from tfspec.compiler.pipeline import PLAN_FILE, CompileResult

from targets_testing import REPO

GOLDEN = REPO / "tests" / "golden" / "targets" / "digits"
VARIANT_GOLDEN = REPO / "tests" / "golden" / "targets" / "digits-gpu-serving"
REGENERATE = "TFSPEC_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/compiler/targets/test_targets_golden.py"


def _artifacts(result: CompileResult) -> dict[str, str]:
    return {path: text for path, text in result.files.items() if path != PLAN_FILE}


def test_target_artifacts_match_the_golden_files(example_result: CompileResult) -> None:
    _compare(_artifacts(example_result), GOLDEN)
    assert len(_artifacts(example_result)) >= 20


def test_serving_artifacts_of_the_gpu_serving_variant_match_the_golden_files(builds: dict[str, dict[str, str]]) -> None:
    files = {path: text for path, text in builds["gpu-serving"].items() if path.startswith(("serving/", "kserve/"))}
    assert "kserve/kubernetes/inferenceservice.yaml" in files
    _compare(files, VARIANT_GOLDEN)


def _compare(expected_files: dict[str, str], golden_dir: Path) -> None:
    GOLDEN = golden_dir
    if os.environ.get("TFSPEC_UPDATE_GOLDEN") == "1":
        for stale in [p for p in GOLDEN.rglob("*") if p.is_file()]:
            stale.unlink()
        for path, text in expected_files.items():
            target = GOLDEN / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8", newline="\n")
        pytest.skip(f"rewrote {len(expected_files)} golden files under {GOLDEN.relative_to(REPO)}; review with git diff")
    on_disk = {p.relative_to(GOLDEN).as_posix(): p.read_text("utf-8") for p in GOLDEN.rglob("*") if p.is_file()}
    chunks: list[str] = []
    for path in sorted(set(on_disk) | set(expected_files)):
        golden, rendered = on_disk.get(path), expected_files.get(path)
        if golden == rendered:
            continue
        chunks.extend(difflib.unified_diff(
            (golden or "").splitlines(keepends=True), (rendered or "").splitlines(keepends=True),
            fromfile=f"golden/{path}" if golden is not None else "/dev/null",
            tofile=f"rendered/{path}" if rendered is not None else "/dev/null"))
    if chunks:
        pytest.fail("rendered target files differ from the golden files:\n" + "".join(chunks)
                    + f"\nIf the change is intended, regenerate them with:\n    {REGENERATE}\n", pytrace=False)
    assert len(on_disk) == len(expected_files)
