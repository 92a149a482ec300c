"""Stage 3: resolve — variables, environment overlays, then defaults (each a separate step).

* ``expand_variables``: ``${VAR}`` / ``${VAR:-default}`` in string values, from the environment.
* ``apply_environment``: deep-merge ``environments.<name>`` over the base tree; ``targets`` merged by name.
* ``with_defaults``: fill every value that depends on the rest of the spec, giving a :class:`ResolvedSpec`
  in which nothing is left unset.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from tfspec.spec.bounds import MAX_CLASSES, MAX_EXAMPLE_VALUES, shape_size
from tfspec.spec.data import SklearnDigitsSource, ImageFolderSource, TfrecordSource, CsvSource
from tfspec.spec.document import ENVIRONMENT_NAME_PATTERN, Spec
from tfspec.base.errors import Diagnostic, SpecError, cap
from tfspec.spec.loader import KeyPath, NumberTooLong, Position, SourceDocument, plain_scalar
from tfspec.spec.model import DenseLayer
from tfspec.spec.targets import Target

from .saved_model_signatures import ServedSignature
from .sources import SKLEARN_DIGITS

__all__ = ["ResolvedSpec", "ModelInput", "TargetDefaults", "expand_variables", "apply_environment", "merge_overlay",
           "with_defaults", "num_classes_key", "check_sizes", "check_environment_name"]

TargetDefaults = Callable[[Spec, Target], Target]
"""``(spec, target) → the target with its kind's defaults filled``."""

_VARIABLE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
VARIABLE_REFERENCE = _VARIABLE  # ``$$`` or ``${NAME}`` / ``${NAME:-default}`` (groups: name, default)
# Variable names that hold secrets: their values must never be written into plan.json, manifests or images.
_SECRET_NAME = re.compile(r"SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE_?KEY|ACCESS_?KEY|API_?KEY|CREDENTIAL", re.IGNORECASE)
_ENVIRONMENT_NAME = re.compile(ENVIRONMENT_NAME_PATTERN)
_UNCLOSED = re.compile(r"\$\{(?![A-Za-z_][A-Za-z0-9_]*(:-[^}]*)?\})")


def expand_variables(document: SourceDocument, environ: Mapping[str, str] | None = None) -> SourceDocument:
    """Replace ``${VAR}`` and ``${VAR:-default}`` in string values; ``$$`` is a literal ``$``.

    A value that is exactly one variable is re-read as a YAML scalar, so ``replicas: ${REPLICAS}`` gives
    a number. An unset variable without a default is an error naming it.
    """
    env = os.environ if environ is None else environ
    problems: list[Diagnostic] = []

    def expand(value: Any, path: KeyPath) -> Any:
        if isinstance(value, dict):
            return {k: expand(v, path + (k,)) for k, v in value.items()}
        if isinstance(value, list):
            return [expand(v, path + (i,)) for i, v in enumerate(value)]
        if not isinstance(value, str) or "$" not in value:
            return value
        if _UNCLOSED.search(value):
            problems.append(document.diagnostic(path, "malformed variable reference", "write ${NAME} or ${NAME:-default}"))
            return value

        def substitute(match: re.Match[str]) -> str:
            if match.group(0) == "$$":
                return "$"
            name, default = match.group(1), match.group(2)
            if _SECRET_NAME.search(name):
                problems.append(document.diagnostic(
                    path, f"${{{name}}} looks like a secret: its value would be written into the generated files",
                    "give credentials by the name of the variable that holds them (credentials.*_env, a "
                    "Kubernetes Secret), never as a ${VAR} value"))
                return ""
            if name in env:
                return env[name]
            if default is not None:
                return default
            problems.append(
                document.diagnostic(path, f"environment variable {name} is not set",
                                    f"export {name}=... or write ${{{name}:-default}}")
            )
            return ""

        expanded = _VARIABLE.sub(substitute, value)
        whole = _VARIABLE.fullmatch(value)
        if whole and whole.group(0) != "$$":
            # The same scalar rules as the loader: "yes", "0x28" or a 5,000-digit number stay strings.
            try:
                parsed = plain_scalar(expanded.strip())
            except NumberTooLong:
                return expanded
            if isinstance(parsed, (int, float, bool)):
                return parsed
        return expanded

    tree = expand(document.tree, ())
    if problems:
        raise SpecError(problems)
    return dataclasses.replace(document, tree=tree)


def check_environment_name(document: SourceDocument, name: str | None) -> None:
    """``-e NAME`` names files and folders (``<stem>.NAME.env.yaml``, ``build/<name>-NAME/``): it must be an
    environment name, never a path (``-e ../x``) nor a 300-character file name."""
    if name is not None and not _ENVIRONMENT_NAME.fullmatch(name):
        raise SpecError([document.diagnostic(("environments",), f"{cap(name)!r} is not an environment name",
                                             "lower-case letters, digits, '_' and '-', starting with a letter, at "
                                             "most 32 characters")])


