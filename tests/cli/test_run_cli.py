"""`tfspec run` through the real command line: what a user sees (tfspec's lines and where the output went,
TensorFlow's own messages in a log file), the compiler-only install, and exit codes under TFSPEC_DEBUG."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAST = ROOT / "tests" / "data" / "runtime" / "digits_fast.yaml"
EXAMPLE = ROOT / "examples" / "digits" / "deploy.yaml"
REPORT_FIXTURE = ROOT / "tests" / "data" / "report" / "report.json"
# What TensorFlow's C++ side prints on every CPU run (absl before InitializeLog, the converter, the interpreter);
# oneDNN and cuInit lines depend on the CPU and the drivers, so they are checked only when they occur.
TENSORFLOW_LINES = ("absl::InitializeLog", "fully_quantize: 0", "Created TensorFlow Lite XNNPACK delegate")
MAYBE_LINES = ("oneDNN custom operations", "cuInit", "cuda drivers")
BROKEN_SPEC = """\
api_version: tfspec/v1
name: broken
version: 1
data:
  source: {kind: sklearn_digits}
model:
  kind: builder
  builder: "broken_models:build"
  input_shape: [64]
training: {epochs: 1}
targets: [{kind: tflite, name: m}]
"""


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "TFSPEC_DEBUG", "CI")}
    return {**env, **extra}


def tfspec(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tfspec", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=600, env=env or environment())


@pytest.mark.slow
def test_run_shows_tfspec_lines_and_keeps_tensorflow_messages_in_a_log(tmp_path: Path) -> None:
    shutil.copyfile(FAST, tmp_path / "deploy.yaml")
    result = tfspec("run", "deploy.yaml", "--quiet", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line for line in result.stderr.splitlines() if line.strip()] == [], result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "loading TensorFlow..."  # before the seconds TensorFlow takes to start
    assert "writing report..." in lines
    assert lines[-3:] == ["report: dist/digits/report.html", "dist:   dist/digits/",
                          "TensorFlow's messages: .tfspec/logs/tensorflow.log (--verbose shows them)"]
    assert (tmp_path / "dist" / "digits" / "report.html").is_file()
    log = (tmp_path / ".tfspec" / "logs" / "tensorflow.log").read_text(errors="replace")
    for text in TENSORFLOW_LINES:
        assert text in log and text not in result.stdout
    for text in MAYBE_LINES:
        assert text not in result.stdout

    verbose = tfspec("run", "deploy.yaml", "--quiet", "--force", "--verbose", cwd=tmp_path)
    assert verbose.returncode == 0, verbose.stdout + verbose.stderr
    for text in TENSORFLOW_LINES:
        assert text in verbose.stderr
    assert "TensorFlow's messages" not in verbose.stdout


def test_a_failed_step_under_tfspec_debug_keeps_exit_code_2_and_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "broken_models.py").write_text("def build():\n    raise ZeroDivisionError('no model today')\n")
    (tmp_path / "deploy.yaml").write_text(BROKEN_SPEC)
    debug = tfspec("run", "deploy.yaml", "--quiet", cwd=tmp_path, env=environment(TFSPEC_DEBUG="1"))
    assert debug.returncode == 2, debug.stdout + debug.stderr
    assert "Traceback (most recent call last)" in debug.stderr
    assert 'raise ZeroDivisionError' in debug.stderr
    assert debug.stderr.splitlines()[-1] == "error: step train failed: ZeroDivisionError: no model today"
    assert "TensorFlow's messages: .tfspec/logs/tensorflow.log" in debug.stderr
    for text in ("absl::InitializeLog", *MAYBE_LINES):
        assert text not in debug.stderr


SITECUSTOMIZE = """\
import sys


