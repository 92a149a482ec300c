"""tflite target: the Android asset-pack module, app-side Gradle snippets and a Kotlin loader.

The conversion itself (optimizations, representative data, op sets, I/O types) is a plan step the
runtime performs; ``tfspec run`` then puts ``<filename>``, ``labels.txt`` and ``model_info.json`` into the
pack's ``src/main/assets/`` (or into ``<target>/`` when the target has no ``android`` section).

Files (under ``<target>/``):

* ``<pack>/build.gradle``: a Play Asset Delivery asset-pack module (``com.android.asset-pack``).
* ``<pack>/src/main/assets/labels.txt``: class names, one per line, when the spec fixes them (``data.labels``,
  ``data.num_classes``, the output layer): ``run`` bundles the same file from the data step. When only the
  data knows them (an ``image_folder``'s folder names, a builder model without ``num_classes``) the runtime
  is its one writer, so a built and a run tree never disagree about it.
* ``app-snippets/build.gradle`` and ``build.gradle.kts``: what the app module adds (``assetPacks``,
  uncompressed ``.tflite``, the LiteRT dependency and the delegate artifacts of the target's
  ``accelerators``); ``settings.gradle(.kts)``: ``include`` of the pack.
* ``app-snippets/src/main/java/<package>/<Name>Classifier.kt``: loads the model on the first of the
  target's accelerators the device supports (CPU fallback) and runs one example.
"""

from __future__ import annotations

from typing import Any, Literal

from tfspec.plan import TfliteBundleParams, TfliteParams, TfliteVerifyParams
from tfspec.spec.data import ImageFolderSource, SklearnDigitsSource
from tfspec.base.errors import Diagnostic
from tfspec.base.versions import ACCELERATOR_LIBRARIES, ANDROID_LIBRARIES
from tfspec.spec.document import Spec
from tfspec.spec.targets import Int8Quantization, Int16x8Quantization, TfliteTarget

from ..losses import REGRESSION_LOSSES
from ..render import render_template
from ..resolve import ResolvedSpec
from ..plan_sections import android_params, tflite_gates_params
from ..released import plan_comparison
from ..sources import SKLEARN_DIGITS
from ..techniques import technique
from .registry import MEASURED_METRICS, PlanContext, TargetKind, register
from .common import base_context

__all__ = ["render_tflite", "plan_tflite", "DELIVERY_TYPES", "io_types", "kotlin_class_name", "kotlin_package",
           "labels_known", "labels_text", "output_kind", "output_labels", "uses_xnnpack", "npu_full_integer", "gpu_delegable_needs_gpu",
           "sparse_weights_need_prune", "npu_needs_an_integer_model"]

# Spec spelling → Gradle's deliveryType values.
DELIVERY_TYPES = {"install_time": "install-time", "fast_follow": "fast-follow", "on_demand": "on-demand"}

# Quantized element types: the range a quantized value is clamped to.
_QUANT_RANGE = {"int8": (-128, 127), "uint8": (0, 255)}


def io_types(resolved: ResolvedSpec, target: TfliteTarget) -> tuple[str, str]:
    """Element types of the converted model's input and output tensors."""
    q = target.quantization
    if isinstance(q, Int8Quantization):
        # integer inputs (token ids) stay as they are: the converter quantizes float inputs only
        return (q.input_type if resolved.input_dtype == "float32" else resolved.input_dtype), q.output_type
    return resolved.input_dtype, "float32"


def kotlin_class_name(spec_name: str, classifier: bool) -> str:
    """``digits`` → ``DigitsClassifier``; ``hand-digits`` → ``HandDigitsModel`` when not a classifier."""
    stem = "".join(part[:1].upper() + part[1:] for part in spec_name.split("-") if part)
    if not stem[:1].isalpha():
        stem = "Model" + stem
    return stem + ("Classifier" if classifier else "Model")


OutputKind = Literal["softmax", "sigmoid", "regression"]


def output_kind(resolved: ResolvedSpec) -> OutputKind:
    """What the model's one output holds, from the loss: ``regression`` values (mse, mae, huber), one
    ``sigmoid`` probability of the second of two classes (binary_crossentropy), or ``softmax`` scores of
    every class (logits with ``from_logits``)."""
    loss = resolved.spec.training.loss_spec.kind
    if loss in REGRESSION_LOSSES:
        return "regression"
    return "sigmoid" if loss == "binary_crossentropy" else "softmax"


