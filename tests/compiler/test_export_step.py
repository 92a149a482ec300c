"""The plan holds an ``export`` step (a SavedModel) only when a target reads it: tf_serving and kserve serve
it; a tflite target converts from the Keras model, so a tflite-only spec spends no seconds on a SavedModel
nothing ships. (That such a spec still runs end to end is checked by the slow tflite-only runs, e.g.
``tests/runtime/test_recurrent_tflite.py``.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

import tfspec
from tfspec.compiler.targets import target_kinds

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "digits" / "deploy.yaml"


def _plan_of(tmp_path: Path, kinds: set[str]) -> dict[str, tuple[str, ...]]:
    """Step id → inputs of the digits example's plan with only the targets of ``kinds`` kept."""
    tree = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    tree["targets"] = [t for t in tree["targets"] if t["kind"] in kinds]
    tree.pop("environments", None)
    if "gpu_cluster" not in kinds:
        tree["training"].pop("distribution")  # multi-worker training needs the gpu_cluster target
    path = tmp_path / "deploy.yaml"
    path.write_text(yaml.safe_dump(tree, sort_keys=False), encoding="utf-8")
    result = tfspec.compile(path)
    assert result.ok, [d.format() for d in result.diagnostics]
    return {s.id: s.inputs for s in result.plan.steps}


@pytest.mark.parametrize("kinds", [{"tflite"}, {"tflite", "gpu_cluster"}])
def test_a_spec_without_a_serving_target_has_no_export_step(tmp_path: Path, kinds: set[str]) -> None:
    steps = _plan_of(tmp_path, kinds)
    assert "export" not in steps
    assert not any("export" in inputs for inputs in steps.values())
    assert steps["android.tflite"] == ("compress.1.quantization_aware", "data")  # converted from the Keras model


def test_a_serving_target_reads_the_export_step(tmp_path: Path) -> None:
    steps = _plan_of(tmp_path, {"tflite", "tf_serving"})
    assert steps["export"] == ("compress.1.quantization_aware", "data")
    assert "export" in steps["serving.verify"] and "export" in steps["serving.bundle"]


def test_only_the_kinds_that_serve_a_saved_model_read_it() -> None:
    assert {k.kind for k in target_kinds() if k.reads_saved_model} == {"kserve", "tf_serving"}
