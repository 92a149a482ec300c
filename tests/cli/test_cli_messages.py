"""What the compiler commands say: counts that agree between validate and build, warnings kept beside
errors in ``--json``, hints that never name a file inside tfspec's source tree, did-you-mean in
``explain``, variables explained with their effective value, a hint to quote ``${VAR}`` in a flow mapping,
and the real I/O types in the NPU coverage line."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

from tfspec_testing import EXAMPLE, ROOT, tfspec_command

from tfspec.runtime.accelerators import coverage_line


def _run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*tfspec_command(), *args], capture_output=True, text=True, cwd=cwd,
                          env={**os.environ, **(env or {})}, timeout=300)


def _example(tmp_path: Path) -> Path:
    spec = tmp_path / "deploy.yaml"
    shutil.copyfile(EXAMPLE, spec)
    return spec


def test_validate_and_build_count_the_same_files(tmp_path: Path) -> None:
    spec = _example(tmp_path)
    validated = _run("validate", str(spec), cwd=tmp_path)
    built = _run("build", str(spec), "--out", "out", cwd=tmp_path)
    assert validated.returncode == 0 and built.returncode == 0, validated.stderr + built.stderr
    said = int(re.search(r"(\d+) files\)", validated.stdout).group(1))
    wrote = int(re.search(r"wrote (\d+) files", built.stdout).group(1))
    on_disk = sum(1 for f in (tmp_path / "out").rglob("*") if f.is_file())
    assert said == wrote == on_disk


def test_validate_json_keeps_warnings_beside_errors(tmp_path: Path) -> None:
    standards = ROOT / "tests" / "data" / "standards"
    proc = _run("validate", "--json", "specs/policy_violation.yaml", cwd=standards)
    assert proc.returncode == 2
    data = json.loads(proc.stdout)
    assert not data["ok"] and len(data["diagnostics"]) == 2
    # serving-autoscales skips GPU targets (the base's serving target has GPUs): one policy warning
    assert [w["message"].split(":")[0] for w in data["warnings"]] == ["policy serving-has-pdb (warning)"]


def test_unknown_layer_hint_points_at_a_command_not_a_source_file(tmp_path: Path) -> None:
    spec = _example(tmp_path)
    spec.write_text(spec.read_text(encoding="utf-8").replace("type: dense, name: hidden", "type: densse, name: hidden"),
                    encoding="utf-8")
    proc = _run("validate", str(spec), cwd=tmp_path)
    assert proc.returncode == 2
    assert "keras_layers.json" not in proc.stderr and "tfspec layers" in proc.stderr
    listed = _run("layers", cwd=tmp_path)
    assert listed.returncode == 0 and {"dense", "conv2d_transpose", "multi_head_attention"} <= set(listed.stdout.split())
    dense = _run("layers", "dense", cwd=tmp_path)
    assert dense.returncode == 0 and "units: required" in dense.stdout
    assert _run("layers", "densse", cwd=tmp_path).returncode == 2


def test_explain_suggests_the_key_that_exists(tmp_path: Path) -> None:
    spec = _example(tmp_path)
    proc = _run("explain", str(spec), "training.epoch", cwd=tmp_path)
    assert proc.returncode == 2
    assert "did you mean training.epochs?" in proc.stderr


FLOW_SEED = """\
api_version: tfspec/v1
name: digits
version: 1
data:
  source: {kind: sklearn_digits}
  split: {validation: 0.1, test: 0.2, seed: SEED_VALUE}
model:
  kind: sequential
  input_shape: [64]
  layers:
    - {type: dense, units: 10, activation: softmax}
training: {optimizer: {kind: adam}, loss: sparse_categorical_crossentropy, epochs: 1}
targets:
  - {kind: tflite, name: android, quantization: {kind: none}}
"""


def test_a_variable_in_a_flow_mapping_gets_a_hint_to_quote_it(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(FLOW_SEED.replace("SEED_VALUE", "${SEED:-7}"), encoding="utf-8")
    proc = _run("validate", str(spec), cwd=tmp_path)
    assert proc.returncode == 2
    assert 'deploy.yaml:6:' in proc.stderr and 'quote the variable inside {...} or [...]: "${SEED:-7}"' in proc.stderr
    spec.write_text(FLOW_SEED.replace("SEED_VALUE", '"${SEED:-7}"'), encoding="utf-8")
    assert _run("validate", str(spec), cwd=tmp_path).returncode == 0


def test_explain_prints_the_effective_value_of_a_variable(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(FLOW_SEED.replace("SEED_VALUE", '"${SEED:-7}"'), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "SEED"}
    default = subprocess.run([*tfspec_command(), "explain", str(spec), "data.split.seed"], capture_output=True,
                             text=True, cwd=tmp_path, env=env, timeout=300)
    assert default.returncode == 0, default.stderr
    assert default.stdout.splitlines()[0] == "data.split.seed = 7"
    assert "SEED unset: default '7'" in default.stdout and '"${SEED:-7}"' in default.stdout
    set_ = _run("explain", str(spec), "data.split.seed", "--json", cwd=tmp_path, env={"SEED": "11"})
    data = json.loads(set_.stdout)
    assert data["value"] == 11 and data["written"] == "${SEED:-7}" and data["variables"] == ["SEED='11' (environment)"]


def test_the_npu_coverage_line_names_the_real_io_types() -> None:
    ops = {"gpu": {"delegated": 3, "ops": 3},
           "npu": {"delegated": 3, "ops": 3, "integer_io": False, "input_types": ["INT32"], "output_types": ["INT8"]}}
    line = coverage_line(ops)
    assert "float" not in line.lower() and "I/O INT32 in, INT8 out: not 8-bit integer" in line
