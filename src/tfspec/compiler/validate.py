"""Stage 4: validate — cross-section rules on a :class:`ResolvedSpec`, then each target's kind's rules.

Each rule here is a function ``rule(resolved) -> list[Diagnostic]`` listed in ``RULES``; what concerns one
target kind is that kind's (``TargetKind.rules`` in ``compiler/targets/<kind>.py``), and the rules here
that look at targets ask the registry (a target's workload, image, whether its kind trains). All rules run
and every problem is collected before one :class:`SpecError` is raised.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tfspec.spec.data import CsvSource, ImageFolderSource, NpzSource, SklearnDigitsSource, TfrecordSource
from tfspec.base.errors import Diagnostic, SpecError, format_path
from tfspec.spec.loader import KeyPath
from tfspec.spec.model import FunctionalModel, SavedModelModel, SequentialModel

from . import kube_names
from tfspec.base.locations import is_external, is_object_store, local_path
from .quantities import quantity_value
from .plan import quality_metric
from .resolve import ResolvedSpec, num_classes_key, source_shape
from .sources import SKLEARN_DIGITS
from . import workflow as workflow_rules
from . import released as released_rules
from .targets import target_image, target_kind, target_kinds, target_names, target_workload
from .targets.common import DIGEST_MARK, image_repository
from .techniques import technique
from .techniques.registry import stage_model_layers

__all__ = ["RULES", "validate", "collect_diagnostics"]

Rule = Callable[[ResolvedSpec], list[Diagnostic]]


def validate(resolved: ResolvedSpec) -> ResolvedSpec:
    """Run every rule; raise one :class:`SpecError` listing all problems, or return the spec unchanged."""
    diagnostics = collect_diagnostics(resolved)
    if diagnostics:
        raise SpecError(diagnostics)
    return resolved


def collect_diagnostics(resolved: ResolvedSpec) -> list[Diagnostic]:
    """The cross-section ``RULES``, then each target's own rules (its kind's ``rules``)."""
    out: list[Diagnostic] = []
    for rule in RULES:
        out.extend(rule(resolved))
    for index, target in enumerate(resolved.spec.targets):
        for target_rule in target_kind(target.kind).rules:
            out.extend(target_rule(resolved, index, target))
    return out


def _layers(resolved: ResolvedSpec) -> list[Any]:
    model = resolved.spec.model
    return list(model.layers) if isinstance(model, (SequentialModel, FunctionalModel)) else []


def _layer_names(resolved: ResolvedSpec) -> set[str]:
    return {layer.name for layer in _layers(resolved) if layer.name}


def _stages(resolved: ResolvedSpec) -> Iterator[tuple[int, Any]]:
    return enumerate(resolved.spec.compression)


# --- names -------------------------------------------------------------------------------------------

def unique_target_names(r: ResolvedSpec) -> list[Diagnostic]:
    seen: dict[str, int] = {}
    out = []
    for index, target in enumerate(r.spec.targets):
        if target.name in seen:
            out.append(r.diagnostic(("targets", index, "name"), f"duplicate target name {target.name!r} "
                                    f"(also targets[{seen[target.name]}])", "give every target its own name"))
        else:
            seen[target.name] = index
    return out


def kubernetes_names(r: ResolvedSpec) -> list[Diagnostic]:
    """Every generated Kubernetes name (and label value), and every name a controller derives from one,
    within the API server's limits for its kind (``kube_names``): the targets' and the workflow's."""
    return kube_names.check(r, [*target_names(r), *workflow_rules.workflow_names(r)])


def unique_layer_names(r: ResolvedSpec) -> list[Diagnostic]:
    seen: set[str] = set()
    out = []
    for index, layer in enumerate(_layers(r)):
        if layer.name and layer.name in seen:
            out.append(r.diagnostic(("model", "layers", index, "name"), f"duplicate layer name {layer.name!r}"))
        if layer.name:
            seen.add(layer.name)
    return out


# --- model, data and loss ---------------------------------------------------------------------------

