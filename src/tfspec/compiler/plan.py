"""Stage 5: plan — the DAG of runtime steps, each with typed, fully resolved params and a fingerprint.

The plan is the runtime's whole input (``tfspec.plan``): every default a step needs is decided here. A
step's fingerprint is the sha256 of its kind, its params, the fingerprints of the steps it depends on and
the pinned tool versions: changing a tflite target's quantization changes only that target's steps;
changing training changes training and everything downstream.

External inputs count by content: the ``inputs`` stage digests the data files, a SavedModel or builder
module and distillation teachers, and those digests are parameters of the steps that read them
(``data``, ``train``, ``distill``), so editing a file re-runs exactly those steps and what follows them.
This module does no I/O.
"""

from __future__ import annotations

from typing import Any

from tfspec.plan import (MODEL_STEP_KINDS, STEP_KINDS, DataParams, EvaluateParams, ExportParams, InputParams, Params,
                         Plan, PreprocessingParams, RenderParams, SpecInfo, SplitParams, Step, TargetInfo, TrainParams,
                         canonical_json, fingerprint)
from tfspec.spec.data import CsvSource, NpzSource, TfrecordSource

from .inputs import InputDigests
from .losses import REGRESSION_LOSSES
from .naming import dist_name
from .plan_sections import (early_stopping_params, fit_params, missing_values_params, model_params, source_params,
                            storage_params)
from .quantities import quantity_value
from .released import ReleasedInputs, plan_released
from .resolve import ResolvedSpec, num_classes_key
from .targets import PlanContext, target_kind
from .techniques import MODEL_OUTPUTS, StagePlan, technique
from tfspec.base.versions import RUNTIME_VERSIONS, TFSPEC_VERSION

__all__ = ["Step", "Plan", "STEP_KINDS", "MODEL_STEP_KINDS", "REGRESSION_LOSSES", "build_plan", "canonical_json",
           "fingerprint", "model_step_id", "quality_metric", "served_as_is", "served_signature", "with_rendered_files"]



def served_as_is(resolved: ResolvedSpec) -> bool:
    """A SavedModel deployed unchanged (``model.serve_as_is``): no Keras model, keys read from its signature."""
    return bool(getattr(resolved.spec.model, "serve_as_is", False))


def served_signature(resolved: ResolvedSpec) -> str:
    """The signature export, warmup, verify and tflite use: the spec's for a SavedModel served as it is."""
    return resolved.spec.model.signature if served_as_is(resolved) else "serving_default"


def quality_metric(loss_kind: str) -> str:
    """The metric every stage and artifact is measured and gated with: ``mae`` (mean absolute error,
    lower is better) for a regression loss, ``accuracy`` otherwise."""
    return "mae" if loss_kind in REGRESSION_LOSSES else "accuracy"


def model_step_id(plan: Plan) -> str:
    """Id of the step producing the final Keras model (the last compression stage, or ``train``)."""
    return plan.model_step_id()


def _step_fingerprint(kind: str, params: Params, input_fingerprints: list[str]) -> str:
    return fingerprint(kind, params.model_dump(mode="json"), input_fingerprints,
                       {"tfspec": TFSPEC_VERSION, **RUNTIME_VERSIONS})


class _PlanBuilder:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self._by_id: dict[str, Step] = {}

    def add(self, step_id: str, kind: str, params: Params, inputs: list[str], outputs: list[str],
            target: str | None = None) -> str:
        fp = _step_fingerprint(kind, params, [self._by_id[i].fingerprint for i in inputs])
        step = Step(id=step_id, kind=kind, target=target, inputs=tuple(inputs), outputs=tuple(outputs), params=params,
                    fingerprint=fp)
        self.steps.append(step)
        self._by_id[step_id] = step
        return step_id


def initial_learning_rate(optimizer: Any) -> float:
    """The training optimizer's initial learning rate (a schedule's ``initial`` or first value)."""
    rate = optimizer.learning_rate
    if isinstance(rate, (int, float)):
        return float(rate)
    if hasattr(rate, "initial"):
        return float(rate.initial)
    return float(rate.values[0])  # piecewise_constant


def _stage_common(resolved: ResolvedSpec, index: int, stage: Any, fit: Any) -> dict[str, Any]:
    """The fields every stage's params share (:class:`tfspec.plan.StageParams`)."""
    learning_rate = stage.learning_rate if stage.learning_rate is not None else initial_learning_rate(
        resolved.spec.training.optimizer)
    return {"index": index, "stage": stage.kind, "fit": fit, "learning_rate": learning_rate,
            "input_name": resolved.input_name, "output_name": resolved.output_name,
            "input_shape": list(resolved.input_shape), "input_dtype": resolved.input_dtype,
            "num_classes": resolved.num_classes}