def output_labels(resolved: ResolvedSpec) -> tuple[str, ...]:
    """The class names of ``labels.txt``: none for regression, two for one sigmoid unit (the spec's, or
    ``0``/``1``), the classes otherwise."""
    kind = output_kind(resolved)
    if kind == "regression":
        return ()
    if kind == "sigmoid" and len(resolved.labels) != 2:
        return ("0", "1")
    return resolved.labels


def labels_known(resolved: ResolvedSpec) -> bool:
    """Whether the compiler knows the labels the data step will find (otherwise only ``run`` writes them);
    a regression model has none (no ``labels.txt``)."""
    if not output_labels(resolved):
        return False
    if resolved.spec.data.labels:
        return True
    return not isinstance(resolved.spec.data.source, ImageFolderSource)


def labels_text(resolved: ResolvedSpec) -> str:
    """``labels.txt``: one class name per line, in label order (no header: every line is a label)."""
    return "".join(f"{label}\n" for label in output_labels(resolved))


# Kotlin's hard keywords: a package segment spelled like one must be back-quoted.
_KOTLIN_KEYWORDS = frozenset("as break class continue do else false for fun if in interface is null object package "
                             "return super this throw true try typealias typeof val var when while".split())


def kotlin_package(package: str) -> str:
    """The ``package`` line's name: segments that are Kotlin keywords back-quoted (``com.example.`in```)."""
    return ".".join(f"`{part}`" if part in _KOTLIN_KEYWORDS else part for part in package.split("."))


def uses_xnnpack(target: TfliteTarget) -> bool:
    """Whether the model runs on XNNPACK (LiteRT's default CPU kernels), at run and in the loader.

    XNNPACK cannot prepare the DENSIFY ops of a sparse int8 model (LiteRT 2.3 fails the interpreter,
    checked here): such a model runs on LiteRT's builtin kernels."""
    return not (target.sparse_weights and target.quantization.kind == "int8")


def npu_full_integer(target: TfliteTarget) -> bool:
    """Whether verify checks the model for an NPU (integer I/O, int8 builtin ops): int8 targets listing ``npu``."""
    return target.quantization.kind == "int8" and "npu" in (target.accelerators or [])


def _kotlin_float(value: float) -> str:
    text = repr(float(value))
    return text + "f"


_RECURRENT_LAYER_TYPES = frozenset({"lstm", "gru"})


def may_keep_state(resolved: ResolvedSpec) -> bool:
    """Whether the converted model may hold LSTM/GRU state between runs: spec layers say so; a builder's
    or SavedModel's layers are unknown here, so their loader resets the state too (a cheap call)."""
    model = resolved.spec.model
    layers = getattr(model, "layers", None)
    if layers is None:
        return True
    students = [s.student for s in resolved.spec.compression if getattr(s, "student", None)]
    return any(layer.type in _RECURRENT_LAYER_TYPES for layer in [*layers, *(l for st in students for l in st)])


_OUTPUT_DESCRIPTIONS: dict[str, str] = {
    "softmax": "one score per class, in labels.txt order",
    "sigmoid": "one value, the probability of the second of the two classes in labels.txt",
    "regression": "the predicted value(s); no labels",
}


def _input_size(shape: tuple[int, ...]) -> int:
    size = 1
    for dim in shape:
        size *= dim
    return size