def functional_graph(r: ResolvedSpec) -> list[Diagnostic]:
    model = r.spec.model
    if not isinstance(model, FunctionalModel):
        out = []
        for index, layer in enumerate(_layers(r)):
            if layer.inputs is not None:
                out.append(r.diagnostic(("model", "layers", index, "inputs"),
                                        "'inputs' is only used by functional models", "remove it, or use kind: functional"))
        return out
    known = {i.name for i in model.inputs}
    out = []
    for index, layer in enumerate(model.layers):
        if not layer.name:
            out.append(r.diagnostic(("model", "layers", index), "every layer of a functional model needs a 'name'"))
        if not layer.inputs:
            out.append(r.diagnostic(("model", "layers", index), "every layer of a functional model needs 'inputs'"))
        for j, name in enumerate(layer.inputs or []):
            if name not in known:
                out.append(r.diagnostic(("model", "layers", index, "inputs", j), f"unknown input {name!r}",
                                        "layers may only use model inputs and layers listed before them"))
        if layer.type not in ("add", "concatenate") and layer.inputs and len(layer.inputs) > 1:
            out.append(r.diagnostic(("model", "layers", index, "inputs"),
                                    f"a {layer.type!r} layer takes one input", "join inputs with an add or concatenate layer"))
        if layer.name:
            known.add(layer.name)
    if model.outputs[0] not in known:
        out.append(r.diagnostic(("model", "outputs", 0), f"unknown layer {model.outputs[0]!r}"))
    return out


def merge_layers_need_functional(r: ResolvedSpec) -> list[Diagnostic]:
    if isinstance(r.spec.model, FunctionalModel):
        return []
    return [r.diagnostic(("model", "layers", i, "type"), f"an {layer.type!r} layer joins several inputs",
                         "use kind: functional") for i, layer in enumerate(_layers(r)) if layer.type in ("add", "concatenate")]


def input_shape_matches_source(r: ResolvedSpec) -> list[Diagnostic]:
    expected = source_shape(r.spec)
    if expected is None or r.multi_input:  # several inputs: multi_input_features checks each one
        return []
    if tuple(r.input_shape) != tuple(expected):
        path = ("model", "inputs", 0, "shape") if isinstance(r.spec.model, FunctionalModel) else ("model", "input_shape")
        hint = f"the {r.spec.data.source.kind} source gives examples of shape {list(expected)}"
        if not r.spec.data.preprocessing.reshape:
            hint += "; reshape them with data.preprocessing.reshape"
        return [r.diagnostic(path, f"input shape {list(r.input_shape)} does not match the data", hint)]
    return []


def _named_features(r: ResolvedSpec) -> tuple[KeyPath, dict[str, int | None]] | None:
    """Where the source names features per model input, and each name's size where the spec says it
    (csv columns, tfrecord shapes; None for npz arrays, known when the data is read)."""
    source = r.spec.data.source
    if isinstance(source, NpzSource) and isinstance(source.features, dict):
        return ("data", "source", "features"), {name: None for name in source.features}
    if isinstance(source, CsvSource) and isinstance(source.feature_columns, dict):
        return ("data", "source", "feature_columns"), {k: len(v) for k, v in source.feature_columns.items()}
    if isinstance(source, TfrecordSource) and r.multi_input:
        return ("data", "source", "features"), {k: math.prod(f.shape) for k, f in source.features.items()}
    return None


