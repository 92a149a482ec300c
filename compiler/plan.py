"""Stage 5: plan — the DAG of runtime steps, each with a content fingerprint.

A step's fingerprint is the sha256 of its kind, its canonical parameters, the fingerprints of the
steps it depends on and the pinned tool versions: changing a tflite target's quantization changes only
that target's steps; changing training changes training and everything downstream.

External inputs count by content: the ``inputs`` stage digests the data files, a SavedModel or builder
module and distillation teachers, and those digests are parameters of the steps that read them
(``data``, ``train``, ``distill``), so editing a file re-runs exactly those steps and what follows them.
This module does no I/O.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import TYPE_CHECKING, Any

from tfspec.spec.data import TfrecordSource
from tfspec.spec.targets import Int8Quantization, Int16x8Quantization, TfliteTarget, TfServingTarget

from .resolve import ResolvedSpec, num_classes_key
from .versions import PLAN_SCHEMA_VERSION, RUNTIME_VERSIONS, TFSPEC_VERSION

if TYPE_CHECKING:  # inputs.py imports this module
    from .inputs import InputDigests

__all__ = ["Step", "Plan", "STEP_KINDS", "MODEL_STEP_KINDS", "REGRESSION_LOSSES", "build_plan", "canonical_json",
           "fingerprint", "model_step_id", "quality_metric"]

STEP_KINDS: tuple[str, ...] = (
    "data", "train", "prune", "cluster", "qat", "distill", "evaluate", "export", "warmup", "tflite", "verify", "bundle",
    "render",
)

REGRESSION_LOSSES = frozenset({"mean_squared_error", "mean_absolute_error", "huber"})

# Steps whose output is a Keras model (``model.keras`` / ``model.h5``): training and every compression stage.
MODEL_STEP_KINDS: tuple[str, ...] = ("train", "prune", "cluster", "qat", "distill")

_STAGE_STEP_KIND = {"prune": "prune", "cluster": "cluster", "quantization_aware": "qat", "distill": "distill"}


def canonical_json(value: Any) -> str:
    """Compact JSON with sorted keys: the byte form every fingerprint hashes."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def fingerprint(kind: str, params: dict[str, Any], input_fingerprints: list[str]) -> str:
    payload = canonical_json({
        "kind": kind,
        "params": params,
        "inputs": input_fingerprints,
        "versions": {"tfspec": TFSPEC_VERSION, **RUNTIME_VERSIONS},
    })
    return hashlib.sha256(payload.encode("ascii")).hexdigest()


@dataclasses.dataclass(frozen=True)
class Step:
    """One unit of runtime work.

    Attributes:
        id: unique, stable name (``train``, ``compress.0.prune``, ``android.tflite``).
        kind: one of ``STEP_KINDS``; the runtime has one module per kind.
        params: everything the runtime needs for this step (it never reads the spec).
        inputs: ids of the steps whose outputs this step consumes.
        outputs: files or folders the step produces, relative to its cache entry.
        fingerprint: content hash (see module docstring).
        target: the target this step belongs to, if any.
    """

    id: str
    kind: str
    params: dict[str, Any]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    fingerprint: str
    target: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "params": self.params,
            "fingerprint": self.fingerprint,
        }


