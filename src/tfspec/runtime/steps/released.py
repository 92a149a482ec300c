"""``released`` step: the target's released model (the one serving now) in the cache, checked before verify
compares the candidate with it.

1. **Copied**: a local folder (relative to the plan root, or absolute) copied; a model store version listed
   again and downloaded object by object (``staging.download``: bounded by the staging limit, each object
   checked against its listed size).
2. **The one the build found**: every file the plan records (name, size, and sha256 of a local file or the
   ETag/generation of an object) must be what is there now, and nothing else; otherwise the store or the
   folder changed since ``tfspec build`` and the run stops (exit 2) rather than compare with another model.
3. **The candidate's input contract**: a SavedModel must have the candidate's signature with the same input
   keys, dtypes and example shapes and its output key; a ``.tflite`` the same inputs and shapes (its dtype may
   differ: its quantization parameters say how to feed it). The model-info file a tfspec bundle carries
   (``assets.extra/tfspec_model_info.json`` in a SavedModel, ``model_info.json`` beside a ``.tflite``) says
   whether the preprocessing is inside the model (``raw``) or the client's (``preprocessed``): it must be the
   candidate's, and its normalisation statistics are what verify preprocesses the test split with for it.
   Without that file the candidate's preprocessing is assumed (``contract: assumed`` in the report).

Writes ``released/`` (the model's files) and ``released.json``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from tfspec.base.digests import file_sha256
from tfspec.base.locations import ClientCredentials, is_object_store, list_objects
from tfspec.plan import ContractParams, ReleasedParams
from tfspec.runtime.context import StepContext
from tfspec.runtime.errors import StepError
from tfspec.runtime.staging import StagingError, download, local_location
from tfspec.runtime.tf import import_tf

__all__ = ["run", "RELEASED_DIR", "RELEASED_FILE", "read_released"]

RELEASED_DIR = "released"
RELEASED_FILE = "released.json"
_REBUILD = "run tfspec build again to compare with the released model as it is now"


def _recorded(p: ReleasedParams) -> dict[str, tuple[int, str]]:
    return {f.name: (f.size, f.digest) for f in p.files}


def _changed(p: ReleasedParams, now: dict[str, tuple[int, str]]) -> str | None:
    """What differs between the files the build recorded and ``now`` (None: nothing)."""
    recorded = _recorded(p)
    gone = sorted(set(recorded) - set(now))
    added = sorted(set(now) - set(recorded))
    rewritten = sorted(name for name in set(recorded) & set(now) if recorded[name] != now[name])
    parts = [f"{label} {', '.join(names[:3])}" for label, names in
             (("missing", gone), ("new", added), ("rewritten", rewritten)) if names]
    return "; ".join(parts) or None


def _from_store(p: ReleasedParams, out: Path) -> None:
    storage = ClientCredentials(p.endpoint_url)
    base = p.location.rstrip("/")
    objects = list_objects(base + "/", storage, folder=True)
    now = {o["url"][len(base) + 1:]: (int(o["size"]), str(o["version"])) for o in objects}
    changed = _changed(p, now)
    if changed:
        raise StepError(tuple(p.key_path), f"{p.description} changed since the build ({changed})", _REBUILD)
    download(base, objects, storage, out)


def _from_folder(p: ReleasedParams, root: Path, out: Path) -> None:
    source = local_location(root, p.location)
    names = [f.name for f in p.files]
    missing = [name for name in names if not (source / name).is_file()]
    if missing:
        raise StepError(tuple(p.key_path), f"{p.description} changed since the build (missing {', '.join(missing[:3])})",
                        _REBUILD)
    for name in names:
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, target)
    now = {name: ((out / name).stat().st_size, file_sha256(out / name)) for name in names}
    if p.artifact == "saved_model":  # a folder: a file added since the build is a change too
        now.update({f.relative_to(source).as_posix(): (0, "") for f in source.rglob("*")
                    if f.is_file() and f.relative_to(source).as_posix() not in now})
    changed = _changed(p, now)
    if changed:
        raise StepError(tuple(p.key_path), f"{p.description} changed since the build ({changed})", _REBUILD)


def _shape_text(shape: list[int | None]) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _matches(found: list[int | None], expected: list[int]) -> bool:
    return len(found) == len(expected) and all(f is None or f == e for f, e in zip(found, expected))


def _saved_model_problems(folder: Path, contract: ContractParams) -> list[str]:
    """Why the SavedModel does not take the candidate's signature ([] when it does)."""
    tf, _ = import_tf()
    loaded = tf.saved_model.load(str(folder))
    available = sorted(loaded.signatures.keys())
    if contract.signature not in available:
        return [f"it has no signature {contract.signature!r} (its signatures: {', '.join(available) or 'none'})"]
    function = loaded.signatures[contract.signature]
    _, inputs = function.structured_input_signature
    outputs = dict(function.structured_outputs)
    problems = []
    expected = {i.name: i for i in contract.inputs}
    if set(inputs) != set(expected):
        problems.append(f"signature {contract.signature!r} takes {', '.join(sorted(inputs)) or 'nothing'}, the "
                        f"candidate {', '.join(sorted(expected))}")
    for name in sorted(set(inputs) & set(expected)):
        spec, want = inputs[name], expected[name]
        shape = [None if d is None else int(d) for d in spec.shape.as_list()][1:] if spec.shape.rank else []
        if spec.dtype.name != want.dtype:
            problems.append(f"input {name!r} is {spec.dtype.name}, the candidate's {want.dtype}")
        if not _matches(shape, want.shape):
            problems.append(f"input {name!r} takes examples of shape {_shape_text(shape)}, the candidate's "
                            f"{_shape_text(list(want.shape))}")
    if contract.output_key is not None and contract.output_key not in outputs:
        problems.append(f"signature {contract.signature!r} has no output {contract.output_key!r} (its outputs: "
                        f"{', '.join(sorted(outputs))})")
    return problems


