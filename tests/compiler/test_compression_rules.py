"""One test per compression rule of the validator: the exact one-line message, position and hint.

Each spec is written as YAML text to tmp_path and compiled with ``tfspec.compile``; the compression list
and the model's layers are the only things that change. Line numbers count from the template below.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import tfspec

TEMPLATE = """\
api_version: tfspec/v1
name: digits
version: 1
data:
  source: {{kind: sklearn_digits}}
model:
  kind: sequential
  input_shape: [64]
  layers:
{layers}
training:
  loss: {loss}
  epochs: 2
targets:
  - {{kind: tflite, name: phone, quantization: {{kind: int8, representative_samples: 100}}}}
compression:
{stages}
"""

MLP = """\
    - {type: dense, name: hidden, units: 32, activation: relu}
    - {type: dense, name: logits, units: 10, activation: softmax}"""

STUDENT = "student: [{type: dense, name: small, units: 8, activation: relu}, {type: dense, name: out, units: 10, activation: softmax}]"


def compile_errors(tmp_path: Path, stages: str, layers: str = MLP, loss: str = "sparse_categorical_crossentropy") -> list[str]:
    text = TEMPLATE.format(layers=layers, stages=stages, loss=loss)
    path = tmp_path / "deploy.yaml"
    path.write_text(text, encoding="utf-8")
    result = tfspec.compile(path)
    return [d.format() for d in result.diagnostics]


def line_of(tmp_path: Path, needle: str) -> int:
    lines = (tmp_path / "deploy.yaml").read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if needle in line)


def at(tmp_path: Path, needle: str, key: str) -> str:
    """``file:line:col`` of ``key`` on the first line containing ``needle`` (diagnostics point at the key)."""
    n = line_of(tmp_path, needle)
    line = (tmp_path / "deploy.yaml").read_text(encoding="utf-8").splitlines()[n - 1]
    return f"{tmp_path}/deploy.yaml:{n}:{line.index(key) + 1}"


def test_valid_orders_compile(tmp_path: Path) -> None:
    stages = f"""\
  - {{kind: distill, teacher: {{kind: self}}, {STUDENT}}}
  - {{kind: prune, target_sparsity: 0.5, skip_layers: [out]}}
  - {{kind: cluster, number_of_clusters: 8, preserve_sparsity: true}}
  - {{kind: quantization_aware, preserve: [sparsity, clusters]}}"""
    assert compile_errors(tmp_path, stages) == []


def test_qat_before_prune(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: quantization_aware}
  - {kind: prune, target_sparsity: 0.5}""")
    n = line_of(tmp_path, "kind: prune")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:6: compression[1].kind: prune after quantization_aware is not supported "
                      "(hint: prune first, then quantization_aware with preserve: [sparsity])"]


def test_prune_after_cluster(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: cluster}
  - {kind: prune}""")
    n = line_of(tmp_path, "kind: prune")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:6: compression[1].kind: prune after cluster destroys the clusters "
                      "(hint: prune first, then cluster with preserve_sparsity: true)"]


def test_second_prune_lowers_sparsity(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: prune, target_sparsity: 0.8}
  - {kind: prune, target_sparsity: 0.5}""")
    assert errors == [f"{at(tmp_path, 'target_sparsity: 0.5', 'target_sparsity')}: compression[1].target_sparsity: target_sparsity 0.5 is below the "
                      "earlier prune stage's 0.8: the pruned weights would grow back "
                      "(hint: raise it to at least 0.8, or remove this stage)"]


def test_cluster_after_qat(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: quantization_aware}
  - {kind: cluster}""")
    n = line_of(tmp_path, "kind: cluster")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:6: compression[1].kind: cluster after quantization_aware is not supported "
                      "(hint: cluster first, then quantization_aware with preserve: [clusters])"]


def test_cluster_twice(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: cluster, number_of_clusters: 16}
  - {kind: cluster, number_of_clusters: 8}""")
    n = line_of(tmp_path, "number_of_clusters: 8")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:6: compression[1].kind: cluster appears twice: the second stage "
                      "re-clusters the first's centroids (hint: keep one cluster stage (compression[0]) with the "
                      "number_of_clusters you want)"]


def test_preserve_sparsity_without_prune(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: cluster, preserve_sparsity: true}""")
    assert errors == [f"{at(tmp_path, 'preserve_sparsity', 'preserve_sparsity')}: compression[0].preserve_sparsity: preserve_sparsity needs an "
                      "earlier prune stage (hint: add a prune stage before this one, or set preserve_sparsity: false)"]


def test_cluster_after_prune_must_preserve_sparsity(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: prune}
  - {kind: cluster}""")
    n = line_of(tmp_path, "kind: cluster")
    # preserve_sparsity is not written: the position is the stage's own.
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:5: compression[1].preserve_sparsity: cluster after prune must preserve "
                      "sparsity (hint: set preserve_sparsity: true (plain clustering undoes the pruning))"]