def multi_input_features(r: ResolvedSpec) -> list[Diagnostic]:
    """Several model inputs take the source's features of the same names, each its own size, unreshaped."""
    named = _named_features(r)
    if named is None:
        if not r.multi_input:
            return []
        return [r.diagnostic(("model", "inputs"), f"{len(r.inputs)} model inputs need the data's features named per "
                             f"input; the {r.spec.data.source.kind} source gives one feature array",
                             "use an npz source with features: {input: array, ...}, a csv source with "
                             "feature_columns: {input: [columns], ...} or a tfrecord source with a feature per input")]
    key, sizes = named
    inputs = {i.name: i for i in r.inputs}
    if set(sizes) != set(inputs):
        return [r.diagnostic(key, f"features named {sorted(sizes)} for model inputs {sorted(inputs)}",
                             "name one feature entry after each model input (model.inputs[].name, or "
                             "model.input_name)")]
    out = []
    for index, model_input in enumerate(r.inputs):
        size = sizes[model_input.name]
        if size is not None and size != model_input.size:
            where = ("model", "inputs", index, "shape") if isinstance(r.spec.model, FunctionalModel) else ("model", "input_shape")
            out.append(r.diagnostic(where, f"input {model_input.name!r} of shape {list(model_input.shape)} takes "
                                    f"{model_input.size} values; its features give {size}",
                                    f"make the shape's values match {'.'.join(map(str, key))}.{model_input.name}"))
    if r.multi_input and r.spec.data.preprocessing.reshape:
        out.append(r.diagnostic(("data", "preprocessing", "reshape"), "reshape applies to one input; with several "
                                "inputs each takes the shape model.inputs[].shape gives it", "remove reshape"))
    if r.multi_input and r.spec.data.augmentation is not None:
        out.append(r.diagnostic(("data", "augmentation"), "image augmentation is for a one-input model",
                                "remove data.augmentation, or augment inside the model (random_flip, ... layers)"))
    return out


def preprocessing_in_model(r: ResolvedSpec) -> list[Diagnostic]:
    """``data.preprocessing.in_model`` wraps one Keras model's one input with the data's preprocessing."""
    if not r.spec.data.preprocessing.in_model:
        return []
    key = ("data", "preprocessing", "in_model")
    if getattr(r.spec.model, "serve_as_is", False):
        return [r.diagnostic(key, "a SavedModel served as it is is deployed unchanged: nothing can be baked into it",
                             "remove in_model (clients preprocess), or set serve_as_is: false for a Keras SavedModel")]
    if r.multi_input:
        return [r.diagnostic(key, "preprocessing in the model needs a one-input model",
                             "remove in_model, or put rescaling/normalization layers on each input in the model")]
    if r.raw_input_shape is None:
        return [r.diagnostic(key, f"the raw example shape of the {r.spec.data.source.kind} source is only known from "
                             "the data, and reshape hides it", "set csv feature_columns, or remove reshape and give "
                             "the model the source's shape")]
    return []


def reshape_keeps_size(r: ResolvedSpec) -> list[Diagnostic]:
    reshape = r.spec.data.preprocessing.reshape
    raw = source_shape(r.spec, reshaped=False) if reshape else None
    if raw is None or math.prod(raw) == math.prod(reshape):
        return []
    return [r.diagnostic(("data", "preprocessing", "reshape"),
                         f"cannot reshape {list(raw)} ({math.prod(raw)} values) to {list(reshape)} "
                         f"({math.prod(reshape)} values)")]


def augmentation_needs_images(r: ResolvedSpec) -> list[Diagnostic]:
    if r.spec.data.augmentation is None or len(r.input_shape) == 3:
        return []
    return [r.diagnostic(("data", "augmentation"), f"image augmentation needs inputs of shape [height, width, channels], "
                         f"the model takes {list(r.input_shape)}", "reshape the data with data.preprocessing.reshape")]


def labels_match_classes(r: ResolvedSpec) -> list[Diagnostic]:
    data = r.spec.data
    if data.labels and data.num_classes and len(data.labels) != data.num_classes:
        return [r.diagnostic(("data", "labels"), f"{len(data.labels)} labels for {data.num_classes} classes")]
    classes = SKLEARN_DIGITS.classes
    if data.labels and isinstance(data.source, SklearnDigitsSource) and len(data.labels) != classes:
        return [r.diagnostic(("data", "labels"), f"the digits set has {classes} classes, {len(data.labels)} labels given")]
    return []