def render_tflite(resolved: ResolvedSpec, target: TfliteTarget, served: str | None = None) -> dict[str, str]:
    t = target.name
    context = base_context(resolved, target)
    files: dict[str, str] = {}
    android = target.android
    if android is None:
        if labels_known(resolved):
            files[f"{t}/labels.txt"] = labels_text(resolved)
        return files

    pack = android.asset_pack.name
    delivery = DELIVERY_TYPES[android.asset_pack.delivery]
    install_time = android.asset_pack.delivery == "install_time"
    files[f"{t}/{pack}/build.gradle"] = render_template("tflite/asset_pack.build.gradle.j2", **context, pack=pack,
                                                        delivery=delivery)
    if labels_known(resolved):
        files[f"{t}/{pack}/src/main/assets/labels.txt"] = labels_text(resolved)

    input_type, output_type = io_types(resolved, target)
    preprocessing = resolved.spec.data.preprocessing
    kind = output_kind(resolved)
    class_name = kotlin_class_name(resolved.spec.name, kind != "regression")
    served = resolved.served
    app_context: dict[str, Any] = {
        **context,
        "pack": pack,
        "delivery": delivery,
        "install_time": install_time,
        "litert": ANDROID_LIBRARIES["litert"],
        "asset_delivery": ANDROID_LIBRARIES["asset_delivery"],
        "package": android.package,
        "kotlin_package": kotlin_package(android.package),
        "class_name": class_name,
        "model_file": target.filename,
        "input_size": _input_size(resolved.input_shape),
        "input_shape": list(resolved.input_shape),
        "input_type": input_type,
        "output_type": output_type,
        "input_range": _QUANT_RANGE.get(input_type),
        # preprocessing baked into the model (in_model): the loader sends raw values as they are
        "rescale": (_kotlin_float(preprocessing.rescale) if preprocessing.rescale is not None
                    and not preprocessing.in_model else None),
        "normalize": preprocessing.normalize and not preprocessing.in_model,
        "raw_inputs": preprocessing.in_model,
        "quantization": target.quantization.kind,
        "min_sdk": android.min_sdk,
        "accelerators": list(target.accelerators or ["cpu"]),
        "cpu_threads": target.cpu_threads,
        "xnnpack": uses_xnnpack(target),
        "accelerator_libraries": [ANDROID_LIBRARIES[key] for accelerator in target.accelerators or []
                                  for key in ACCELERATOR_LIBRARIES[accelerator]],
        "reset_state": may_keep_state(resolved),
        "output_kind": kind,
        "output_name": resolved.output_name,
        "output_description": _OUTPUT_DESCRIPTIONS[kind],
        "from_logits": resolved.spec.training.loss_spec.from_logits,
        # a SavedModel served as it is with several outputs: run through its signature, read the chosen one
        "signature_io": {"signature": served.name, "input": served.input.key, "output": served.output.key}
        if served is not None and len(served.outputs) > 1 else None,
    }
    snippets = f"{t}/app-snippets"
    for name in ("build.gradle", "build.gradle.kts", "settings.gradle", "settings.gradle.kts"):
        files[f"{snippets}/{name}"] = render_template(f"tflite/app/{name}.j2", **app_context)
    source_dir = "/".join(["src", "main", "java", *android.package.split(".")])
    files[f"{snippets}/{source_dir}/{class_name}.kt"] = render_template("tflite/app/Classifier.kt.j2", **app_context)
    return files


def plan_tflite(context: PlanContext, resolved: ResolvedSpec, target: TfliteTarget) -> None:
    """convert → verify (on LiteRT, gated) → bundle (the asset pack's files)."""
    spec, t, q = resolved.spec, target.name, target.quantization
    assert target.filename is not None  # filled by resolve
    supported_ops = list(target.supported_ops or [])
    if q.kind == "int16x8":
        supported_ops = ["experimental_tflite_builtins_activations_int16_weights_int8"]
    xnnpack = uses_xnnpack(target)
    optimizations: list[Any] = [] if q.kind == "none" and not context.quantization_aware else ["DEFAULT"]
    if target.sparse_weights:
        optimizations.append("EXPERIMENTAL_SPARSITY")
    convert = context.add(f"{t}.tflite", "tflite", TfliteParams(
        quantization=q.kind,
        optimizations=optimizations,
        representative_samples=q.representative_samples if isinstance(q, (Int8Quantization, Int16x8Quantization)) else 0,
        supported_ops=supported_ops,
        supported_types=["float16"] if q.kind == "float16" else [],
        inference_input_type=getattr(q, "input_type", "float32"),
        inference_output_type=getattr(q, "output_type", "float32"),
        quantization_aware=context.quantization_aware,
        per_channel_dense=False,
        filename=target.filename,
        xnnpack=xnnpack,
        # a SavedModel served as it is converts through from_saved_model and its chosen signature
        signature=spec.model.signature if getattr(spec.model, "serve_as_is", False) else None,
        raw_input_shape=list(resolved.raw_input_shape) if resolved.raw_input_shape is not None else None,
    ), [context.final_model, context.data], [target.filename], t)
    raw = resolved.raw_input_shape is not None
    verify = context.add(f"{t}.verify", "verify", TfliteVerifyParams(
        artifact="tflite", filename=target.filename, gates=tflite_gates_params(target.gates), metric=context.metric,
        accelerators=list(target.accelerators or []), npu_full_integer=npu_full_integer(target), xnnpack=xnnpack,
        raw_inputs=raw, output_key=_output_key(resolved),
    ), [convert, context.evaluate, context.data], ["verify.json"], t)
    compare = plan_comparison(context.add, context.released.get(t), target, convert, context.data, context.metric,
                              raw_inputs=raw, filename=target.filename, xnnpack=xnnpack,
                              output_key=_output_key(resolved), input_name=None, output_name=None, signature=None)
    context.gate_steps.extend(s for s in (verify, compare) if s is not None)
    assets_dir = f"{t}/{target.android.asset_pack.name}/src/main/assets" if target.android else t
    context.add(f"{t}.bundle", "bundle", TfliteBundleParams(
        artifact="tflite", filename=target.filename, android=android_params(target.android),
        labels=list(output_labels(resolved)), output_kind=output_kind(resolved), name=spec.name, version=spec.version,
        input_name=resolved.input_name, output_name=resolved.output_name, assets_dir=assets_dir, xnnpack=xnnpack,
        raw_inputs=resolved.raw_input_shape is not None, output_key=_output_key(resolved),
    ), [convert, verify, context.data], [assets_dir], t)