class _CompilerOnly:
    '''What `pip install tfspec` without the runtime extra leaves importable: none of these.'''

    BLOCKED = {"numpy", "tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "tensorflow_serving",
               "ai_edge_litert", "sklearn", "PIL", "matplotlib", "scipy"}

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, _CompilerOnly())
"""


@pytest.mark.parametrize("debug", ["", "1"])
def test_compiler_only_install_says_the_runtime_extra_is_needed(tmp_path: Path, debug: str) -> None:
    blocker = tmp_path / "site"
    blocker.mkdir()
    (blocker / "sitecustomize.py").write_text(SITECUSTOMIZE)
    env = environment(PYTHONPATH=str(blocker), TFSPEC_DEBUG=debug)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copyfile(EXAMPLE, work / "deploy.yaml")
    (work / "dist" / "digits").mkdir(parents=True)
    shutil.copyfile(REPORT_FIXTURE, work / "dist" / "digits" / "report.json")

    probe = tfspec("build", "deploy.yaml", cwd=work, env=env)  # the compiler works without the runtime
    assert probe.returncode == 0, probe.stderr
    blocked = subprocess.run([sys.executable, "-c", "import numpy"], env=env, capture_output=True, text=True)
    assert "No module named 'numpy'" in blocked.stderr  # the blocker is in force

    for command in ("run", "report"):
        result = tfspec(command, "deploy.yaml", cwd=work, env=env)
        assert result.returncode == 2, result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith(f"error: tfspec {command} needs the runtime extra, and numpy")
        assert result.stderr.rstrip().endswith("not installed: pip install 'tfspec[runtime]'")
    assert not (work / ".tfspec").exists()
    assert json.loads((work / "dist" / "digits" / "report.json").read_text()) == json.loads(REPORT_FIXTURE.read_text())


def test_the_log_of_a_killed_run_is_removed_by_the_next_run(tmp_path: Path) -> None:
    """While TensorFlow runs, its log is a scratch file named after the run's process; a SIGKILLed run leaves
    it, and the next run (here its log redirection alone) removes it."""
    code = ("import sys, time\n"
            "from pathlib import Path\n"
            "from tfspec.runtime.tf import tensorflow_output\n"
            "with tensorflow_output(Path(sys.argv[1])):\n"
            "    import os; os.write(2, b'noise from C++\\n'); print('ready', flush=True); time.sleep(60)\n")
    process = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "logs" / "tensorflow.log")],
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline() == "ready\n"
        import tempfile

        (scratch,) = [p for p in Path(tempfile.gettempdir()).glob(f".tfspec-tensorflow.log.{process.pid}-*.tmp")]
        assert scratch.read_bytes() == b"noise from C++\n"
    finally:
        process.kill()
        process.wait(timeout=30)
    assert scratch.exists() and not (tmp_path / "logs").exists()

    from tfspec.runtime.tf import tensorflow_output

    with tensorflow_output(tmp_path / "logs" / "tensorflow.log"):
        os.write(2, b"this run's noise\n")
    assert not scratch.exists()
    assert (tmp_path / "logs" / "tensorflow.log").read_bytes() == b"this run's noise\n"


def test_the_run_table_against_the_released_model_shows_where_it_is_in_full() -> None:
    """The comparison table ``tfspec run`` prints: a long released-model location is folded, never cut, and a
    first release says so."""
    import io

    from rich.console import Console

    from tfspec.commands.run import _released_table

    where = "s3://models/digits-production-fleet/eu-west version 12"
    report = {"targets": {
        "serving": {"metrics": {"value": 0.95}, "gates": [{"name": "vs_released.max_accuracy_drop", "passed": False}],
                    "released": {"found": True, "description": where, "metrics": {"value": 0.96},
                                 "candidate": {"value": 0.94},
                                 "change": {"worse_by": 0.02, "size_growth_percent": 0.0, "latency_growth_percent": -3.2}}},
        "phone": {"metrics": {"value": 0.95}, "gates": [], "released": {"found": False, "description": "looked for x"}}}}
    out = io.StringIO()
    Console(width=120, file=out, color_system=None).print(_released_table(report, "accuracy"))
    text = out.getvalue()
    rows = [line.split("│") for line in text.splitlines() if line.startswith("│")]  # [_, target, released model, ...]
    phone_at = next(i for i, cells in enumerate(rows) if cells[1].strip() == "phone")
    serving = "".join(cells[2].strip() for cells in rows[:phone_at])
    phone = " ".join(cells[2].strip() for cells in rows[phone_at:])
    assert "…" not in text and serving.replace(" ", "") == where.replace(" ", ""), text
    assert " ".join(phone.split()) == "none found: first release", text
    assert all(figure in text for figure in ("0.9600", "0.9400", "+0.0200", "-3.2 %", "MISSED")), text