def final_layer_matches_loss(r: ResolvedSpec) -> list[Diagnostic]:
    loss = r.spec.training.loss_spec
    path = ("training", "loss")
    out: list[Diagnostic] = []
    layers = _layers(r)
    if layers:
        final_index = len(layers) - 1
        if isinstance(r.spec.model, FunctionalModel):
            names = [layer.name for layer in layers]
            final_index = names.index(r.spec.model.outputs[0]) if r.spec.model.outputs[0] in names else final_index
        final = layers[final_index]
        final_path = ("model", "layers", final_index)
        activation = getattr(final, "activation", None)
        units = getattr(final, "units", None)
    else:
        final_path = ("model", "output_activation")
        activation = getattr(r.spec.model, "output_activation", None)
        units = None
    categorical = loss.kind in ("sparse_categorical_crossentropy", "categorical_crossentropy")
    if categorical:
        if activation == "softmax" and loss.from_logits:
            out.append(r.diagnostic(path, "from_logits is true but the final layer applies softmax",
                                    "remove the softmax (activation: linear) or set from_logits: false"))
        elif activation not in (None, "softmax") and not loss.from_logits:
            out.append(r.diagnostic(final_path, f"{loss.kind} needs probabilities but the final layer's activation is "
                                    f"{activation!r}", "use activation: softmax, or set training.loss.from_logits: true"))
        if units is not None and r.num_classes is not None and units != r.num_classes:
            out.append(r.diagnostic(final_path + ("units",), f"the final layer has {units} units for {r.num_classes} classes",
                                    f"set units: {r.num_classes}"))
    if loss.kind == "binary_crossentropy":
        if units is not None and units != 1:
            out.append(r.diagnostic(final_path + ("units",), "binary_crossentropy needs a final layer with 1 unit",
                                    "use sparse_categorical_crossentropy for several classes"))
        if activation == "softmax":
            out.append(r.diagnostic(final_path, "binary_crossentropy needs a sigmoid output, not softmax"))
        elif activation not in (None, "sigmoid") and not loss.from_logits:
            out.append(r.diagnostic(final_path, f"binary_crossentropy needs a sigmoid output, got {activation!r}",
                                    "use activation: sigmoid, or set from_logits: true"))
    if loss.label_smoothing and loss.kind not in ("categorical_crossentropy", "binary_crossentropy"):
        out.append(r.diagnostic(path, f"label_smoothing is not supported by {loss.kind}",
                                "use categorical_crossentropy (labels are one-hot encoded for it)"))
    return out


def early_stopping_needs_validation(r: ResolvedSpec) -> list[Diagnostic]:
    out = []
    es = r.spec.training.early_stopping
    if es and es.monitor.startswith("val_") and r.spec.data.split.validation == 0:
        out.append(r.diagnostic(("training", "early_stopping", "monitor"), f"{es.monitor} needs a validation split",
                                "set data.split.validation above 0, or monitor loss"))
    for field in ("early_stopping",):
        monitor = getattr(getattr(r.spec.training, field), "monitor", None)
        if monitor and monitor.endswith("accuracy") and "accuracy" not in r.spec.training.metrics:
            out.append(r.diagnostic(("training", field, "monitor"), f"{monitor} is not computed",
                                    "add accuracy to training.metrics"))
    return out


def gates_need_accuracy(r: ResolvedSpec) -> list[Diagnostic]:
    if quality_metric(r.spec.training.loss_spec.kind) != "accuracy":
        return []  # gates_match_metric says which gates a regression model has
    out = []
    for index, target in enumerate(r.spec.targets):
        gates = getattr(target, "gates", None)
        if gates and (gates.max_accuracy_drop is not None or gates.min_accuracy is not None) and \
                "accuracy" not in r.spec.training.metrics:
            out.append(r.diagnostic(("targets", index, "gates"), "accuracy gates need the accuracy metric",
                                    "add accuracy to training.metrics"))
    return out


_ACCURACY_GATES = ("max_accuracy_drop", "min_accuracy")
_ERROR_GATES = ("max_error_increase", "max_error")


def gates_match_metric(r: ResolvedSpec) -> list[Diagnostic]:
    """Accuracy gates bound a classifier's drop; error gates bound a regression model's mae increase."""
    out = []
    metric = quality_metric(r.spec.training.loss_spec.kind)
    wrong, right = (_ACCURACY_GATES, _ERROR_GATES) if metric == "mae" else (_ERROR_GATES, _ACCURACY_GATES)
    for index, target in enumerate(r.spec.targets):
        gates = getattr(target, "gates", None)
        for name in wrong:
            if gates is not None and getattr(gates, name) is not None:
                what = (f"a {r.spec.training.loss_spec.kind} model is measured by mae (mean absolute error, lower is "
                        "better)" if metric == "mae" else "a classifier is measured by accuracy")
                out.append(r.diagnostic(("targets", index, "gates", name), f"{name} does not apply: {what}",
                                        f"use {' or '.join(right)}"))
    return out