def _output_key(resolved: ResolvedSpec) -> str | None:
    """A SavedModel served as it is converts with its signature's output keys: the one verify and
    model_info read (the serving verify's too). None: the model's one output."""
    return resolved.output_name if resolved.served is not None else None


def gpu_delegable_needs_gpu(r: ResolvedSpec, index: int, target: TfliteTarget) -> list[Diagnostic]:
    """The gpu_delegable gate checks the GPU the loader tries: the GPU must be among the accelerators."""
    if not target.gates.gpu_delegable or "gpu" in (target.accelerators or []):
        return []
    return [r.diagnostic(("targets", index, "gates", "gpu_delegable"),
                         f"gpu_delegable checks a GPU the loader never tries (accelerators: "
                         f"{', '.join(target.accelerators or [])})", "add gpu to accelerators")]


def npu_needs_an_integer_model(r: ResolvedSpec, index: int, target: TfliteTarget) -> list[Diagnostic]:
    """A build warning: NNAPI hands an NPU/DSP only int8 ops, so a model quantized otherwise gets nothing there."""
    if "npu" not in (target.accelerators or []) or target.quantization.kind == "int8":
        return []
    position = target.accelerators.index("npu")
    return [r.diagnostic(("targets", index, "accelerators", position),
                         f"warning: a {target.quantization.kind} model has no int8-only op for an NPU, so NNAPI "
                         "would delegate nothing and the CPU runs it all",
                         "use quantization: {kind: int8}, or drop npu")]


def sparse_weights_need_prune(r: ResolvedSpec, index: int, target: TfliteTarget) -> list[Diagnostic]:
    """sparse_weights keeps a pruned model's zeros out of the file: without a prune stage there are none."""
    if not target.sparse_weights or any(stage.kind == "prune" for stage in r.spec.compression):
        return []
    return [r.diagnostic(("targets", index, "sparse_weights"),
                         "sparse_weights needs a prune compression stage: the weights have no zeros to drop",
                         "add {kind: prune, target_sparsity: 0.8} to compression")]


# Accelerators a tflite target's loader tries when the spec names none: the GPU delegate computes in
# float (float16 weights halve its upload), so float models try it first; the others run on the CPU.
DEFAULT_ACCELERATORS: dict[str, tuple[str, ...]] = {"none": ("gpu", "cpu"), "float16": ("gpu", "cpu")}


def tflite_defaults(spec: Spec, target: TfliteTarget) -> TfliteTarget:
    """The model file is ``<spec name>.tflite``; int8 with int8/uint8 I/O runs on the int8 builtins only;
    float models try the GPU first (``DEFAULT_ACCELERATORS``)."""
    update: dict[str, Any] = {}
    if target.filename is None:
        update["filename"] = f"{spec.name}.tflite"
    if target.supported_ops is None:
        kind = target.quantization.kind
        update["supported_ops"] = ["tflite_builtins_int8"] if kind == "int8" and getattr(
            target.quantization, "input_type", "int8") != "float32" else ["tflite_builtins"]
    if target.accelerators is None:
        update["accelerators"] = list(DEFAULT_ACCELERATORS.get(target.quantization.kind, ("cpu",)))
    return target.model_copy(update=update)


def android_loader_takes_one_input(r: ResolvedSpec, index: int, target: TfliteTarget) -> list[Diagnostic]:
    """The generated Kotlin loader feeds one input tensor."""
    if not r.multi_input or target.android is None:
        return []
    return [r.diagnostic(("targets", index, "android"), f"the Android loader feeds one input; the model has "
                         f"{len(r.inputs)} ({', '.join(i.name for i in r.inputs)})",
                         "remove the android block: the .tflite (with its signature runner keys) is still built and "
                         "verified")]