def test_qat_twice(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: quantization_aware}
  - {kind: quantization_aware, fine_tune_epochs: 1}""")
    n = line_of(tmp_path, "fine_tune_epochs: 1")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:6: compression[1].kind: quantization_aware appears twice "
                      "(hint: keep one quantization_aware stage (compression[0]))"]


def test_qat_after_prune_must_preserve_sparsity(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: prune}
  - {kind: quantization_aware}""")
    n = line_of(tmp_path, "kind: quantization_aware")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:5: compression[1].preserve: quantization_aware after prune must "
                      "preserve sparsity (hint: add sparsity to preserve (PQAT), or the pruned zeros are lost)"]


def test_qat_after_cluster_must_preserve_clusters(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: cluster}
  - {kind: quantization_aware}""")
    n = line_of(tmp_path, "kind: quantization_aware")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:5: compression[1].preserve: quantization_aware after cluster must "
                      "preserve clusters (hint: add clusters to preserve (CQAT))"]


def test_pqat_without_prune(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: quantization_aware, preserve: [sparsity]}""")
    assert errors == [f"{at(tmp_path, 'preserve: [sparsity]', 'preserve')}: compression[0].preserve: preserve: [sparsity] needs an earlier "
                      "prune stage (hint: add a prune stage before quantization_aware, or remove sparsity)"]


def test_cqat_without_cluster(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: quantization_aware, preserve: [clusters]}""")
    assert errors == [f"{at(tmp_path, 'preserve: [clusters]', 'preserve')}: compression[0].preserve: preserve: [clusters] needs an earlier "
                      "cluster stage (hint: add a cluster stage before quantization_aware, or remove clusters)"]


def test_distill_after_prune(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, f"""\
  - {{kind: prune}}
  - {{kind: distill, teacher: {{kind: self}}, {STUDENT}}}""")
    n = line_of(tmp_path, "kind: distill")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:6: compression[1].kind: distill must come before prune, cluster and "
                      "quantization_aware (hint: move the distill stage to the top of the list: it trains a new (student) model)"]


def test_distill_twice(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, f"""\
  - {{kind: distill, teacher: {{kind: self}}, {STUDENT}}}
  - {{kind: distill, teacher: {{kind: self}}, epochs: 3, {STUDENT}}}""")
    n = line_of(tmp_path, "epochs: 3")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:6: compression[1].kind: only one distill stage is supported "
                      "(hint: keep one distill stage (compression[0]))"]


def test_distill_without_student(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: distill, teacher: {kind: self}}""")
    n = line_of(tmp_path, "kind: distill")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:5: compression[0]: distill needs a student "
                      "(hint: add student: [layers...] (the smaller model))"]


def test_distill_without_teacher(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, f"""\
  - {{kind: distill, {STUDENT}}}""")
    n = line_of(tmp_path, "kind: distill")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:5: compression[0]: distill needs a teacher "
                      "(hint: add teacher: {kind: self} (the model trained here), {kind: saved_model, path: ...} "
                      "or {kind: spec, path: ...})"]


def test_distill_student_output_must_match_classes(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: distill, teacher: {kind: self}, student: [{type: dense, units: 8, activation: softmax}]}""")
    assert errors == [f"{at(tmp_path, 'kind: distill', '{type: dense')}: compression[0].student[0]: the student's last layer must be dense "
                      "with 10 units (hint: end the student with {type: dense, units: 10, activation: softmax})"]


def test_distill_needs_categorical_loss(tmp_path: Path) -> None:
    layers = """\
    - {type: dense, name: hidden, units: 32, activation: relu}
    - {type: dense, name: score, units: 1}"""
    errors = compile_errors(tmp_path, """\
  - {kind: distill, teacher: {kind: self}, student: [{type: dense, units: 1}]}""", layers=layers, loss="mean_squared_error")
    n = line_of(tmp_path, "kind: distill")
    assert f"{tmp_path}/deploy.yaml:{n}:6: compression[0].kind: distill matches softened class probabilities and needs " \
           "a categorical loss, not mean_squared_error (hint: use training.loss: sparse_categorical_crossentropy, or remove the " \
           "distill stage)" in errors


def test_skip_layers_unknown(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: prune, skip_layers: [output]}""")
    n = line_of(tmp_path, "skip_layers")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:33: compression[0].skip_layers[0]: no layer named 'output' in "
                      "model.layers (hint: known layers: hidden, logits)"]


def test_skip_layers_after_distill_name_student_layers(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, f"""\
  - {{kind: distill, teacher: {{kind: self}}, {STUDENT}}}
  - {{kind: prune, skip_layers: [logits]}}""")
    n = line_of(tmp_path, "skip_layers")
    assert errors == [f"{tmp_path}/deploy.yaml:{n}:33: compression[1].skip_layers[0]: no layer named 'logits' in "
                      "compression[0].student (hint: known layers: out, small)"]


