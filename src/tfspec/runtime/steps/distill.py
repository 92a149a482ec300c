"""The ``distill`` step: a student (the stage's ``student`` layers, on the model's input) learns from a teacher.

Per batch, with the teacher's logits t, the student's logits s, temperature T and weight α::

    loss = α · CE(labels, softmax(s)) + (1 − α) · T² · KL(softmax(t / T) ‖ softmax(s / T))

(Hinton et al. 2015: T² keeps the soft term's gradients on the scale of the hard term's.) The student's
regularization losses are added. The training runs in a tf_keras ``Model`` subclass with its own
``train_step``; each epoch's ``loss``, ``student_loss`` (the CE term), ``distillation_loss`` (the
T²·KL term) and ``accuracy`` go into ``history.json``. The trained student is the step's ``model.keras``:
the following stages and targets work on it.

Logits: a final ``Dense`` (or ``Activation``/``Softmax``) layer with a softmax is evaluated without it,
exactly. A teacher without such a layer (a SavedModel that is not a Keras model is called through its
``serving_default`` signature) is probed on 64 training examples: when its outputs are probabilities
(every row non-negative and summing to 1) their logarithm is used, which equals the logits up to a
per-row constant that the softmax cancels; otherwise its outputs are taken as logits.

Teachers:

* ``self``: the model this spec's ``train`` step trained (its cache entry is this step's input).
* ``saved_model``: a SavedModel folder (or ``.keras`` file) relative to the spec file.
* ``spec``: another spec file (relative to this one). The compiler compiles it (no environment
  overlay, see ``tfspec.compiler.teachers``) and puts its final model step (the last compression stage,
  or ``train``) and that step's fingerprint into this step's ``teacher.final_model`` params; this step
  reads that entry from *the teacher's* default cache, ``.tfspec/cache/<fingerprint>/`` beside the
  teacher spec — so ``tfspec run`` the teacher spec first. Its data must be preprocessed like this spec's.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from tfspec.runtime.compression import (
    load_stage_inputs,
    stage_path,
    weights_zipped_size,
)
from tfspec.plan import DistillParams, SavedModelTeacherParams, SequentialModelParams, SpecTeacherParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.datasets import label_mode
from tfspec.runtime.errors import StepError
from tfspec.runtime.keras_io import custom_objects_scope, load_model, save_model
from tfspec.runtime.fit import compile_model, fit_model, model_metrics
from tfspec.runtime.model_builder import build_model
from tfspec.runtime.optimizers import at_learning_rate, build_optimizer
from tfspec.runtime.tf import import_tf

__all__ = ["Teacher", "load_teacher", "keras_logits", "build_student", "make_distiller", "run"]

_SOFTMAX_LAYERS = ("Activation", "Softmax")


@dataclasses.dataclass
class Teacher:
    """A frozen teacher.

    Attributes:
        logits: ``f(x, training=False) -> logits``.
        model: the Keras model, for Keras teachers (None for a SavedModel signature).
        description: what the teacher is, for logs and metrics.
        keep_alive: the loaded SavedModel object a signature needs alive.
    """

    logits: Any
    model: Any | None
    description: str
    keep_alive: Any = None


def _is_softmax(layer: Any) -> bool:
    activation = getattr(layer, "activation", None)
    return getattr(activation, "__name__", "") == "softmax" or type(layer).__name__ == "Softmax"


def keras_logits(model: Any) -> Any:
    """``f(x, training) -> logits`` for a Keras classifier, sharing its layers (so gradients reach them)."""
    tf, keras = import_tf()
    last = model.layers[-1]
    if not _is_softmax(last):
        return lambda x, training=False: model(x, training=training)
    trunk = keras.Model(model.inputs, last.input, name=f"{model.name}_trunk")
    if type(last).__name__ in _SOFTMAX_LAYERS:
        return lambda x, training=False: trunk(x, training=training)
    if type(last).__name__ != "Dense":
        raise ValueError(f"cannot take logits below a softmax in a {type(last).__name__} layer")

    def logits(x: Any, training: bool = False) -> Any:
        out = tf.matmul(trunk(x, training=training), last.kernel)
        return out + last.bias if last.use_bias else out

    return logits


def _outputs_are_probabilities(outputs: np.ndarray) -> bool:
    return bool((outputs >= 0).all() and np.allclose(outputs.sum(axis=-1), 1.0, atol=1e-3))


def _as_logits(raw: Any, sample: np.ndarray) -> tuple[Any, bool]:
    """``raw`` itself when it gives logits; its logarithm when it gives probabilities (probed on ``sample``)."""
    tf, _ = import_tf()
    if not _outputs_are_probabilities(np.asarray(raw(tf.constant(sample[:64])))):
        return raw, False
    return (lambda x, training=False: tf.math.log(tf.clip_by_value(raw(x), 1e-12, 1.0))), True


def _keras_teacher(model: Any, sample: np.ndarray, description: str) -> Teacher:
    """A Keras teacher: logits below its softmax layer, or its outputs (their log when they are probabilities)."""
    if _is_softmax(model.layers[-1]):
        return Teacher(keras_logits(model), model, description)
    logits, probabilities = _as_logits(lambda x, training=False: model(x, training=False), sample)
    return Teacher(logits, model, f"{description} ({'probabilities' if probabilities else 'logits'})")


def _signature_teacher(path: Path, sample: np.ndarray) -> Teacher:
    tf, _ = import_tf()
    loaded = tf.saved_model.load(str(path))
    signature = loaded.signatures.get("serving_default")
    if signature is None:
        raise ValueError("it has no serving_default signature")
    input_names = list(signature.structured_input_signature[1])
    if len(input_names) != 1:
        raise ValueError(f"its serving_default signature takes {len(input_names)} inputs, distillation needs 1")
    output_names = sorted(signature.structured_outputs)
    name_in, name_out = input_names[0], output_names[0]

    def raw(x: Any, training: bool = False) -> Any:
        return signature(**{name_in: tf.cast(x, tf.float32)})[name_out]

    logits, probabilities = _as_logits(raw, sample)
    return Teacher(logits, None, f"SavedModel {path} ({'probabilities' if probabilities else 'logits'})", loaded)


def _spec_teacher_dir(ctx: StepContext, teacher: SpecTeacherParams, spec_path: Path) -> Path:
    """The teacher spec's final model in its own cache (the plan put that step's fingerprint in params)."""
    from tfspec.runtime.cache import StepCache, default_cache_dir

    key = stage_path(ctx, "teacher", "path")
    final = teacher.final_model
    if not spec_path.is_file() or final is None:
        raise StepError(key, f"teacher spec {spec_path} does not exist or does not compile",
                        f"run `tfspec validate {spec_path}`")
    cache = StepCache(default_cache_dir(spec_path))
    if not cache.has(final.fingerprint):
        raise StepError(key, f"the teacher spec's model (step {final.step}) is not in its cache {cache.root}",
                        f"run `tfspec run {spec_path}` first")
    return cache.path(final.fingerprint)


def load_teacher(ctx: StepContext, own_model: Any, sample: np.ndarray) -> Teacher:
    """The stage's teacher (see the module docstring for the three kinds); ``own_model`` is this spec's."""
    p = ctx.params
    assert isinstance(p, DistillParams)
    teacher = p.teacher
    key = stage_path(ctx, "teacher", "path")
    if isinstance(teacher, SpecTeacherParams):
        model = load_model(_spec_teacher_dir(ctx, teacher, ctx.root / teacher.path), compile=False)
        return _keras_teacher(model, sample, f"the model of {teacher.path}")
    if not isinstance(teacher, SavedModelTeacherParams):
        return _keras_teacher(own_model, sample, "this spec's trained model")
    from tfspec.runtime.staging import StagingError, staged

    try:
        with staged(ctx.root, teacher.path, teacher.storage) as path:  # a bucket: a bounded local copy
            return _saved_model_teacher(key, path, teacher.path, sample)
    except StagingError as error:
        raise StepError(key, str(error)) from None


def _saved_model_teacher(key: tuple[str | int, ...], path: Path, name: str, sample: np.ndarray) -> Teacher:
    _, keras = import_tf()
    if not path.exists():
        raise StepError(key, f"teacher SavedModel {path} does not exist")
    try:
        with custom_objects_scope():
            model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError, KeyError):
        model = None  # not a Keras model: use its serving signature
    if model is not None:
        return _keras_teacher(model, sample, f"Keras model {name}")
    try:
        return _signature_teacher(path, sample)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise StepError(key, f"cannot use {path} as a teacher: {error}",
                        "give a SavedModel with a serving_default signature taking one input") from error


def build_student(ctx: StepContext) -> Any:
    """The student model: the stage's layers on the spec model's input (seeded like training)."""
    p = ctx.params
    assert isinstance(p, DistillParams)
    description = SequentialModelParams(kind="sequential", input_shape=p.input_shape, input_dtype=p.input_dtype,
                                        input_name=p.input_name, output_name=p.output_name, layers=p.student,
                                        placement=None)
    return build_model(description, spec_dir=ctx.root, seed=p.fit.seed)


def make_distiller(student: Any, teacher_logits: Any, *, temperature: float, alpha: float, labels: str) -> Any:
    """A tf_keras model whose ``fit`` trains ``student`` on the distillation loss (``labels``: sparse/one_hot)."""
    tf, keras = import_tf()
    student_logits = keras_logits(student)
    T = float(temperature)

    class Distiller(keras.Model):
        def __init__(self) -> None:
            super().__init__(name="distiller")
            self.student = student
            self.loss_tracker = keras.metrics.Mean(name="loss")
            self.hard_tracker = keras.metrics.Mean(name="student_loss")
            self.soft_tracker = keras.metrics.Mean(name="distillation_loss")
            self.accuracy = (keras.metrics.SparseCategoricalAccuracy(name="accuracy") if labels == "sparse"
                             else keras.metrics.CategoricalAccuracy(name="accuracy"))

        @property
        def metrics(self) -> list[Any]:
            return [self.loss_tracker, self.hard_tracker, self.soft_tracker, self.accuracy]

        def call(self, x: Any, training: bool = False) -> Any:
            return self.student(x, training=training)

        def _terms(self, x: Any, y: Any, training: bool) -> tuple[Any, Any, Any, Any]:
            t = tf.stop_gradient(tf.cast(teacher_logits(x, training=False), tf.float32))
            s = student_logits(x, training=training)
            if labels == "sparse":
                hard = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(y, s, from_logits=True))
            else:
                hard = tf.reduce_mean(keras.losses.categorical_crossentropy(y, s, from_logits=True))
            log_p_teacher = tf.nn.log_softmax(t / T, axis=-1)
            log_p_student = tf.nn.log_softmax(s / T, axis=-1)
            kl = tf.reduce_sum(tf.exp(log_p_teacher) * (log_p_teacher - log_p_student), axis=-1)
            soft = tf.reduce_mean(kl) * (T * T)
            loss = alpha * hard + (1.0 - alpha) * soft
            if self.student.losses:
                loss += tf.add_n(self.student.losses)
            return loss, hard, soft, s

        def _update(self, y: Any, loss: Any, hard: Any, soft: Any, s: Any) -> dict[str, Any]:
            self.loss_tracker.update_state(loss)
            self.hard_tracker.update_state(hard)
            self.soft_tracker.update_state(soft)
            self.accuracy.update_state(y, tf.nn.softmax(s))
            return {m.name: m.result() for m in self.metrics}

        def train_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            with tf.GradientTape() as tape:
                loss, hard, soft, s = self._terms(x, y, training=True)
            variables = self.student.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return self._update(y, loss, hard, soft, s)

        def test_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            return self._update(y, *self._terms(x, y, training=False))

    return Distiller()


def _accuracy(logits: Any, data: Any, split: str, batch: int = 512) -> float:
    """Accuracy of ``logits`` on a split, streamed batch by batch."""
    right = total = 0
    for x, y in data.examples(split).batch(batch).as_numpy_iterator():
        right += int((np.asarray(logits(x)).argmax(axis=-1) == y.astype(np.int64)).sum())
        total += len(y)
    return right / total if total else float("nan")


def run(ctx: StepContext) -> dict[str, Any]:
    tf, _ = import_tf()
    p = ctx.params
    assert isinstance(p, DistillParams)
    fit = p.fit
    inputs = load_stage_inputs(ctx)
    data = inputs.data
    teacher = load_teacher(ctx, inputs.model, data.take("train", 256))
    if teacher.model is not None and tuple(teacher.model.input_shape[1:]) != tuple(p.input_shape):
        raise StepError(stage_path(ctx, "teacher"), f"the teacher takes inputs of shape "
                        f"{list(teacher.model.input_shape[1:])}, this spec's model {p.input_shape}")
    student = build_student(ctx)
    mode = label_mode(fit.loss.kind)
    if mode not in ("sparse", "one_hot"):
        raise StepError(("training", "loss"), "distillation needs a categorical loss")
    distiller = make_distiller(student, teacher.logits, temperature=p.temperature, alpha=p.alpha, labels=mode)
    optimizer, _ = build_optimizer(at_learning_rate(fit.optimizer, p.learning_rate))
    distiller.compile(optimizer=optimizer)
    ctx.log(f"{ctx.step.id}: distilling {teacher.description} into a {student.count_params()}-parameter student "
            f"(T={p.temperature}, alpha={p.alpha}, {p.epochs} epochs)")
    result = fit_model(distiller, data, fit=fit, epochs=p.epochs, quiet=ctx.quiet,
                       checkpoint_dir=getattr(ctx, "checkpoint_dir", None))
    compile_model(student, fit)
    save_model(student, ctx.out)
    ctx.write_json("history.json", result.history)
    metrics = model_metrics(student, data, fit)
    teacher_accuracy = _accuracy(lambda x: teacher.logits(tf.constant(x)), data, "test")
    size = {"after": weights_zipped_size(student)}
    if teacher.model is not None:
        size["before"] = weights_zipped_size(teacher.model)
        size["zipped_ratio"] = round(size["before"]["h5_zipped_bytes"] / size["after"]["h5_zipped_bytes"], 4)
    return {
        "stage": "distill",
        "index": p.index,
        **metrics,
        "accuracy_before": teacher_accuracy,
        "accuracy_after": metrics["accuracy"],
        "teacher": {"description": teacher.description, "accuracy": teacher_accuracy,
                    "params": int(teacher.model.count_params()) if teacher.model is not None else None},
        "params_before": int(teacher.model.count_params()) if teacher.model is not None else None,
        "temperature": p.temperature,
        "alpha": p.alpha,
        "distillation_loss": result.history.get("distillation_loss", []),
        "size": size,
    }
