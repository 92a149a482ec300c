"""CLI commands of the compiler: init, validate, plan, and that none of them imports TensorFlow."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tfspec_testing import EXAMPLE, tfspec_command


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tfspec_command(), *args], capture_output=True, text=True, cwd=cwd)


def test_init_writes_a_commented_spec_that_builds(tmp_path: Path) -> None:
    proc = _run("init", "fraud-model", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "deploy.yaml").read_text(encoding="utf-8")
    assert "name: fraud-model" in text and text.count("#") > 5
    assert _run("validate", "deploy.yaml", cwd=tmp_path).returncode == 0
    again = _run("init", "fraud-model", cwd=tmp_path)
    assert again.returncode == 2 and "exists" in again.stderr
    bad = _run("init", "Fraud_Model", "--out", "other.yaml", cwd=tmp_path)
    assert bad.returncode == 2 and "DNS-1123" in bad.stderr and not (tmp_path / "other.yaml").exists()


def example_copy(folder: Path) -> Path:
    """The example spec alone in ``folder``: what a run left beside examples/ (``make demo``) must not count."""
    spec = folder / "digits" / EXAMPLE.name
    spec.parent.mkdir(parents=True)
    shutil.copyfile(EXAMPLE, spec)
    return spec


def test_plan_table_and_json(tmp_path: Path) -> None:
    spec = example_copy(tmp_path)
    table = _run("plan", str(spec), cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    for step in ("data", "train", "compress.0.prune", "export", "android.tflite", "serving.warmup"):
        assert step in table.stdout
    data = json.loads(_run("plan", str(spec), "--json", cwd=tmp_path).stdout)
    assert data["schema_version"] == 4
    steps = {s["id"]: s for s in data["steps"]}
    assert steps["train"]["inputs"] == ["data"]
    assert steps["train"]["cached"] is False


def test_compiler_commands_never_import_tensorflow(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from tfspec.cli import cli\n"
        "for args in (['validate', sys.argv[1]], ['build', sys.argv[1], '--out', sys.argv[2]],"
        " ['plan', sys.argv[1], '--json'], ['schema']):\n"
        "    try:\n"
        "        cli.main(args, standalone_mode=False)\n"
        "    except SystemExit:\n"
        "        pass\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('tensorflow', 'tf_keras', 'keras', 'tensorflow_model_optimization', 'numpy'))\n"
        "print('IMPORTED', bad)\n"
    )
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", code, str(example_copy(tmp_path)),
                           str(tmp_path / "out")], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "IMPORTED []" in proc.stdout
    imported = [line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")]
    assert "tfspec.compiler.pipeline" in imported
    assert not [m for m in imported if m.split(".")[0] in ("tensorflow", "tf_keras", "keras")]


def test_version_and_help(tmp_path: Path) -> None:
    lines = _run("--version", cwd=tmp_path).stdout.splitlines()
    assert lines[0] == "tfspec 0.1.0"
    assert lines[1].startswith("runtime: tensorflow 2.21.0, tf-keras 2.21.0, tensorflow-model-optimization 0.8.1")
    assert "build" in _run("--help", cwd=tmp_path).stdout