def _feature_order(resolved: ResolvedSpec) -> list[str] | None:
    """The order a source's named features are concatenated in: a tfrecord source's features as the spec
    lists them, or the model's inputs when the source names its features per input."""
    source = resolved.spec.data.source
    per_input = resolved.multi_input or (isinstance(source, NpzSource) and isinstance(source.features, dict)) or (
        isinstance(source, CsvSource) and isinstance(source.feature_columns, dict))
    if per_input:
        return [i.name for i in resolved.inputs]
    return list(source.features) if isinstance(source, TfrecordSource) else None


def _inputs(resolved: ResolvedSpec) -> list[InputParams] | None:
    """The named inputs of a model with several; None for one input (its ``input_*`` params say it all)."""
    if not resolved.multi_input:
        return None
    return [InputParams(name=i.name, shape=list(i.shape), dtype=i.dtype) for i in resolved.inputs]


def build_plan(resolved: ResolvedSpec, rendered_files: dict[str, dict[str, str]] | None = None,
               digests: InputDigests | None = None, *, root: str | None = None, spec_file: str | None = None) -> Plan:
    """Turn a validated spec and its gathered inputs into the step DAG.

    ``rendered_files`` maps target name → {path: sha256} of the files render wrote for it, so a render
    step's fingerprint changes exactly when its files do. Render steps are carried out by ``tfspec build``;
    ``tfspec run`` lays the rendered files under the bundled binaries when it assembles the dist folder,
    so no runtime step depends on them (a changed header never re-runs a bundle). ``root`` is the spec's
    folder relative to the folder ``plan.json`` is written to, ``spec_file`` the spec's path relative to it.

    ``digests`` are the content digests of the files the steps read (``inputs.gather_inputs``); without
    them (a plan of a spec whose inputs were not gathered) no step carries input digests.
    """
    spec = resolved.spec
    b = _PlanBuilder()
    training = spec.training
    preprocessing = spec.data.preprocessing
    data = b.add("data", "data", DataParams(
        source=source_params(spec.data.source),
        split=SplitParams(**spec.data.split.model_dump()),
        preprocessing=PreprocessingParams(rescale=preprocessing.rescale, normalize=preprocessing.normalize,
                                          reshape=list(preprocessing.reshape) if preprocessing.reshape else None),
        labels=list(resolved.labels),
        num_classes=resolved.num_classes,
        num_classes_key=list(num_classes_key(spec)),
        input_shape=list(resolved.data_shape),
        input_dtype=resolved.input_dtype,
        loss=training.loss_spec.kind,
        # canonical JSON sorts mapping keys; the input is the features' concatenation in spec order (with
        # several model inputs: in model input order, one feature per input)
        feature_order=_feature_order(resolved),
        input_digests=(digests.under("data.") or None) if digests is not None else None,
        memory_budget=int(quantity_value(spec.data.memory_budget)),
        storage=storage_params(spec.data.storage),  # endpoint and credential variable names, never values
        cache_format=3,
        inputs=_inputs(resolved),
        missing_values=missing_values_params(spec.data.missing_values),
        label_values=list(resolved.label_values) if resolved.label_values is not None else None,
    ), [], ["manifest.json", "data_info.json"])
    # Each released model is fetched and checked before anything trains (its step needs no other).
    found = digests.released if digests is not None else ReleasedInputs()
    released = {t.name: plan_released(b.add, resolved, t, found) for t in spec.targets
                if getattr(t, "released", None) is not None}
    fit = fit_params(training, spec.data.augmentation)
    metric = quality_metric(training.loss_spec.kind)
    as_is = served_as_is(resolved)
    # A SavedModel served as it is: its signature's keys are read from it at run time, not named here.
    train_outputs = ["saved_model", "signature.json", *MODEL_OUTPUTS[1:]] if as_is else list(MODEL_OUTPUTS)
    last = b.add("train", "train", TrainParams(
        model=model_params(spec.model),
        fit=fit,
        epochs=training.epochs,
        early_stopping=early_stopping_params(training.early_stopping),
        checkpoint_every_epoch=training.checkpoint_every_epoch,
        trainable=getattr(spec.model, "trainable", True) and not as_is,
        input_name=resolved.input_name,
        output_name=resolved.output_name,
        num_classes=resolved.num_classes,
        metric=metric,
        input_digests=(digests.under("model.") or None) if digests is not None else None,  # SavedModel, builder
    ), [data], train_outputs)
    train_step = last
    model_steps = [train_step]
    quantization_aware = False
    for index, stage in enumerate(spec.compression):
        entry = technique(stage.kind)
        params = entry.params(resolved, index, stage, _stage_common(resolved, index, stage, fit), digests)
        inputs = entry.inputs(StagePlan(previous_model=last, train=train_step, data=data))
        last = b.add(f"compress.{index}.{stage.kind}", entry.step_kind, params, inputs, list(entry.outputs))
        model_steps.append(last)
        quantization_aware = quantization_aware or entry.quantization_aware
    final_model = last
    # Every model step measured once per run (the trained model is the reference of every drop; the
    # final one's latency is the Keras baseline of every target).
    evaluate = b.add("evaluate", "evaluate", EvaluateParams(metric=metric, num_classes=resolved.num_classes,
                                                                naive_baseline=training.naive_baseline),
                     [*model_steps, data], ["evaluation.json"])
    # A SavedModel only when a target's steps read it (tf_serving, kserve): a tflite-only spec converts
    # from the Keras model and would spend seconds exporting what nothing ships.
    needs_export = any(target_kind(t.kind).reads_saved_model for t in spec.targets)
    export = None if not needs_export else b.add("export", "export", ExportParams(
        name=spec.name,
        version=spec.version,
        input_name=None if as_is else resolved.input_name,
        output_name=None if as_is else resolved.output_name,
        input_shape=list(resolved.input_shape),
        input_dtype=resolved.input_dtype,
        signature=served_signature(resolved),
        as_is=as_is,
        inputs=_inputs(resolved),
        raw_input_shape=list(resolved.raw_input_shape) if resolved.raw_input_shape is not None else None,
    ), [final_model, data], ["saved_model"])
    context = PlanContext(add=b.add, data=data, final_model=final_model, evaluate=evaluate, export=export,
                          quantization_aware=quantization_aware, metric=metric,
                          released=released, gate_steps=[evaluate])
    rendered_files = rendered_files or {}
    for target in spec.targets:
        files = _render_files(rendered_files, target.name)
        b.add(f"{target.name}.render", "render", RenderParams(files=files), [], sorted(files), target.name)
        plan_steps = target_kind(target.kind).plan_steps
        if plan_steps is not None:
            plan_steps(context, resolved, target)
    # Releasing (the model store's upload) waits for every gate of the run: a run that fails changes nothing.
    for target in spec.targets:
        release_steps = target_kind(target.kind).release_steps
        if release_steps is not None:
            release_steps(context, resolved, target)
    info = SpecInfo(name=spec.name, version=spec.version, sha256=resolved.spec_sha256,
                    environment=resolved.environment, file=spec_file,
                    dist_name=dist_name(spec.name, resolved.environment))
    return Plan(tfspec_version=TFSPEC_VERSION, runtime_versions={"tfspec": TFSPEC_VERSION, **RUNTIME_VERSIONS},
                spec=info, root=root, targets=tuple(TargetInfo(name=t.name, kind=t.kind) for t in spec.targets),
                steps=tuple(b.steps))


def _render_files(rendered_files: dict[str, dict[str, str]], target: str) -> dict[str, str]:
    return dict(sorted(rendered_files.get(target, {}).items()))


def with_rendered_files(plan: Plan, rendered_files: dict[str, dict[str, str]]) -> Plan:
    """``plan`` (built without ``rendered_files``) as :func:`build_plan` builds it with them: render steps
    have no inputs and no step reads them, so only their params, outputs and fingerprints change. The
    compiler builds the plan once, renders the targets with its served fingerprints, then fills these in."""
    render_ids = {step.id for step in plan.steps if step.kind == "render"}
    if any(render_ids.intersection(step.inputs) for step in plan.steps):
        raise AssertionError("a step reads a render step: its plan must be built with the rendered files")
    steps = []
    for step in plan.steps:
        if step.kind == "render":
            files = _render_files(rendered_files, step.target or "")
            params = RenderParams(files=files)
            step = step.model_copy(update={"params": params, "outputs": tuple(sorted(files)),
                                           "fingerprint": _step_fingerprint("render", params, [])})
        steps.append(step)
    return plan.model_copy(update={"steps": tuple(steps)})