def asset_pack_names_unique(r: ResolvedSpec, index: int, target: TfliteTarget) -> list[Diagnostic]:
    """Two tflite targets cannot ship in one asset pack (reported at the later one)."""
    if target.android is None:
        return []
    pack = target.android.asset_pack.name
    earlier = next((i for i, other in enumerate(r.spec.targets[:index])
                    if isinstance(other, TfliteTarget) and other.android and other.android.asset_pack.name == pack), None)
    if earlier is None:
        return []
    return [r.diagnostic(("targets", index, "android", "asset_pack", "name"),
                         f"asset pack {pack!r} is also used by targets[{earlier}]")]


def select_tf_ops_cannot_verify(r: ResolvedSpec, index: int, target: TfliteTarget) -> list[Diagnostic]:
    if "select_tf_ops" not in (target.supported_ops or []):
        return []
    assert target.supported_ops is not None
    return [r.diagnostic(
        ("targets", index, "supported_ops", target.supported_ops.index("select_tf_ops")),
        "select_tf_ops models cannot be verified: the LiteRT interpreter tfspec runs them on (ai-edge-litert) "
        "has no Flex delegate, so every TensorFlow op in the model fails to load",
        "use only tflite_builtins / tflite_builtins_int8 ops (replace the layer that needs a TensorFlow op), "
        "or serve the model with a tf_serving target")]


def quantization_aware_converts_to_int8(r: ResolvedSpec, index: int, target: TfliteTarget) -> list[Diagnostic]:
    if target.quantization.kind == "int8" or not any(technique(s.kind).quantization_aware for s in r.spec.compression):
        return []
    return [r.diagnostic(("targets", index, "quantization", "kind"),
                         f"a quantization-aware model converts to int8, not {target.quantization.kind!r}",
                         "use quantization: {kind: int8}, or remove the quantization_aware stage")]


def representative_samples_available(r: ResolvedSpec, index: int, target: TfliteTarget) -> list[Diagnostic]:
    """int8 and int16x8 calibrate on training examples: no more than the digits set's training split has
    (other sources' sizes are known only from the data). Integer inputs (token ids) are calibrated on as
    they are."""
    q = target.quantization
    if not isinstance(q, (Int8Quantization, Int16x8Quantization)) or not isinstance(r.spec.data.source,
                                                                                     SklearnDigitsSource):
        return []
    split = r.spec.data.split
    available = int(SKLEARN_DIGITS.examples * (1 - split.validation - split.test))
    if q.representative_samples <= available:
        return []
    return [r.diagnostic(("targets", index, "quantization", "representative_samples"),
                         f"{q.representative_samples} representative samples requested, the training "
                         f"split has about {available}", f"use at most {available}")]


def integer_model_cannot_impute(r: ResolvedSpec, index: int, target: TfliteTarget) -> list[Diagnostic]:
    """``data.missing_values`` baked into the model (``in_model``) needs float inputs: NaN has no integer value."""
    if r.spec.data.missing_values is None or not r.spec.data.preprocessing.in_model \
            or not isinstance(target.quantization, (Int8Quantization, Int16x8Quantization)):
        return []
    return [r.diagnostic(("targets", index, "quantization", "kind"), "a full-integer model cannot impute missing "
                         "values itself: NaN has no integer value, and the imputation baked in by "
                         "data.preprocessing.in_model would run on quantized inputs",
                         "use dynamic or float16 quantization, or impute in the app (in_model: false; "
                         "model_info.json holds the fill values)")]


def tflite_shipped(resolved: ResolvedSpec, target: TfliteTarget) -> str:
    """What ``tfspec fleet`` lists: the model file."""
    return target.filename or "-"


TARGET = register(TargetKind(
    "tflite", render=render_tflite,
    rules=(android_loader_takes_one_input, asset_pack_names_unique, select_tf_ops_cannot_verify,
           quantization_aware_converts_to_int8, representative_samples_available, integer_model_cannot_impute,
           gpu_delegable_needs_gpu, sparse_weights_need_prune),
    warnings=(npu_needs_an_integer_model,),
    plan_steps=plan_tflite, defaults=tflite_defaults, metrics=MEASURED_METRICS, shipped=tflite_shipped))