def apply_environment(document: SourceDocument, name: str | None) -> SourceDocument:
    """Merge the overlay ``environments.<name>`` over the base tree (positions follow the values)."""
    if name is None:
        return document
    check_environment_name(document, name)
    tree = document.tree
    environments = tree.get("environments") if isinstance(tree, dict) else None
    if not isinstance(environments, dict) or name not in environments:
        available = sorted(environments) if isinstance(environments, dict) else []
        hint = ("available: " + ", ".join(available)) if available else "the spec defines no environments"
        raise SpecError([document.diagnostic(("environments",), f"unknown environment {cap(name)!r}", hint)])
    overlay = environments[name]
    if not isinstance(overlay, dict):
        raise SpecError([document.diagnostic(("environments", name), "an environment overlay must be a mapping")])
    merged = copy.deepcopy(tree)
    positions = dict(document.positions)
    problems: list[Diagnostic] = []
    merge_overlay(merged, overlay, ("environments", name), positions, document, problems)
    if problems:
        raise SpecError(problems)
    return dataclasses.replace(document, tree=merged, positions=positions)


def merge_overlay(merged: dict[str, Any], overlay: dict[str, Any], source: KeyPath,
                  positions: dict[KeyPath, Position], document: SourceDocument, problems: list[Diagnostic]) -> None:
    """Deep-merge ``overlay`` (whose positions are recorded under ``source``) into ``merged`` in place.

    The one merge rule of overlays and base specs: ``targets`` merged by ``name``, ``compression`` and
    every other list or scalar replaced, mappings merged key by key; positions follow the values.
    """
    for key, value in overlay.items():
        if key == "targets" and isinstance(merged.get("targets"), list):
            _merge_targets(merged, value, source + ("targets",), positions, document, problems)
        elif key in ("compression",) or not isinstance(value, dict) or not isinstance(merged.get(key), dict):
            merged[key] = copy.deepcopy(value)
            _move_positions(positions, source + (key,), (key,))
        else:
            _deep_merge(merged[key], value, (key,), source + (key,), positions)


def _deep_merge(base: dict[str, Any], overlay: dict[str, Any], path: KeyPath, source: KeyPath,
                positions: dict[KeyPath, Position]) -> None:
    for key, value in overlay.items():
        if value is None:  # as in a JSON merge patch (RFC 7386): null removes the key
            base.pop(key, None)
            _move_positions(positions, source + (key,), path + (key,))
            continue
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            positions[path + (key,)] = positions.get(source + (key,), positions.get(path + (key,), (1, 1)))
            _deep_merge(base[key], value, path + (key,), source + (key,), positions)
        else:
            base[key] = copy.deepcopy(value)
            _move_positions(positions, source + (key,), path + (key,))


def _move_positions(positions: dict[KeyPath, Position], source: KeyPath, target: KeyPath) -> None:
    """Point ``target`` and everything below it at the positions recorded under ``source``."""
    for path in [p for p in positions if p[: len(target)] == target]:
        del positions[path]
    for path, position in list(positions.items()):
        if path[: len(source)] == source:
            positions[target + path[len(source):]] = position


def _merge_targets(tree: dict[str, Any], overlays: Any, source: KeyPath, positions: dict[KeyPath, Position],
                   document: SourceDocument, problems: list[Diagnostic]) -> None:
    targets = tree.get("targets")
    if not isinstance(overlays, list) or not isinstance(targets, list):
        return  # the typed parse of the base spec reports the shape problem
    by_name = {t.get("name"): i for i, t in enumerate(targets) if isinstance(t, dict) and isinstance(t.get("name"), str)}
    for index, overlay in enumerate(overlays):
        if not isinstance(overlay, dict) or "name" not in overlay:
            problems.append(document.diagnostic(source + (index,), "a target overlay needs the 'name' of the target it changes"))
            continue
        if not isinstance(overlay["name"], str):  # a list or mapping cannot name a target (nor be looked up)
            problems.append(document.diagnostic(source + (index, "name"), "a target's name is a text"))
            continue
        position = by_name.get(overlay["name"])
        if position is None:
            if "kind" not in overlay:
                close = difflib.get_close_matches(str(overlay["name"]), [str(n) for n in by_name], n=1)
                hint = f"did you mean {close[0]!r}?" if close else "name an existing target, or give a 'kind' to add a new one"
                problems.append(document.diagnostic(
                    source + (index, "name"), f"no target named {cap(overlay['name'])!r} to overlay", hint))
                continue
            targets.append(copy.deepcopy(overlay))
            _move_positions(positions, source + (index,), ("targets", len(targets) - 1))
            continue
        _deep_merge(targets[position], overlay, ("targets", position), source + (index,), positions)