# --- conversion ---------------------------------------------------------------------------------------

def serve_as_is_is_not_keras(r: ResolvedSpec) -> list[Diagnostic]:
    """A SavedModel served as it is may not be a Keras model: nothing Keras-based may run on it."""
    model = r.spec.model
    if not isinstance(model, SavedModelModel) or not model.serve_as_is:
        return []
    out = []
    if model.trainable and "trainable" in model.model_fields_set:
        out.append(r.diagnostic(("model", "trainable"), "a SavedModel served as it is is not trained (serve_as_is: true)",
                                "remove trainable, or set serve_as_is: false to fine-tune a Keras SavedModel"))
    for index, stage in _stages(r):
        out.append(r.diagnostic(("compression", index), f"{stage.kind} needs a Keras model; a SavedModel served as it is "
                                "(serve_as_is: true) is deployed unchanged",
                                "remove the compression stages, or set serve_as_is: false (Keras SavedModels only)"))
    return out


def external_locations_opt_in(r: ResolvedSpec) -> list[Diagnostic]:
    """Data, a SavedModel model or teacher outside the spec's folder only when the spec says so
    (``data.external_locations``, ``model.external_locations``, ``...teacher.external_locations``)."""
    places: list[tuple[tuple[str | int, ...], Any, str]] = [
        (("data", "source", "path"), r.spec.data, "data.external_locations")]
    if getattr(r.spec.model, "kind", None) == "saved_model":
        places.append((("model", "path"), r.spec.model, "model.external_locations"))
    for index, stage in enumerate(r.spec.compression):
        teacher = getattr(stage, "teacher", None)
        if getattr(teacher, "kind", None) == "saved_model":
            places.append((("compression", index, "teacher", "path"), teacher,
                           f"compression[{index}].teacher.external_locations"))
    out = []
    for key, owner, opt_in in places:
        path = getattr(r.spec.data.source, "path", None) if key[0] == "data" else owner.path
        if path is not None and is_external(path) and not owner.external_locations:
            out.append(r.diagnostic(key, f"{path} is outside the spec's folder",
                                    f"set {opt_in}: true to read it (see docs/data.md)"))
    return out


def image_folder_classes_match(r: ResolvedSpec) -> list[Diagnostic]:
    """The class sub-folders of an image_folder source against the classes the model outputs (cheap here)."""
    source = r.spec.data.source
    if not isinstance(source, ImageFolderSource) or r.num_classes is None or is_object_store(source.path):
        return []
    root = local_path(Path(r.file).parent, source.path)
    if not root.is_dir():
        return []  # the data step names the missing folder
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    # one sigmoid unit separates two classes
    outputs = 2 if r.spec.training.loss_spec.kind == "binary_crossentropy" else r.num_classes
    if not classes or len(classes) == outputs:
        return []
    return [r.diagnostic(num_classes_key(r.spec), f"the model has {outputs} classes but {source.path} has "
                         f"{len(classes)} class folders ({_listed(classes)})",
                         f"make the output layer {len(classes)} units wide (and data.num_classes / data.labels match)")]


def _listed(names: list[str], limit: int = 12) -> str:
    return ", ".join(names[:limit]) + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


# --- compression ------------------------------------------------------------------------------------

def compression_order(r: ResolvedSpec) -> list[Diagnostic]:
    """Each stage by its technique's rules (``compiler/techniques/``): against the stages before it, and alone."""
    out = []
    seen: dict[str, int] = {}
    for index, stage in _stages(r):
        for rule in technique(stage.kind).rules:
            problem = rule.check(r, index, stage, seen)
            if isinstance(problem, list):
                out.extend(problem)
            elif problem is not None:
                out.append(problem)
        seen.setdefault(stage.kind, index)
    return out


def _stage_model_layers(r: ResolvedSpec) -> list[tuple[int, list[Any], tuple[str | int, ...]]]:
    """For each compression stage: the layers of the model it works on, and the key path declaring them
    (stages after a ``distill`` stage work on the student: their ``skip_layers`` name student layers)."""
    return [(index, *stage_model_layers(r, index)) for index, _ in _stages(r)]


