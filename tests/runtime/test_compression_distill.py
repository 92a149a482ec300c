"""The distill step: the loss formula (unit), and students taught by this spec's model, a SavedModel and
another spec on digits (slow, through the executor)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from _compression_helpers import SPEC, RENDER_ONLY, run_spec, shared_cache

from tfspec.runtime.tf import import_tf

STUDENT = ("student: [{type: dense, name: small, units: 16, activation: relu}, "
           "{type: dense, name: out, units: 10, activation: softmax}]")


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def test_distillation_loss_matches_the_formula() -> None:
    from tfspec.runtime.steps.distill import make_distiller

    tf, keras = import_tf()
    keras.utils.set_random_seed(3)
    student = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="softmax")])
    teacher_logits = np.random.default_rng(0).normal(size=(8, 4)).astype(np.float32) * 3
    x = np.random.default_rng(1).normal(size=(8, 5)).astype(np.float32)
    y = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    T, alpha = 3.0, 0.25
    distiller = make_distiller(student, lambda batch, training=False: tf.constant(teacher_logits),
                               temperature=T, alpha=alpha, labels="sparse")
    loss, hard, soft, _ = distiller._terms(tf.constant(x), tf.constant(y), training=False)

    dense = student.layers[-1]
    s = x @ dense.kernel.numpy() + dense.bias.numpy()  # the student's logits, below its softmax
    ce = -np.log(_softmax(s)[np.arange(8), y]).mean()
    p_t, p_s = _softmax(teacher_logits / T), _softmax(s / T)
    kl = (p_t * (np.log(p_t) - np.log(p_s))).sum(axis=-1).mean()
    assert float(hard) == pytest.approx(ce, rel=1e-5)
    assert float(soft) == pytest.approx(T * T * kl, rel=1e-4)
    assert float(loss) == pytest.approx(alpha * ce + (1 - alpha) * T * T * kl, rel=1e-4)


def _check_student(run, step_id: str) -> dict:
    model = run.model(step_id)
    assert [layer.name for layer in model.layers] == ["small", "out"]
    metrics = run.metrics(step_id)
    history = json.loads((run.entry(step_id) / "history.json").read_text())
    losses = history["distillation_loss"]
    assert len(losses) == 6 and losses == metrics["distillation_loss"]
    assert losses[-1] < losses[0] and losses[-1] < losses[len(losses) // 2]
    assert metrics["accuracy_after"] >= 0.85
    assert metrics["params"] == model.count_params() < 4810
    return metrics


@pytest.mark.slow
def test_distill_from_this_spec_then_prune_the_student(tmp_path: Path, tmp_path_factory) -> None:
    run = run_spec(tmp_path, shared_cache(tmp_path_factory), f"""\
  - {{kind: distill, teacher: {{kind: self}}, {STUDENT}, epochs: 6, learning_rate: 0.005}}
  - {{kind: prune, target_sparsity: 0.5, fine_tune_epochs: 2, skip_layers: [out]}}""")
    metrics = _check_student(run, "compress.0.distill")
    assert metrics["teacher"]["params"] == 4810
    assert metrics["teacher"]["accuracy"] == pytest.approx(run.metrics("train")["accuracy"], abs=1e-6)
    pruned = run.metrics("compress.1.prune")
    assert pruned["params"] == metrics["params"]  # the later stage works on the student
    assert {layer["layer"]: layer["sparsity"] for layer in pruned["layers"]}["small"] == pytest.approx(0.5, abs=0.02)


@pytest.mark.slow
def test_distill_from_a_saved_model_signature(tmp_path: Path, tmp_path_factory) -> None:
    cache = shared_cache(tmp_path_factory)
    first = run_spec(tmp_path, cache, f"  - {{kind: distill, teacher: {{kind: self}}, {STUDENT}, epochs: 1}}")
    # A plain tf.Module SavedModel (not Keras) whose signature returns probabilities.
    tf, _ = import_tf()
    teacher = first.model("train")
    module = tf.Module()
    module.model = teacher
    module.serve = tf.function(lambda pixels: {"probabilities": teacher(pixels, training=False)},
                               input_signature=[tf.TensorSpec([None, 64], tf.float32)])
    tf.saved_model.save(module, str(tmp_path / "teacher_sm"), signatures={"serving_default": module.serve})
    run = run_spec(tmp_path, cache, f"""\
  - {{kind: distill, teacher: {{kind: saved_model, path: teacher_sm}}, {STUDENT}, epochs: 6, learning_rate: 0.005}}""")
    metrics = _check_student(run, "compress.0.distill")
    assert metrics["teacher"]["description"].endswith("(probabilities)")
    assert metrics["teacher"]["accuracy"] == pytest.approx(run.metrics("train")["accuracy"], abs=1e-6)


@pytest.mark.slow
def test_distill_from_another_spec(tmp_path: Path, tmp_path_factory) -> None:
    from tfspec.runtime.errors import StepError

    teacher_dir = tmp_path / "teacher"
    teacher_dir.mkdir()
    student_stage = f"  - {{kind: distill, teacher: {{kind: spec, path: teacher/deploy.yaml}}, {STUDENT}, epochs: 6, learning_rate: 0.005}}"
    (teacher_dir / "deploy.yaml").write_text(SPEC.format(stages="  - {kind: prune, target_sparsity: 0.5, "
                                                         "fine_tune_epochs: 1}", target=RENDER_ONLY))
    # Not run yet: the error names the teacher spec's cache and the fix.
    with pytest.raises(StepError, match=r"compression\[0\]\.teacher\.path: the teacher spec's model \(step "
                                        r"compress\.0\.prune\) is not in its cache .*run `tfspec run "):
        run_spec(tmp_path, shared_cache(tmp_path_factory), student_stage)
    import tfspec
    from tfspec.runtime.executor import run_plan
    from tfspec.running import run_inputs_from_compiled

    run_plan(run_inputs_from_compiled(tfspec.compile(teacher_dir / "deploy.yaml")), dist_dir=teacher_dir / "dist", quiet=True, log=lambda _: None)
    run = run_spec(tmp_path, shared_cache(tmp_path_factory), student_stage)
    metrics = _check_student(run, "compress.0.distill")
    assert metrics["teacher"]["description"] == "the model of teacher/deploy.yaml"


def test_teacher_logits_below_a_softmax_or_from_probabilities() -> None:
    from tfspec.runtime.steps.distill import _keras_teacher

    tf, keras = import_tf()
    keras.utils.set_random_seed(5)
    x = np.random.default_rng(2).normal(size=(64, 5)).astype(np.float32)
    dense = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, activation="softmax")])
    layer = dense.layers[-1]
    true_logits = x @ layer.kernel.numpy() + layer.bias.numpy()
    exact = _keras_teacher(dense, x, "dense")
    assert np.allclose(np.asarray(exact.logits(tf.constant(x))), true_logits, atol=1e-5)
    # Probabilities from a layer that is not recognisably a softmax: the log is used (logits up to a row constant).
    wrapped = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4, name="z"),
                                keras.layers.Lambda(lambda t: tf.nn.softmax(t))])
    wrapped.get_layer("z").set_weights(layer.get_weights())
    probed = _keras_teacher(wrapped, x, "lambda")
    assert probed.description == "lambda (probabilities)"
    difference = np.asarray(probed.logits(tf.constant(x))) - true_logits
    assert np.allclose(difference, difference[:, :1], atol=1e-4)
    # Raw scores are taken as logits.
    raw = keras.Sequential([keras.Input((5,)), keras.layers.Dense(4)])
    assert _keras_teacher(raw, x, "raw").description == "raw (logits)"