@dataclasses.dataclass(frozen=True)
class ModelInput:
    """One named model input: a serving signature key, its shape without the batch axis and its dtype."""

    name: str
    shape: tuple[int, ...]
    dtype: str

    @property
    def size(self) -> int:
        """Values per example (the input's slice of the data's flat feature vector)."""
        size = 1
        for d in self.shape:
            size *= d
        return size


@dataclasses.dataclass(frozen=True)
class ResolvedSpec:
    """A spec with every default filled: what ``validate``, ``plan`` and ``render`` work on.

    Attributes:
        spec: the typed spec, context-dependent defaults filled in.
        document: the source it came from (for positions in diagnostics).
        environment: the overlay applied, if any.
        num_classes: number of classes (from the source, the labels or the output layer).
        labels: class names in label order.
        input_shape: model input shape without the batch axis.
        input_name / output_name: serving signature keys.
        spec_sha256: sha256 of the spec's canonical content (variables expanded, overlay applied, as
            sorted-key JSON): comments, formatting and key order do not change it.
        sources: other files the spec's content came from (project file, base specs, policy files):
            a change to one of them changes the output.
        served: a SavedModel served as it is: the signature read from it at build (``served_signature``
            stage), whose keys and input dtype are then ``input_name``/``output_name``/``input_dtype``.
        label_values: a CSV label column of class names (``M``/``B``): its values in class-index order,
            read by the ``inputs`` stage (``data_files.py``); None for numeric labels.
    """

    spec: Spec
    document: SourceDocument
    environment: str | None
    num_classes: int | None
    labels: tuple[str, ...]
    input_shape: tuple[int, ...]
    input_dtype: str
    input_name: str
    output_name: str
    spec_sha256: str
    sources: tuple[str, ...] = ()
    served: ServedSignature | None = None
    label_values: tuple[str, ...] | None = None

    @property
    def file(self) -> str:
        return self.document.file

    @property
    def signature_name(self) -> str:
        """The serving signature clients call: a SavedModel's own when it is served as it is."""
        if self.served is not None:
            return self.served.name
        return self.spec.model.signature if getattr(self.spec.model, "serve_as_is", False) else "serving_default"

    def diagnostic(self, path: KeyPath, message: str, hint: str | None = None) -> Diagnostic:
        return self.document.diagnostic(path, message, hint)

    @property
    def inputs(self) -> tuple[ModelInput, ...]:
        """Every model input in order: a functional model's ``inputs``, else the one input."""
        named = getattr(self.spec.model, "inputs", None)
        if named:
            return tuple(ModelInput(i.name, tuple(i.shape), i.dtype) for i in named)
        return (ModelInput(self.input_name, tuple(self.input_shape), self.input_dtype),)

    @property
    def raw_input_shape(self) -> tuple[int, ...] | None:
        """With ``data.preprocessing.in_model``: the shape the served model takes (the source's example
        shape, before reshape); None without it, or where the source's shape is only known from the data."""
        if not self.spec.data.preprocessing.in_model:
            return None
        raw = source_shape(self.spec, reshaped=False)
        if raw is None and not self.spec.data.preprocessing.reshape:
            raw = tuple(self.input_shape)
        return raw

    @property
    def multi_input(self) -> bool:
        return len(self.inputs) > 1

    @property
    def data_shape(self) -> tuple[int, ...]:
        """The example shape the data step produces: the input shape, or with several inputs their values
        concatenated in input order (split into named features when the data is read)."""
        return (sum(i.size for i in self.inputs),) if self.multi_input else tuple(self.input_shape)


def _num_classes(spec: Spec) -> int | None:
    if spec.data.num_classes is not None:
        return spec.data.num_classes
    if spec.data.labels:
        return len(spec.data.labels)
    if isinstance(spec.data.source, SklearnDigitsSource):
        return SKLEARN_DIGITS.classes
    layers = getattr(spec.model, "layers", None)
    if layers and isinstance(layers[-1], DenseLayer):
        return layers[-1].units
    return None


def num_classes_key(spec: Spec) -> KeyPath:
    """The spec key that fixes the number of classes the model outputs, for errors about class counts:
    the output layer's ``units`` when the spec lists layers, else ``data.num_classes`` / ``data.labels``."""
    model = spec.model
    layers = list(getattr(model, "layers", None) or [])
    if layers:
        index = len(layers) - 1
        outputs = getattr(model, "outputs", None)
        names = [layer.name for layer in layers]
        if outputs and outputs[0] in names:
            index = names.index(outputs[0])
        return ("model", "layers", index, "units") if isinstance(layers[index], DenseLayer) else ("model", "layers", index)
    if spec.data.num_classes is not None:
        return ("data", "num_classes")
    if spec.data.labels:
        return ("data", "labels")
    return ("model",)