_WEIGHTED_LAYER_TYPES = frozenset({"dense", "conv1d", "conv2d", "depthwise_conv2d", "separable_conv2d", "lstm", "gru",
                                   "embedding"})


def stage_layers_exist(r: ResolvedSpec) -> list[Diagnostic]:
    out = []
    for index, layers, where in _stage_model_layers(r):
        stage = r.spec.compression[index]
        skip = list(getattr(stage, "skip_layers", []))
        names = {layer.name for layer in layers if layer.name}
        if not names or not skip:
            continue  # unnamed layers get generated names: nothing to check against
        for j, layer in enumerate(skip):
            if layer not in names:
                out.append(r.diagnostic(("compression", index, "skip_layers", j),
                                        f"no layer named {layer!r} in {format_path(where)}",
                                        "known layers: " + ", ".join(sorted(names))))
        weighted = {layer.name for layer in layers if layer.type in _WEIGHTED_LAYER_TYPES}
        if weighted and None not in weighted and weighted <= set(skip):
            out.append(r.diagnostic(("compression", index, "skip_layers"),
                                    f"skip_layers lists every layer with weights: the {stage.kind} stage would change nothing",
                                    "leave at least one dense or convolution layer out of skip_layers"))
    return out


# --- targets (what every kind shares; each kind's own rules are its TargetKind.rules) ------------------

def gpu_placement(r: ResolvedSpec) -> list[Diagnostic]:
    """``model.placement``: named layers, each placed once.

    Placement splits one model replica over devices (model parallelism), so it goes with
    ``distribution.kind: default``; a mirrored strategy would replicate the model over the very devices
    the placement splits it across. Whether the devices exist is the training kind's rule (the gpu_cluster
    target's ``gpus_per_worker``); without one the compiler cannot know the machine, and the runtime
    checks the devices it really sees (``model.placement[i].device``).
    """
    placement = getattr(r.spec.model, "placement", None)
    if not placement:
        return []
    names = _layer_names(r)
    out = []
    kind = r.spec.training.distribution.kind
    if kind != "default":
        out.append(r.diagnostic(("model", "placement"),
                                f"placement splits one model replica over devices; it cannot be combined with "
                                f"training.distribution.kind {kind}",
                                "use distribution kind: default with placement, or drop placement to replicate "
                                "the whole model on every device"))
    placed: set[str] = set()
    for index, group in enumerate(placement):
        for j, layer in enumerate(group.layers):
            if layer not in names:
                out.append(r.diagnostic(("model", "placement", index, "layers", j), f"no layer named {layer!r}",
                                        f"known layers: {', '.join(sorted(names))}" if names
                                        else "give the layers names in model.layers to place them"))
            elif layer in placed:
                out.append(r.diagnostic(("model", "placement", index, "layers", j), f"layer {layer!r} is placed twice"))
            placed.add(layer)
    return out


def multi_worker_needs_cluster(r: ResolvedSpec) -> list[Diagnostic]:
    """multi_worker_mirrored needs workers: a target whose kind trains, or explicit ``workers`` (that a
    training kind's job of several workers needs multi_worker_mirrored is the kind's rule)."""
    distribution = r.spec.training.distribution
    out = []
    trains = any(target_kind(t.kind).training_resource is not None for t in r.spec.targets)
    if distribution.kind == "multi_worker_mirrored" and not trains and distribution.workers is None:
        kinds = [entry.kind for entry in target_kinds() if entry.training_resource is not None]
        out.append(r.diagnostic(("training", "distribution"),
                                f"multi_worker_mirrored needs a {' or '.join(kinds)} target or explicit workers",
                                f"add a {' or '.join(kinds)} target, or set training.distribution.workers"))
    if distribution.devices is not None and distribution.kind != "mirrored":
        out.append(r.diagnostic(("training", "distribution", "devices"), "devices is only used by kind: mirrored"))
    if distribution.workers is not None and distribution.kind != "multi_worker_mirrored":
        out.append(r.diagnostic(("training", "distribution", "workers"), "workers is only used by kind: multi_worker_mirrored"))
    return out


