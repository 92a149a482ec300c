"""Stage 5b: the signature of a SavedModel served as it is, read at build from its ``saved_model.pb``.

A SavedModel deployed unchanged (``model.serve_as_is``) is served with its own signature: its name, input
key, output key, dtypes and shapes are the SavedModel's, not the spec's defaults (``inputs``/``outputs``,
``serving_default``). Every generated client (``request.json``, ``predict_rest.sh``, ``predict_grpc.py``,
the Kotlin loader) and ``model_info.json`` must use them, so the compiler reads them here — without
TensorFlow, from the protocol buffer itself (:mod:`.saved_model_signatures`) — and puts them in the
resolved spec: ``input_name``, ``output_name``, ``input_dtype`` and ``served`` (the whole signature).
The steps that run later (train, evaluate, verify, tflite, bundle) get the chosen output key from the plan,
so serving and tflite verify measure the same output.

Refused here, at the spec line, before anything runs: a signature the SavedModel does not have, a
regress/classify-style signature (serialized ``tf.Example`` strings in), several inputs, an
``input_shape`` the signature does not take, and an ambiguous output (several float outputs and no
``model.output_name`` naming one, or a named output that is not there or is not float).

Reads only ``saved_model.pb`` (a local folder: the file; ``s3://``/``gs://``: that one object through
fsspec, as the inputs stage lists the folder); the graph and variables are skipped, never decoded.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from tfspec.base.errors import SpecError
from tfspec.spec.model import SavedModelModel

from tfspec.base.locations import filesystem, is_object_store, local_path

from .plan_sections import storage_params
from .resolve import ResolvedSpec
from .saved_model_signatures import (ServedSignature, SignatureFacts, SignatureReadError, TensorFacts,
                                     read_signatures)

__all__ = ["with_served_signature", "choose_signature", "SAVED_MODEL_FILE"]

SAVED_MODEL_FILE = "saved_model.pb"
_SIGNATURE_KEY = ("model", "signature")
_OUTPUT_KEY = ("model", "output_name")
# Input dtypes a served model may take from the data (the spec's input_dtype choices).
_INPUT_DTYPES = ("float32", "int32", "int64")


def with_served_signature(resolved: ResolvedSpec) -> ResolvedSpec:
    """``resolved`` with the served signature's facts (a SavedModel served as it is), or as it is.

    Raises :class:`SpecError` for a signature that cannot be served and verified as the spec says. A
    missing folder is left to the inputs stage, which reports it."""
    model = resolved.spec.model
    if not isinstance(model, SavedModelModel) or not model.serve_as_is:
        return resolved
    try:
        signatures = _read(resolved, model)
    except FileNotFoundError:
        return resolved  # the inputs stage names the missing folder
    except (OSError, SignatureReadError) as error:
        first = (str(error).splitlines() or [type(error).__name__])[0]
        raise SpecError([resolved.diagnostic(("model", "path"), f"cannot read the SavedModel's signatures: {first[:200]}",
                                             "serve_as_is needs a SavedModel folder with its saved_model.pb")]) from None
    explicit_output = model.output_name if "output_name" in model.model_fields_set else None
    served = choose_signature(signatures, model.signature, tuple(model.input_shape), explicit_output)
    if isinstance(served, list):
        raise SpecError([resolved.diagnostic(key, message, hint) for key, message, hint in served])
    return dataclasses.replace(resolved, input_name=served.input.key, output_name=served.output.key,
                               input_dtype=served.input.dtype, served=served)


def _read(resolved: ResolvedSpec, model: SavedModelModel) -> dict[str, SignatureFacts]:
    location = model.path.rstrip("/")
    if is_object_store(location):
        fs = filesystem(location, storage_params(model.storage))
        bare = location[location.index("://") + 3:] + "/" + SAVED_MODEL_FILE
        if not fs.exists(bare):
            raise FileNotFoundError(bare)
        with fs.open(bare, "rb") as stream:
            return read_signatures(stream, int(fs.size(bare)))
    path = local_path(Path(resolved.file).parent, location) / SAVED_MODEL_FILE
    with path.open("rb") as stream:
        return read_signatures(stream, path.stat().st_size)


Problem = tuple[tuple[Any, ...], str, str]


def _describe(tensors: tuple[TensorFacts, ...]) -> str:
    return ", ".join(f"{t.key} ({t.dtype})" for t in tensors) or "none"


def choose_signature(signatures: dict[str, SignatureFacts], name: str, example_shape: tuple[int, ...],
                     output_key: str | None) -> ServedSignature | list[Problem]:
    """The signature ``name`` with its one input and the output verify measures, or the problems (key
    path, message, hint) that stop it. ``output_key`` is the spec's ``model.output_name`` when it is set."""
    available = ", ".join(sorted(signatures)) or "none"
    signature = signatures.get(name)
    if signature is None:
        return [(_SIGNATURE_KEY, f"the SavedModel has no signature {name!r}", f"its signatures: {available}")]
    problems: list[Problem] = []
    strings = [t.key for t in signature.inputs if t.dtype == "string"]
    if strings:
        return [(_SIGNATURE_KEY, f"signature {name!r} takes serialized strings ({', '.join(strings)}): a "
                 "regress/classify signature, which verify cannot feed from the data",
                 f"pick a predict signature (tensors in, tensors out); every signature is still served: {available}")]
    if len(signature.inputs) != 1:
        return [(_SIGNATURE_KEY, f"signature {name!r} has {len(signature.inputs)} inputs "
                 f"({_describe(signature.inputs)}); verify and warmup feed one input", "pick a signature with one input")]
    (tensor,) = signature.inputs
    if tensor.dtype not in _INPUT_DTYPES:
        problems.append((_SIGNATURE_KEY, f"signature {name!r} takes {tensor.key} as {tensor.dtype}; the data feeds "
                         f"{', '.join(_INPUT_DTYPES)}", "pick a signature with a float32 or integer input"))
    if tensor.shape is not None and tensor.shape:
        expected = tensor.shape[1:]
        if len(expected) != len(example_shape) or any(e is not None and e != d for e, d in zip(expected, example_shape)):
            shown = ["None" if d is None else str(d) for d in tensor.shape]
            problems.append((("model", "input_shape"), f"signature {name!r} takes {tensor.key} of shape "
                             f"[{', '.join(shown)}], the spec says {list(example_shape)} per example",
                             "make model.input_shape the signature's shape without the batch axis"))
    floats = [t for t in signature.outputs if t.dtype.startswith(("float", "bfloat"))]
    output: TensorFacts | None = None
    if output_key is not None:
        output = signature.output(output_key)
        if output is None:
            problems.append((_OUTPUT_KEY, f"signature {name!r} has no output {output_key!r}",
                             f"its outputs: {_describe(signature.outputs)}"))
        elif output not in floats:
            problems.append((_OUTPUT_KEY, f"output {output_key!r} of signature {name!r} is {output.dtype}: verify "
                             "measures scores or values (float), not class ids",
                             f"name a float output: {_describe(tuple(floats))}"))
    elif len(floats) == 1:
        output = floats[0]
    elif not floats:
        problems.append((_SIGNATURE_KEY, f"signature {name!r} has no float output ({_describe(signature.outputs)}); "
                         "verify measures one", "pick a signature with a float output (scores or values)"))
    else:
        problems.append((_OUTPUT_KEY, f"signature {name!r} has {len(floats)} float outputs ({_describe(tuple(floats))}) "
                         "and the spec names none", f"set model.output_name to the one verify, the clients and "
                         f"model_info.json use, e.g. output_name: {floats[0].key}"))
    if problems or output is None:
        return problems
    return ServedSignature(name=name, method=signature.method, input=tensor, output=output,
                           outputs=signature.outputs, example_shape=tuple(example_shape))