def with_defaults(spec: Spec, document: SourceDocument, environment: str | None = None, *,
                  target_defaults: TargetDefaults) -> ResolvedSpec:
    """Fill every default that depends on other parts of the spec.

    A target's own defaults (image and file names, versions, ...) belong to its kind's module
    (``compiler/targets/<kind>.py``): ``target_defaults`` fills them (the pipeline passes
    :func:`tfspec.compiler.targets.target_defaults`, which asks the target-kind registry).
    """
    check_sizes(spec, document)  # before any label or example is built from these numbers
    num_classes = _num_classes(spec)
    labels = tuple(spec.data.labels) if spec.data.labels else tuple(str(i) for i in range(num_classes or 0))
    filled = spec.model_copy(update={"targets": [target_defaults(spec, target) for target in spec.targets]})
    model = spec.model
    return ResolvedSpec(
        spec=filled,
        document=document,
        environment=environment,
        num_classes=num_classes,
        labels=labels,
        input_shape=tuple(model.input_shape),
        input_dtype=model.input_dtype,
        input_name=model.input_name,
        output_name=model.output_name,
        spec_sha256=hashlib.sha256(
            json.dumps(document.tree, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")
        ).hexdigest(),
    )


def check_sizes(spec: Spec, document: SourceDocument) -> None:
    """Raise :class:`SpecError` at the key when the classes or the values of one example exceed
    :data:`~tfspec.spec.bounds.MAX_CLASSES` / :data:`~tfspec.spec.bounds.MAX_EXAMPLE_VALUES`: the compiler
    writes a label per class and a zero example per input, so these numbers must be bounded where they are
    read (``num_classes: 2147483647`` or ``input_shape: [2147483647, 2147483647]`` would not fit in memory)."""
    problems: list[Diagnostic] = []
    classes = _num_classes(spec)
    if classes is not None and classes > MAX_CLASSES:
        problems.append(document.diagnostic(num_classes_key(spec), f"{classes:,} classes; at most {MAX_CLASSES:,} "
                                            "are supported (each class is a line of labels.txt)"))
    shapes: list[tuple[KeyPath, list[int]]] = []
    inputs = getattr(spec.model, "inputs", None)
    if inputs:
        shapes += [(("model", "inputs", i, "shape"), list(item.shape)) for i, item in enumerate(inputs)]
    elif getattr(spec.model, "input_shape", None) is not None and "input_shape" in type(spec.model).model_fields:
        shapes.append((("model", "input_shape"), list(spec.model.input_shape)))
    source = spec.data.source
    if isinstance(source, ImageFolderSource):
        shapes.append((("data", "source", "image_size"), [*source.image_size, 1 if source.color_mode == "grayscale" else 3]))
    elif isinstance(source, TfrecordSource):
        shapes += [(("data", "source", "features", name, "shape"), list(feature.shape))
                   for name, feature in source.features.items()]
    if spec.data.preprocessing.reshape:
        shapes.append((("data", "preprocessing", "reshape"), list(spec.data.preprocessing.reshape)))
    for key, shape in shapes:
        size = shape_size(shape)
        if size > MAX_EXAMPLE_VALUES:
            problems.append(document.diagnostic(key, f"one example of this shape holds {_count(size)} values; "
                                                f"at most {MAX_EXAMPLE_VALUES:,} are supported (a 2048x2048x4 image)"))
    if problems:
        raise SpecError(problems)


def _count(size: int) -> str:
    return f"{size:,}" if size < 10**15 else f"about 10^{len(str(size)) - 1}"


def source_shape(spec: Spec, reshaped: bool = True) -> tuple[int, ...] | None:
    """The example shape the data source produces, where it is known without reading data.

    With ``reshaped`` (the default) ``data.preprocessing.reshape`` is applied, as the model sees it.
    """
    source = spec.data.source
    shape: tuple[int, ...] | None = None
    if isinstance(source, SklearnDigitsSource):
        shape = (SKLEARN_DIGITS.features,)
    elif isinstance(source, ImageFolderSource):
        shape = (*source.image_size, 1 if source.color_mode == "grayscale" else 3)
    elif isinstance(source, TfrecordSource):
        size = 0
        for feature in source.features.values():
            n = 1
            for d in feature.shape:
                n *= d
            size += n
        shape = tuple(next(iter(source.features.values())).shape) if len(source.features) == 1 else (size,)
        if shape == ():
            shape = (1,)
    elif isinstance(source, CsvSource) and source.feature_columns:
        columns = source.feature_columns
        shape = (sum(len(c) for c in columns.values()) if isinstance(columns, dict) else len(columns),)
    if shape is not None and reshaped and spec.data.preprocessing.reshape:
        return tuple(spec.data.preprocessing.reshape)
    return shape