def test_skip_layers_covering_every_weighted_layer(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: cluster, skip_layers: [hidden, logits]}""")
    assert errors == [f"{at(tmp_path, 'skip_layers', 'skip_layers')}: compression[0].skip_layers: skip_layers lists every layer with "
                      "weights: the cluster stage would change nothing (hint: leave at least one dense or convolution "
                      "layer out of skip_layers)"]


def test_qat_unsupported_layer(tmp_path: Path) -> None:
    layers = """\
    - {type: reshape, target_shape: [8, 8]}
    - {type: conv1d, name: conv, filters: 4, kernel_size: 3}
    - {type: flatten}
    - {type: dense, name: logits, units: 10, activation: softmax}"""
    errors = compile_errors(tmp_path, """\
  - {kind: quantization_aware}""", layers=layers)
    assert errors == [f"{at(tmp_path, 'type: conv1d', 'type')}: model.layers[1].type: quantization-aware training does not "
                      "support conv1d layers (compression[0] is quantization_aware) (hint: remove the quantization_aware "
                      "stage and use post-training quantization in the tflite target)"]


def test_m_by_n_conflicts_with_target_sparsity(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, """\
  - {kind: prune, target_sparsity: 0.8, sparsity_m_by_n: [2, 4]}""")
    assert errors == [f"{at(tmp_path, 'sparsity_m_by_n', 'target_sparsity')}: compression[0].target_sparsity: target_sparsity 0.8 conflicts "
                      "with sparsity_m_by_n [2, 4], which gives 0.5 (hint: remove target_sparsity (m-by-n pruning sets "
                      "the sparsity), or remove sparsity_m_by_n)"]


@pytest.mark.parametrize("stage", [
    "{kind: prune, sparsity_m_by_n: [2, 4]}",
    "{kind: prune, target_sparsity: 0.5, sparsity_m_by_n: [2, 4]}",
])
def test_m_by_n_without_conflict(tmp_path: Path, stage: str) -> None:
    assert compile_errors(tmp_path, f"  - {stage}") == []


def test_saved_model_teacher_missing(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, f"""\
  - {{kind: distill, teacher: {{kind: saved_model, path: models/teacher}}, {STUDENT}}}""")
    assert errors == [f"{at(tmp_path, 'models/teacher', 'path')}: compression[0].teacher.path: teacher SavedModel "
                      "'models/teacher' does not exist (hint: paths are relative to this spec file)"]


def test_spec_teacher_missing(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, f"""\
  - {{kind: distill, teacher: {{kind: spec, path: big.yaml}}, {STUDENT}}}""")
    assert errors == [f"{at(tmp_path, 'big.yaml', 'path')}: compression[0].teacher.path: teacher spec file 'big.yaml' "
                      "does not exist (hint: paths are relative to this spec file)"]


def test_spec_cannot_teach_itself(tmp_path: Path) -> None:
    errors = compile_errors(tmp_path, f"""\
  - {{kind: distill, teacher: {{kind: spec, path: deploy.yaml}}, {STUDENT}}}""")
    assert errors == [f"{at(tmp_path, 'path: deploy.yaml', 'path')}: compression[0].teacher.path: a spec cannot teach "
                      "itself (hint: use teacher: {kind: self})"]


def test_teacher_spec_with_errors(tmp_path: Path) -> None:
    (tmp_path / "big.yaml").write_text("api_version: tfspec/v1\nname: big\n", encoding="utf-8")
    errors = compile_errors(tmp_path, f"""\
  - {{kind: distill, teacher: {{kind: spec, path: big.yaml}}, {STUDENT}}}""")
    assert errors == [f"{at(tmp_path, 'big.yaml', 'path')}: compression[0].teacher.path: the teacher spec has 4 "
                      f"error(s), first: {tmp_path}/big.yaml:1:1: data: required key is missing "
                      "(hint: fix it: tfspec validate big.yaml)"]


def test_teacher_specs_in_a_cycle(tmp_path: Path) -> None:
    stage = f"  - {{kind: distill, teacher: {{kind: spec, path: other.yaml}}, {STUDENT}}}"
    other = TEMPLATE.format(layers=MLP, loss="sparse_categorical_crossentropy",
                            stages=f"  - {{kind: distill, teacher: {{kind: spec, path: deploy.yaml}}, {STUDENT}}}")
    (tmp_path / "other.yaml").write_text(other, encoding="utf-8")
    errors = compile_errors(tmp_path, stage)
    assert len(errors) == 1
    assert errors[0].startswith(f"{at(tmp_path, 'other.yaml', 'path')}: compression[0].teacher.path: the teacher spec "
                                f"has 1 error(s), first: {tmp_path}/other.yaml:")
    assert "compression[0].teacher.path: teacher specs form a cycle through 'deploy.yaml'" in errors[0]