def _tflite_problems(path: Path, contract: ContractParams) -> list[str]:
    """Why the ``.tflite`` does not take the candidate's inputs ([] when it does)."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path))
    details = interpreter.get_input_details()
    if len(contract.inputs) > 1:
        runner = interpreter.get_signature_runner().get_input_details()
        found = {name: [int(d) for d in detail["shape"]][1:] for name, detail in runner.items()}
    else:
        found = {contract.inputs[0].name: [int(d) for d in details[0]["shape"]][1:]} if len(details) == 1 else {}
    if len(details) != len(contract.inputs):
        return [f"it takes {len(details)} inputs, the candidate {len(contract.inputs)}"]
    problems = []
    for want in contract.inputs:
        shape = found.get(want.name)
        if shape is None:
            problems.append(f"it has no input {want.name!r} (its inputs: {', '.join(sorted(found))})")
        elif shape != list(want.shape):
            problems.append(f"input {want.name!r} takes examples of shape {_shape_text(list(shape))}, the "
                            f"candidate's {_shape_text(list(want.shape))}")
    return problems


def _model_info(folder: Path, name: str | None) -> dict[str, Any] | None:
    path = folder / name if name is not None else None
    if path is None or not path.is_file():
        return None
    try:
        info = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _normalization(info: dict[str, Any]) -> dict[str, Any] | None:
    """The preprocessing a client applies for the released model (rescale, the statistics of *its* training
    split, missing-value fill): what verify feeds it the test split with."""
    given = info.get("normalization")
    if not isinstance(given, dict):
        return None
    impute = given.get("impute")
    return {"rescale": given.get("rescale"), "mean": given.get("mean"), "std": given.get("std"),
            "impute": impute if isinstance(impute, dict) else None}


def run(ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    assert isinstance(p, ReleasedParams)
    key = tuple(p.key_path)
    out = ctx.out / RELEASED_DIR
    out.mkdir(parents=True, exist_ok=True)
    try:
        if is_object_store(p.location):
            _from_store(p, out)
        else:
            _from_folder(p, ctx.root, out)
    except StagingError as error:
        raise StepError(key, f"{p.description}: {error}") from None
    model = out / p.model_file
    problems = _tflite_problems(model, p.contract) if p.artifact == "tflite" else _saved_model_problems(out, p.contract)
    info = _model_info(out, p.model_info)
    contract = info.get("input_contract") if info else None
    if contract is not None and contract != p.contract.input_contract:
        where = {"raw": "inside the model (raw inputs)", "preprocessed": "in the client (preprocessed inputs)"}
        problems.append(f"its preprocessing runs {where.get(contract, contract)}, the candidate's "
                        f"{where[p.contract.input_contract]}")
    if problems:
        raise StepError(key, f"{p.description} does not take the candidate's input contract: {'; '.join(problems)}",
                        "a changed input contract changes every client too: compare with a model that takes the same "
                        "inputs, or leave released out of the spec for this release")
    result = {"description": p.description, "version": p.version, "artifact": p.artifact, "model_file": p.model_file,
              "contract": "checked" if contract is not None else "assumed",
              "input_contract": contract or p.contract.input_contract,
              "normalization": _normalization(info) if info and contract == "preprocessed" else None}
    ctx.write_json(RELEASED_FILE, result)
    ctx.log(f"  {p.description}: {len(p.files)} file{'s' if len(p.files) != 1 else ''}, input contract "
            f"{result['contract']}")
    return {k: v for k, v in result.items() if k != "normalization"}


def read_released(folder: Path) -> dict[str, Any]:
    """The ``released.json`` of a released step's cache entry."""
    return json.loads((Path(folder) / RELEASED_FILE).read_text("utf-8"))
