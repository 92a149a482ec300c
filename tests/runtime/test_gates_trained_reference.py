"""Gates compare against the trained model: what compression cost counts (slow: trains digits)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from _compression_helpers import SPEC
from runtime_testing import invoke

# Two clusters per kernel, no fine-tuning worth the name: the clustered model is clearly worse than the
# trained one, and a float tflite of it is as good as the clustered Keras model (drop ~0 from it).
STAGES = "  - {kind: cluster, number_of_clusters: 2, centroid_init: linear, fine_tune_epochs: 1, learning_rate: 1.0e-6}"
TARGET = "{kind: tflite, name: phone, quantization: {kind: none}, gates: {max_accuracy_drop: 0.02}}"


@pytest.mark.slow
def test_compression_damage_misses_the_accuracy_drop_gate(tmp_path: Path) -> None:
    spec = tmp_path / "deploy.yaml"
    spec.write_text(SPEC.format(stages=STAGES, target=TARGET).replace("epochs: 20", "epochs: 8"), encoding="utf-8")
    dist = tmp_path / "dist"
    result = invoke("run", str(spec), "--quiet", "--cache-dir", str(tmp_path / "cache"), "--dist-dir", str(dist))
    assert result.exit_code == 1, result.output
    report = json.loads((dist / "report.json").read_text("utf-8"))
    trained, clustered = report["stages"]
    assert (trained["label"], clustered["step"]) == ("trained", "compress.0.cluster")
    assert trained["value"] - clustered["value"] > 0.02  # the damage compression did
    phone = report["targets"]["phone"]
    gate = next(g for g in phone["gates"] if g["name"] == "max_accuracy_drop")
    assert not gate["passed"]
    # measured from the trained model, not from the clustered Keras model it was converted from
    assert gate["value"] == pytest.approx(trained["value"] - phone["metrics"]["accuracy"], abs=1e-6)
    assert phone["metrics"]["drop_from_final_keras"] < 0.02  # the old reference would have passed it
    # the CLI shows every stage and names the missed gate
    assert "trained" in result.output and "compress.0.cluster" in result.output
    assert "max_accuracy_drop" in result.output
