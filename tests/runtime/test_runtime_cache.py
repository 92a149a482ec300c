"""The step cache under failure: a failing step never enters it and leaves earlier entries intact."""

from __future__ import annotations

import sys
from pathlib import Path

from runtime_testing import invoke
from tfspec.compiler.pipeline import compile_spec
from tfspec.runtime.cache import StepCache

SPEC = """\
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


def test_failed_step_keeps_earlier_entries_and_leaves_no_partial_entry(tmp_path: Path) -> None:
    (tmp_path / "broken_models.py").write_text("def build():\n    raise ZeroDivisionError('no model today')\n")
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC)
    result = invoke("run", str(spec), "--dist-dir", str(tmp_path / "dist"), "--quiet")
    assert result.exit_code == 2
    assert "step train failed: ZeroDivisionError: no model today" in result.stderr
    assert "Traceback" not in result.output
    plan = compile_spec(spec).plan
    cache = StepCache(tmp_path / ".tfspec" / "cache")
    assert cache.has(plan.step("data").fingerprint)
    assert not cache.has(plan.step("train").fingerprint)
    entries = sorted(p.name for p in cache.root.iterdir())
    # no scratch folder, no checkpoint left behind; the tag that marks the folder as a cache
    assert entries == sorted([plan.step("data").fingerprint, "CACHEDIR.TAG"])
    assert not (tmp_path / "dist").exists()

    result = invoke("run", str(spec), "--dist-dir", str(tmp_path / "dist"), "--quiet")
    assert result.exit_code == 2
    assert "cached  data" in result.output and "run     train" in result.output


def test_missing_step_module_is_a_clear_error_before_anything_runs(tmp_path: Path, monkeypatch) -> None:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.replace('  kind: builder\n  builder: "broken_models:build"\n',
                                 "  kind: sequential\n  layers: [{type: dense, units: 10, activation: softmax}]\n")
                    + "compression:\n  - {kind: cluster, number_of_clusters: 8, fine_tune_epochs: 1}\n")
    # A runtime without the cluster step (None in sys.modules makes the import fail, as for a missing file).
    monkeypatch.setitem(sys.modules, "tfspec.runtime.steps.cluster", None)
    result = invoke("run", str(spec), "--quiet", "--dist-dir", str(tmp_path / "dist"))
    assert result.exit_code == 2, result.output
    assert f"{spec}:13:5: compression[0]: this runtime has no 'cluster' step" in result.stderr
    assert not (tmp_path / ".tfspec").exists()
