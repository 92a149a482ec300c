"""The released model a target is compared with (``targets[].released``, ``gates.vs_released``).

Three jobs, in the order the pipeline runs them:

* ``RULES`` (validate): which kinds fit which target, the gates that fit the metric, a store version below the
  spec's, paths inside the spec's folder unless ``external_locations``.
* :func:`find_released` (the inputs stage): where the released model is and what identifies its content —
  a model store is *listed* (object names, sizes, ETags or generations: nothing is downloaded), a local
  SavedModel, ``.tflite`` or dist folder is digested through the stat memo. Not finding one is an error when a
  ``vs_released`` gate needs it, unless ``allow_first_release``.
* :func:`plan_released` and :func:`plan_comparison` (the plan stage): the ``<target>.released`` step (right
  after ``data``: fetched and checked before anything trains), whose params hold that identity, so the
  comparison re-runs exactly when the released model changes; and the ``<target>.compare`` step, which
  measures the candidate beside it and holds the ``vs_released`` gates. ``verify`` and ``bundle`` do not depend
  on them: the candidate's image tags never follow the store.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tfspec.plan import (MODEL_INFO_FILES, CompareParams, ContractInput, ContractParams, ReleasedFile,
                         ReleasedGateParams, ReleasedParams)
from tfspec.base.errors import Diagnostic, cap
from tfspec.base.locations import ClientCredentials, is_external, list_objects, local_path
from tfspec.spec.released import DistRelease, ReleasedGates, SavedModelRelease, StoreRelease, TfliteRelease
from tfspec.spec.targets import KserveTarget, TfliteTarget, TfServingTarget

from .file_digests import StatMemo, UnreadableFile
from .losses import REGRESSION_LOSSES
from .resolve import ResolvedSpec

__all__ = ["RULES", "FoundRelease", "ReleasedInputs", "PlannedRelease", "find_released", "plan_released",
           "plan_comparison", "released_paths",
           "SAVED_MODEL_FILE", "MODEL_INFO_FILE"]

SAVED_MODEL_FILE = "saved_model.pb"
MODEL_INFO_FILE = MODEL_INFO_FILES["tflite"]

_ACCURACY = ("max_accuracy_drop", "min_accuracy_gain")
_ERROR = ("max_error_increase", "min_error_decrease")
_TEMPORARY_UPLOAD = ".tfspec-upload-"


@dataclasses.dataclass(frozen=True)
class FoundRelease:
    """A released model the build found.

    Attributes:
        description: where it is, for people (``s3://models/digits version 2``).
        location: the folder of its files: a store version's URL, or a local path (relative to the spec's folder,
            or absolute).
        version: the store version; None for a local one.
        files: ``(name relative to location, size, digest)`` of every file, sorted (digest: sha256 of a local
            file, the ETag or generation of an object).
        model_file: the ``.tflite`` among the files (``saved_model.pb`` for a SavedModel).
    """

    description: str
    location: str
    version: int | None
    files: tuple[tuple[str, int, str], ...]
    model_file: str


@dataclasses.dataclass(frozen=True)
class ReleasedInputs:
    """What the inputs stage found, per target name: the released model, or None (none found, and the spec
    allows a first release or no gate needs one) with the places looked at."""

    found: dict[str, FoundRelease | None] = dataclasses.field(default_factory=dict)
    looked: dict[str, str] = dataclasses.field(default_factory=dict)


def _targets(r: ResolvedSpec) -> list[tuple[int, Any]]:
    return [(i, t) for i, t in enumerate(r.spec.targets) if getattr(t, "released", None) is not None]


def _set_gates(gates: ReleasedGates | None) -> list[str]:
    return [name for name, value in (gates.model_dump() if gates is not None else {}).items() if value is not None]


# --- rules (validate) -----------------------------------------------------------------------------------

def gates_need_a_release(r: ResolvedSpec) -> list[Diagnostic]:
    """``gates.vs_released`` compares with ``released``: without it there is nothing to compare with."""
    out = []
    for index, target in enumerate(r.spec.targets):
        gates = getattr(getattr(target, "gates", None), "vs_released", None)
        if gates is not None and getattr(target, "released", None) is None:
            out.append(r.diagnostic(("targets", index, "gates", "vs_released"),
                                    "vs_released gates need the target's released model",
                                    "name it: released: {kind: model_store} (or dist, saved_model, tflite)"))
    return out


def released_gates_match_metric(r: ResolvedSpec) -> list[Diagnostic]:
    """Accuracy gates for classifiers, error gates for regression (the metric verify measures both with)."""
    regression = r.spec.training.loss_spec.kind in REGRESSION_LOSSES  # measured by mae (plan.quality_metric)
    wrong, right = (_ACCURACY, _ERROR) if regression else (_ERROR, _ACCURACY)
    out = []
    for index, target in enumerate(r.spec.targets):
        gates = getattr(getattr(target, "gates", None), "vs_released", None)
        for name in wrong:
            if gates is not None and getattr(gates, name) is not None:
                what = "a regression model is measured by mae" if regression else "a classifier is measured by accuracy"
                out.append(r.diagnostic(("targets", index, "gates", "vs_released", name),
                                        f"{name} does not apply: {what}", f"use {' or '.join(right)}"))
    return out


def released_fits_target(r: ResolvedSpec) -> list[Diagnostic]:
    """A tflite target compares with a ``.tflite``, a served target with a SavedModel; a store version is one
    the store can hold before this one (below the spec's ``version``) and survives this one's upload."""
    out = []
    for index, target in _targets(r):
        released = target.released
        at = ("targets", index, "released")
        tflite = isinstance(target, TfliteTarget)
        if isinstance(released, StoreRelease):
            store = getattr(target, "model_store", None)
            if store is None:
                out.append(r.diagnostic(at + ("kind",), f"a {target.kind} target has no model_store to take the "
                                        "released version from",
                                        "use kind: tflite or dist" if tflite else "set model_store, or use kind: dist "
                                        "or saved_model"))
                continue
            if released.version is not None and released.version >= r.spec.version:
                out.append(r.diagnostic(at + ("version",), f"the released version {released.version} is not below "
                                        f"this spec's version {r.spec.version}",
                                        "name a version the store held before this one"))
            if released.version is None and store.keep_versions < 2:
                out.append(r.diagnostic(("targets", index, "model_store", "keep_versions"),
                                        "keep_versions 1 deletes the released version once this one is uploaded, so "
                                        "the next build would find nothing to compare with", "keep at least 2 versions"))
        elif isinstance(released, TfliteRelease) and not tflite:
            out.append(r.diagnostic(at + ("kind",), f"a {target.kind} target serves a SavedModel: a .tflite cannot "
                                    "be compared with it", "use kind: model_store, dist or saved_model"))
        elif isinstance(released, SavedModelRelease) and tflite:
            out.append(r.diagnostic(at + ("kind",), "a tflite target is compared with a released .tflite, not a "
                                    "SavedModel (sizes and latencies would not be comparable)",
                                    "use kind: tflite or dist"))
        path = getattr(released, "path", None)
        if path is not None and is_external(path) and not released.external_locations:
            out.append(r.diagnostic(at + ("path",), f"{cap(path)} is outside the spec's folder",
                                    f"set targets[{index}].released.external_locations: true to read it"))
    return out


RULES = (gates_need_a_release, released_gates_match_metric, released_fits_target)


# --- inputs ----------------------------------------------------------------------------------------------

def _store_release(r: ResolvedSpec, target: TfServingTarget | KserveTarget,
                   released: StoreRelease) -> tuple[FoundRelease | None, str]:
    """The store's released version by its listing; raises what the listing raised."""
    store = target.model_store
    assert store is not None
    base = store.base_path.rstrip("/")
    pinned = isinstance(target, KserveTarget)  # version N under <base>/N/N/ (see runtime/model_store.py)
    storage = ClientCredentials(store.endpoint_url)
    objects = list_objects(base + "/", storage, folder=True)
    by_version: dict[int, list[tuple[str, int, str]]] = {}
    for entry in objects:
        relative = entry["url"][len(base) + 1:]
        first, _, rest = relative.partition("/")
        if not first.isdigit():
            continue  # not a version: the temporary upload prefix, other files
        if pinned:
            second, _, rest = rest.partition("/")
            if second != first:
                continue
        by_version.setdefault(int(first), []).append((rest, int(entry["size"]), str(entry["version"])))
    complete = sorted(v for v, files in by_version.items() if any(name == SAVED_MODEL_FILE for name, _, _ in files))
    if released.version is not None:
        wanted = released.version if released.version in complete else None
        looked = f"version {released.version} in {base} (complete versions there: {_versions(complete)})"
    else:
        below = [v for v in complete if v < r.spec.version]
        wanted = below[-1] if below else None
        looked = f"a version below {r.spec.version} in {base} (complete versions there: {_versions(complete)})"
    if wanted is None:
        return None, looked
    location = f"{base}/{wanted}/{wanted}" if pinned else f"{base}/{wanted}"
    return FoundRelease(f"{base} version {wanted}", location, wanted, tuple(sorted(by_version[wanted])),
                        SAVED_MODEL_FILE), looked


def _versions(versions: list[int]) -> str:
    return ", ".join(map(str, versions)) if versions else "none"


def _local_files(memo: StatMemo, folder: Path, names: list[str] | None = None) -> tuple[tuple[str, int, str], ...]:
    """``(name, size, sha256)`` of every file below ``folder`` (or of ``names`` in it), through the stat memo."""
    if names is None:
        found = memo.tree(folder)
    else:
        found = [(name, sha) for name in names if (sha := memo.file_sha256(folder / name)) is not None]
    return tuple(sorted((name, os.stat(folder / name).st_size, sha) for name, sha in found))


def _shown(spec_dir: Path, folder: Path, released_path: str) -> str:
    """A local folder as the plan records it: relative to the spec's folder when the spec's path was."""
    if is_external(released_path):
        return folder.as_posix()
    return Path(os.path.relpath(folder, spec_dir)).as_posix()


def _saved_model_release(memo: StatMemo, spec_dir: Path, folder: Path, path: str, what: str) -> FoundRelease | None:
    if not (folder / SAVED_MODEL_FILE).is_file():
        return None
    location = _shown(spec_dir, folder, path)
    return FoundRelease(f"{what} {location}", location, None, _local_files(memo, folder), SAVED_MODEL_FILE)


def _tflite_release(memo: StatMemo, spec_dir: Path, file: Path, path: str, what: str) -> FoundRelease | None:
    if not file.is_file():
        return None
    names = [file.name] + ([MODEL_INFO_FILE] if (file.parent / MODEL_INFO_FILE).is_file() else [])
    location = _shown(spec_dir, file.parent, path)
    return FoundRelease(f"{what} {location}/{file.name}", location, None, _local_files(memo, file.parent, names),
                        file.name)


def _dist_release(r: ResolvedSpec, memo: StatMemo, spec_dir: Path, target: Any,
                  released: DistRelease) -> tuple[FoundRelease | None, str]:
    """The target's artifact in a previous dist folder."""
    root = local_path(spec_dir, released.path) / target.name
    if isinstance(target, TfliteTarget):
        looked = f"a .tflite below {released.path}/{target.name}"
        models = sorted(p for p in root.rglob("*.tflite") if p.is_file()) if root.is_dir() else []
        if len(models) > 1:
            raise ValueError(f"{released.path}/{target.name} holds several .tflite files "
                             f"({', '.join(p.name for p in models[:4])}): name one with kind: tflite")
        return (_tflite_release(memo, spec_dir, models[0], released.path, "dist") if models else None), looked
    models_dir = root / "models" / r.spec.name
    looked = f"a SavedModel version in {released.path}/{target.name}/models/{r.spec.name}"
    versions = sorted(int(p.name) for p in models_dir.iterdir() if p.name.isdigit() and p.is_dir()) \
        if models_dir.is_dir() else []
    for version in reversed(versions):
        found = _saved_model_release(memo, spec_dir, models_dir / str(version), released.path, "dist")
        if found is not None:
            return dataclasses.replace(found, version=version), looked
    return None, looked


def _find_one(r: ResolvedSpec, memo: StatMemo, target: Any) -> tuple[FoundRelease | None, str]:
    released = target.released
    spec_dir = Path(r.file).parent
    if isinstance(released, StoreRelease):
        return _store_release(r, target, released)
    if isinstance(released, DistRelease):
        return _dist_release(r, memo, spec_dir, target, released)
    where = local_path(spec_dir, released.path)
    if isinstance(released, SavedModelRelease):
        return _saved_model_release(memo, spec_dir, where, released.path, "SavedModel"), \
            f"a SavedModel folder at {released.path}"
    return _tflite_release(memo, spec_dir, where, released.path, "file"), f"a .tflite file at {released.path}"


def find_released(r: ResolvedSpec, memo: StatMemo) -> tuple[ReleasedInputs, list[Diagnostic]]:
    """The released model of every target that names one; problems for those that cannot be found and must be."""
    found: dict[str, FoundRelease | None] = {}
    looked: dict[str, str] = {}
    problems: list[Diagnostic] = []
    for index, target in _targets(r):
        at = ("targets", index, "released")
        try:
            release, place = _find_one(r, memo, target)
        except UnreadableFile as error:
            problems.append(r.diagnostic(at, str(error), error.hint))
            continue
        except ValueError as error:
            problems.append(r.diagnostic(at, str(error)))
            continue
        except Exception as error:  # fsspec and its back ends raise many kinds: say which store failed
            first = (str(error).splitlines() or [type(error).__name__])[0]
            problems.append(r.diagnostic(at, f"cannot list the model store: {cap(first)}",
                                         f"check targets[{index}].model_store (endpoint, credentials) and the bucket"))
            continue
        gates = _set_gates(target.gates.vs_released)
        if release is None and gates and not target.released.allow_first_release:
            problems.append(r.diagnostic(at, f"no released model found: looked for {place}; the gates "
                                         f"{', '.join('vs_released.' + g for g in gates)} compare with it",
                                         "set released.allow_first_release: true for a first release, or fix the "
                                         "location"))
            continue
        found[target.name] = release
        looked[target.name] = place
    return ReleasedInputs(found, looked), problems


def released_paths(r: ResolvedSpec) -> list[str]:
    """The local files and folders the released models are read from (``tfspec watch`` watches them)."""
    spec_dir = Path(r.file).resolve().parent
    return [os.path.normpath(local_path(spec_dir, t.released.path)) for _, t in _targets(r)
            if getattr(t.released, "path", None) is not None]


# --- plan ------------------------------------------------------------------------------------------------

def _contract(r: ResolvedSpec, tflite: bool) -> ContractParams:
    """The candidate's input contract: the served signature's (or the ``.tflite``'s) inputs and output."""
    raw = r.raw_input_shape is not None
    if r.served is not None:  # a SavedModel served as it is: its own signature's keys
        inputs = [ContractInput(name=r.served.input.key, dtype=r.served.input.dtype,
                                shape=list(r.served.example_shape))]
    elif r.multi_input:
        inputs = [ContractInput(name=i.name, dtype=i.dtype, shape=list(i.shape)) for i in r.inputs]
    else:
        shape = list(r.raw_input_shape) if raw else list(r.input_shape)
        inputs = [ContractInput(name=r.input_name, dtype="float32" if raw else r.input_dtype, shape=shape)]
    return ContractParams(signature=None if tflite else r.signature_name, inputs=inputs,
                          output_key=r.output_name if (not tflite or r.served is not None) else None,
                          input_contract="raw" if raw else "preprocessed")


@dataclasses.dataclass(frozen=True)
class PlannedRelease:
    """A target's released model in the plan: its ``released`` step (None when none was found), whether one was
    found, where (or where none was) and the ``vs_released`` gates."""

    step: str | None
    found: bool
    description: str
    gates: ReleasedGateParams


def plan_released(add: Callable[..., str], r: ResolvedSpec, target: Any, found: ReleasedInputs) -> PlannedRelease:
    """The ``<target>.released`` step of a target that names a released model (none when none was found)."""
    released = target.released
    index = r.spec.targets.index(target)
    gates = ReleasedGateParams(**(target.gates.vs_released or ReleasedGates()).model_dump())
    release = found.found.get(target.name)
    if release is None:
        where = found.looked.get(target.name, "")
        return PlannedRelease(None, False, f"looked for {where}" if where else "", gates)
    tflite = isinstance(target, TfliteTarget)
    store = getattr(target, "model_store", None) if isinstance(released, StoreRelease) else None
    step = add(f"{target.name}.released", "released", ReleasedParams(
        artifact="tflite" if tflite else "saved_model",
        location=release.location,
        endpoint_url=store.endpoint_url if store is not None else None,
        description=release.description,
        version=release.version,
        files=[ReleasedFile(name=name, size=size, digest=digest) for name, size, digest in release.files],
        model_file=release.model_file,
        model_info=next((name for name, _, _ in release.files
                         if name == MODEL_INFO_FILES["tflite" if tflite else "saved_model"]), None),
        contract=_contract(r, tflite),
        key_path=["targets", index, "released"],
    ), [], ["released"], target.name)
    return PlannedRelease(step, True, release.description, gates)


def plan_comparison(add: Callable[..., str], planned: PlannedRelease | None, target: Any, candidate: str, data: str,
                    metric: str, **measure: Any) -> str | None:
    """The ``<target>.compare`` step: ``candidate`` (the tflite or export step) beside the released model on the
    data step's test split; ``measure`` says how the candidate is fed (``CompareParams``' candidate fields).
    None for a target without a released model."""
    if planned is None:
        return None
    inputs = [candidate, data] + ([planned.step] if planned.step is not None else [])
    return add(f"{target.name}.compare", "compare", CompareParams(
        artifact="tflite" if isinstance(target, TfliteTarget) else "saved_model", metric=metric, found=planned.found,
        description=planned.description, gates=planned.gates, **measure), inputs, ["compare.json"], target.name)