@dataclasses.dataclass(frozen=True)
class Plan:
    """The DAG of steps for one spec (steps in a topological order)."""

    name: str
    version: int
    spec_sha256: str
    environment: str | None
    steps: tuple[Step, ...]

    def step(self, step_id: str) -> Step:
        for step in self.steps:
            if step.id == step_id:
                return step
        raise KeyError(step_id)

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": PLAN_SCHEMA_VERSION,
            "tfspec_version": TFSPEC_VERSION,
            "runtime_versions": dict(RUNTIME_VERSIONS),
            "spec": {"name": self.name, "version": self.version, "sha256": self.spec_sha256,
                     "environment": self.environment},
            "steps": [s.to_json() for s in self.steps],
        }

    def to_text(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"


class _PlanBuilder:
    def __init__(self) -> None:
        self.steps: list[Step] = []
        self._by_id: dict[str, Step] = {}

    def add(self, step_id: str, kind: str, params: dict[str, Any], inputs: list[str], outputs: list[str],
            target: str | None = None) -> str:
        params = json.loads(canonical_json(params))  # plain JSON types only, so plan.json round-trips
        fp = fingerprint(kind, params, [self._by_id[i].fingerprint for i in inputs])
        step = Step(step_id, kind, params, tuple(inputs), tuple(outputs), fp, target)
        self.steps.append(step)
        self._by_id[step_id] = step
        return step_id


def _dump(model: Any) -> Any:
    return model.model_dump(mode="json") if model is not None else None


def quality_metric(loss_kind: str) -> str:
    """The metric every stage and artifact is measured and gated with: ``mae`` (mean absolute error,
    lower is better) for a regression loss, ``accuracy`` otherwise."""
    return "mae" if loss_kind in REGRESSION_LOSSES else "accuracy"


def model_step_id(plan: Plan) -> str:
    """Id of the step producing the final Keras model (the last compression stage, or ``train``)."""
    return [s.id for s in plan.steps if s.kind in MODEL_STEP_KINDS][-1]


def _teacher_identity(digests: InputDigests | None, index: int, stage: Any) -> dict[str, Any] | None:
    """What identifies an external teacher's model (see ``teachers.py``); None for ``self``."""
    teacher = stage.teacher
    if teacher is None or teacher.kind == "self" or digests is None:
        return None
    if teacher.kind == "saved_model":
        sha = digests.content.get(f"compression[{index}].teacher.path")
        return {"sha256": sha} if sha else None
    model = digests.teachers.get(index)
    return {"model_step": model.model_step, "fingerprint": model.fingerprint} if model else None


def build_plan(resolved: ResolvedSpec, rendered_files: dict[str, dict[str, str]] | None = None,
               digests: InputDigests | None = None) -> Plan:
    """Turn a validated spec and its gathered inputs into the step DAG.

    ``rendered_files`` maps target name → {path: sha256} of the files render wrote for it, so a render
    step's fingerprint changes exactly when its files do. Render steps are carried out by ``tfspec build``;
    ``tfspec run`` lays the rendered files under the bundled binaries when it assembles the dist folder,
    so no runtime step depends on them (a changed header never re-runs a bundle).

    ``digests`` are the content digests of the files the steps read (``inputs.gather_inputs``); without
    them (a plan of a spec whose inputs were not gathered) no step carries input digests.
    """
    spec = resolved.spec
    b = _PlanBuilder()
    training = spec.training
    data_params: dict[str, Any] = {
        "source": _dump(spec.data.source),
        "split": _dump(spec.data.split),
        "preprocessing": _dump(spec.data.preprocessing),
        "augmentation": _dump(spec.data.augmentation),
        "labels": list(resolved.labels),
        "num_classes": resolved.num_classes,
        "num_classes_key": list(num_classes_key(spec)),
        "input_shape": list(resolved.input_shape),
        "input_dtype": resolved.input_dtype,
        "loss": training.loss_spec.kind,
    }
    if isinstance(spec.data.source, TfrecordSource):
        # canonical JSON sorts mapping keys; the input is the features' concatenation in spec order
        data_params["feature_order"] = list(spec.data.source.features)
    data_inputs = digests.under("data.") if digests is not None else {}
    if data_inputs:  # only with external data, so plans of built-in sources keep their fingerprints
        data_params["input_digests"] = data_inputs
    data = b.add("data", "data", data_params, [], ["dataset.npz", "data_info.json"])
    fit = {
        "optimizer": _dump(training.optimizer),
        "loss": _dump(training.loss_spec),
        "metrics": list(training.metrics),
        "batch_size": training.batch_size,
        "seed": training.seed,
        "shuffle_buffer": training.shuffle_buffer,
        "distribution": _dump(training.distribution),
    }
    model_outputs = ["model.keras", "history.json", "metrics.json"]
    train_params: dict[str, Any] = {
        "model": _dump(spec.model),
        "training": _dump(training),
        "fit": fit,
        "input_name": resolved.input_name,
        "output_name": resolved.output_name,
        "num_classes": resolved.num_classes,
    }
    model_inputs = digests.under("model.") if digests is not None else {}
    if model_inputs:  # a SavedModel folder or a builder's modules
        train_params["input_digests"] = model_inputs
    as_is = bool(getattr(spec.model, "serve_as_is", False))
    # A SavedModel served as it is: its signature's keys are read from it at run time, not named here.
    signature = spec.model.signature if as_is else "serving_default"
    input_name, output_name = (None, None) if as_is else (resolved.input_name, resolved.output_name)
    train_outputs = ["saved_model", "signature.json", *model_outputs[1:]] if as_is else model_outputs
    last = b.add("train", "train", train_params, [data], train_outputs)
    train_step = last
    model_steps = [train_step]
    for index, stage in enumerate(spec.compression):
        kind = _STAGE_STEP_KIND[stage.kind]
        inputs = [last, data]
        if kind == "distill" and stage.teacher is not None and stage.teacher.kind == "self":
            inputs = [train_step, data] if last == train_step else [last, data]
        stage_params: dict[str, Any] = {}
        if kind == "distill":
            # An external teacher is not a step of this plan: its identity keeps the fingerprint honest.
            stage_params["teacher_identity"] = _teacher_identity(digests, index, stage)
        last = b.add(f"compress.{index}.{stage.kind}", kind, {
            **stage_params,
            "index": index,
            "stage": _dump(stage),
            "fit": fit,
            "input_name": resolved.input_name,
            "output_name": resolved.output_name,
            "input_shape": list(resolved.input_shape),
            "input_dtype": resolved.input_dtype,
            "num_classes": resolved.num_classes,
        }, inputs, ["model.h5", *model_outputs[1:]] if kind == "qat" else model_outputs)
        model_steps.append(last)
    final_model = last
    metric = quality_metric(training.loss_spec.kind)
    # Every model step measured once per run (the trained model is the reference of every drop; the
    # final one's latency is the Keras baseline of every target).
    evaluate = b.add("evaluate", "evaluate", {"metric": metric, "num_classes": resolved.num_classes},
                     [*model_steps, data], ["evaluation.json"])
    quantization_aware = any(s.kind == "quantization_aware" for s in spec.compression)
    export_params: dict[str, Any] = {
        "name": spec.name,
        "version": spec.version,
        "input_name": input_name,
        "output_name": output_name,
        "input_shape": list(resolved.input_shape),
        "input_dtype": resolved.input_dtype,
        "signature": signature,
    }
    if as_is:
        export_params["as_is"] = True
    export = b.add("export", "export", export_params, [final_model, data], ["saved_model"])
    rendered_files = rendered_files or {}
    for target in spec.targets:
        t = target.name
        render_params = {"files": dict(sorted(rendered_files.get(t, {}).items()))}
        b.add(f"{t}.render", "render", render_params, [], sorted(render_params["files"]), t)
        if isinstance(target, TfliteTarget):
            q = target.quantization
            conversion = {
                "quantization": q.kind,
                "optimizations": [] if q.kind == "none" and not quantization_aware else ["DEFAULT"],
                "representative_samples": q.representative_samples if isinstance(q, (Int8Quantization, Int16x8Quantization)) else 0,
                "supported_ops": list(target.supported_ops or []),
                "supported_types": ["float16"] if q.kind == "float16" else [],
                "inference_input_type": getattr(q, "input_type", "float32"),
                "inference_output_type": getattr(q, "output_type", "float32"),
                "quantization_aware": quantization_aware,
                "filename": target.filename,
            }
            if as_is:
                conversion["signature"] = signature
            if q.kind == "int16x8":
                conversion["supported_ops"] = ["experimental_tflite_builtins_activations_int16_weights_int8"]
            convert = b.add(f"{t}.tflite", "tflite", conversion, [final_model, data], [target.filename], t)
            verify = b.add(f"{t}.verify", "verify", {
                "artifact": "tflite",
                "filename": target.filename,
                "gates": _dump(target.gates),
                "metric": metric,
            }, [convert, evaluate, data], ["verify.json"], t)
            bundle_params: dict[str, Any] = {"filename": target.filename, "android": _dump(target.android),
                                             "labels": list(resolved.labels), "name": spec.name, "version": spec.version,
                                             "input_name": resolved.input_name, "output_name": resolved.output_name}
            if target.android:
                pack = target.android.asset_pack.name
                bundle_params["assets_dir"] = f"{t}/{pack}/src/main/assets"
            else:
                bundle_params["assets_dir"] = t
            b.add(f"{t}.bundle", "bundle", bundle_params, [convert, verify, data], [bundle_params["assets_dir"]], t)
        elif isinstance(target, TfServingTarget):
            inputs = [export]
            if target.warmup is not None:
                inputs.append(b.add(f"{t}.warmup", "warmup", {
                    "requests": target.warmup.requests,
                    "model_name": spec.name,
                    "signature": signature,
                    "input_name": input_name,
                }, [export, data], ["tf_serving_warmup_requests"], t))
            verify = b.add(f"{t}.verify", "verify", {
                "artifact": "saved_model",
                "gates": _dump(target.gates),
                "metric": metric,
                "input_name": input_name,
                "output_name": output_name,
                **({"signature": signature} if as_is else {}),
            }, [export, evaluate, data], ["verify.json"], t)
            model_dir = f"{t}/models/{spec.name}/{spec.version}"
            b.add(f"{t}.bundle", "bundle", {"model_dir": model_dir, "name": spec.name, "version": spec.version},
                  inputs + [verify], [model_dir], t)
    return Plan(spec.name, spec.version, resolved.spec_sha256, resolved.environment, tuple(b.steps))
