"""Compression steps in the plan: inputs, outputs, and fingerprints that follow external teachers."""

from __future__ import annotations

from pathlib import Path

import tfspec

from test_compression_rules import MLP, STUDENT, TEMPLATE


def _plan(tmp_path: Path, stages: str, name: str = "deploy.yaml"):
    path = tmp_path / name
    path.write_text(TEMPLATE.format(layers=MLP, loss="sparse_categorical_crossentropy", stages=stages), encoding="utf-8")
    result = tfspec.compile(path)
    assert result.ok, [d.format() for d in result.diagnostics]
    return result.plan


def test_stage_steps_chain_and_qat_writes_h5(tmp_path: Path) -> None:
    plan = _plan(tmp_path, """\
  - {kind: prune}
  - {kind: quantization_aware, preserve: [sparsity]}""")
    prune, qat = plan.step("compress.0.prune"), plan.step("compress.1.quantization_aware")
    assert prune.kind == "prune" and prune.inputs == ("train", "data")
    assert qat.kind == "qat" and qat.inputs == ("compress.0.prune", "data")
    assert qat.outputs[0] == "model.h5" and prune.outputs[0] == "model.keras"
    assert plan.step("phone.tflite").inputs[0] == "compress.1.quantization_aware"


def test_saved_model_teacher_contents_change_the_fingerprint(tmp_path: Path) -> None:
    teacher = tmp_path / "teacher"
    (teacher / "variables").mkdir(parents=True)
    (teacher / "saved_model.pb").write_bytes(b"graph")
    (teacher / "variables" / "variables.data-00000-of-00001").write_bytes(b"weights-1")
    stages = f"  - {{kind: distill, teacher: {{kind: saved_model, path: teacher}}, {STUDENT}}}"
    first = _plan(tmp_path, stages).step("compress.0.distill")
    assert _plan(tmp_path, stages).step("compress.0.distill").fingerprint == first.fingerprint
    (teacher / "variables" / "variables.data-00000-of-00001").write_bytes(b"weights-2")
    second = _plan(tmp_path, stages).step("compress.0.distill")
    assert second.fingerprint != first.fingerprint
    assert second.params.teacher.sha256 != first.params.teacher.sha256


def test_spec_teacher_fingerprint_follows_the_teacher_model(tmp_path: Path) -> None:
    stages = f"  - {{kind: distill, teacher: {{kind: spec, path: big.yaml}}, {STUDENT}}}"
    teacher = _plan(tmp_path, "  - {kind: prune, target_sparsity: 0.5}", name="big.yaml")
    student = _plan(tmp_path, stages).step("compress.0.distill")
    assert student.params.teacher.final_model.model_dump() == {
        "step": "compress.0.prune", "fingerprint": teacher.step("compress.0.prune").fingerprint}
    _plan(tmp_path, "  - {kind: prune, target_sparsity: 0.6}", name="big.yaml")
    assert _plan(tmp_path, stages).step("compress.0.distill").fingerprint != student.fingerprint