def requests_within_limits(r: ResolvedSpec) -> list[Diagnostic]:
    """Kubernetes rejects a container whose request is above its limit: every kind's workload."""
    out = []
    for index, target in enumerate(r.spec.targets):
        workload = target_workload(target)
        if workload is None:
            continue
        for key in ("cpu", "memory"):
            request, limit = getattr(workload.resources.requests, key), getattr(workload.resources.limits, key)
            if quantity_value(request) > quantity_value(limit):
                out.append(r.diagnostic(("targets", index, *workload.key, "resources", "requests", key),
                                        f"the {key} request ({request}) exceeds its limit ({limit})",
                                        "Kubernetes rejects a request above the limit"))
    return out


def toleration_values(r: ResolvedSpec) -> list[Diagnostic]:
    out = []
    for index, target in enumerate(r.spec.targets):
        workload = target_workload(target)
        for j, toleration in enumerate(workload.tolerations if workload is not None else ()):
            if toleration.operator == "Exists" and toleration.value:
                out.append(r.diagnostic(("targets", index, *workload.key, "tolerations", j, "value"),
                                        "a toleration with operator Exists takes no value",
                                        "use operator: Equal to match a value"))
    return out


def unique_images(r: ResolvedSpec) -> list[Diagnostic]:
    """Two targets building images into one repository overwrite each other's tags on push."""
    out = []
    seen: dict[str, int] = {}
    names: set[str] = set()
    for index, target in enumerate(r.spec.targets):
        if target.name in names:
            continue  # a duplicate target name is its own error
        names.add(target.name)
        source = target_image(target)
        if source is None:
            continue
        repository = image_repository(r, target, source.explicit).split(DIGEST_MARK)[0]
        if repository in seen:
            out.append(r.diagnostic(("targets", index, *source.key), f"image repository {repository!r} is also the "
                                    f"one of targets[{seen[repository]}]", "give every target its own image repository"))
        seen.setdefault(repository, index)
    return out


def missing_values_fit(r: ResolvedSpec) -> list[Diagnostic]:
    """``data.missing_values`` needs a source that can miss values, and a model input that can carry NaN."""
    missing = r.spec.data.missing_values
    if missing is None:
        return []
    key: KeyPath = ("data", "missing_values")
    source = r.spec.data.source
    if isinstance(source, (SklearnDigitsSource, ImageFolderSource)):
        return [r.diagnostic(key, f"a {source.kind} source has no missing values", "remove data.missing_values")]
    if missing.strategy == "median" and isinstance(source, TfrecordSource):
        return [r.diagnostic(key + ("strategy",), "median needs the training split in memory: csv and npz sources only",
                             "use strategy: mean (one streaming pass) or constant")]
    return []


def labels_are_lines(r: ResolvedSpec) -> list[Diagnostic]:
    labels = r.spec.data.labels or []
    out = []
    seen: set[str] = set()
    for index, label in enumerate(labels):
        if not label.strip():
            out.append(r.diagnostic(("data", "labels", index), "a label must not be empty", "labels.txt holds one label per line"))
        elif label in seen:
            out.append(r.diagnostic(("data", "labels", index), f"duplicate label {label!r}"))
        seen.add(label)
    return out


RULES: tuple[Rule, ...] = (
    unique_target_names,
    kubernetes_names,
    unique_layer_names,
    functional_graph,
    merge_layers_need_functional,
    input_shape_matches_source,
    multi_input_features,
    preprocessing_in_model,
    reshape_keeps_size,
    augmentation_needs_images,
    labels_match_classes,
    missing_values_fit,
    final_layer_matches_loss,
    early_stopping_needs_validation,
    gates_need_accuracy,
    gates_match_metric,
    serve_as_is_is_not_keras,
    external_locations_opt_in,
    image_folder_classes_match,
    compression_order,
    stage_layers_exist,
    gpu_placement,
    multi_worker_needs_cluster,
    requests_within_limits,
    toleration_values,
    unique_images,
    labels_are_lines,
    *workflow_rules.RULES,
    *released_rules.RULES,
)
