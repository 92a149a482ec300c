"""A SavedModel's signatures, read from the SavedModel itself: for models served as they are (any
SavedModel — Keras, TF2 ``tf.Module``, TF1 / Estimator exports — ``model.serve_as_is``).

``load_signature`` picks the spec's ``model.signature``, checks that it is a predict signature (tensors in,
tensors out: a regress/classify signature takes serialized ``tf.Example`` strings, which verify cannot
build from the data) with one input, and finds its output; ``describe_signatures`` lists every signature
with its keys, dtypes and shapes (``signature.json``, the report).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelError
from .tf import import_tf

__all__ = ["Signature", "SIGNATURE_FILE", "load_signature", "describe_signatures", "read_signature_file",
           "signature_feed"]

SIGNATURE_FILE = "signature.json"
_KEY = ("model", "signature")


def _shape(spec: Any) -> list[int | None]:
    return [None if d is None else int(d) for d in spec.shape.as_list()] if spec.shape.rank is not None else []


def _tensors(specs: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {key: {"dtype": spec.dtype.name, "shape": _shape(spec)} for key, spec in sorted(specs.items())}


def _io(function: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    _, inputs = function.structured_input_signature
    return inputs, dict(function.structured_outputs)


def describe_signatures(loaded: Any) -> dict[str, dict[str, Any]]:
    """``{signature: {"inputs": {key: {dtype, shape}}, "outputs": {...}}}`` of a loaded SavedModel."""
    out = {}
    for name in sorted(loaded.signatures.keys()):
        inputs, outputs = _io(loaded.signatures[name])
        out[name] = {"inputs": _tensors(inputs), "outputs": _tensors(outputs)}
    return out


@dataclasses.dataclass
class Signature:
    """One predict signature of a loaded SavedModel: ``predict`` feeds its one input and returns its output."""

    name: str
    function: Any
    input_key: str
    output_key: str
    input_dtype: str
    input_shape: list[int | None]
    loaded: Any  # keeps the SavedModel's variables alive

    def predict(self, x: Any, batch_size: int = 256) -> np.ndarray:
        """Outputs for an array of examples or for a batched ``tf.data`` pipeline of features."""
        tf, _ = import_tf()
        if isinstance(x, np.ndarray):
            batches: Any = (x[i:i + batch_size] for i in range(0, len(x), batch_size))
        else:
            batches = x.as_numpy_iterator()
        parts = [self.function(**{self.input_key: tf.constant(b, dtype=self.input_dtype)})[self.output_key].numpy()
                 for b in batches]
        return np.concatenate(parts) if parts else np.zeros((0,), dtype=np.float32)

    def describe(self) -> dict[str, Any]:
        return {"signature": self.name, "input_key": self.input_key, "output_key": self.output_key,
                "input_dtype": self.input_dtype, "input_shape": self.input_shape}


def load_signature(path: Path, name: str, example_shape: list[int] | None = None,
                   output_key: str | None = None) -> Signature:
    """The predict signature ``name`` of the SavedModel at ``path`` (errors name ``model.signature``).

    ``output_key`` is the output the compiler chose (read from ``saved_model.pb`` at build: the spec's
    ``model.output_name``, or the one float output); without it the one float output is taken."""
    tf, _ = import_tf()
    loaded = tf.saved_model.load(str(path))
    available = sorted(loaded.signatures.keys())
    if name not in available:
        raise ModelError(_KEY, f"the SavedModel has no signature {name!r}",
                         "its signatures: " + (", ".join(available) or "none"))
    function = loaded.signatures[name]
    inputs, outputs = _io(function)
    strings = [key for key, spec in inputs.items() if spec.dtype == tf.string]
    if strings:
        raise ModelError(_KEY, f"signature {name!r} takes serialized strings ({', '.join(sorted(strings))}): a "
                         "regress/classify signature, which verify cannot feed from the data",
                         "pick a predict signature (tensors in, tensors out); every signature is still served: "
                         + ", ".join(available))
    if len(inputs) != 1:
        raise ModelError(_KEY, f"signature {name!r} has {len(inputs)} inputs ({', '.join(sorted(inputs))}); verify "
                         "and warmup feed one input", "pick a signature with one input")
    numeric = [key for key, spec in outputs.items() if spec.dtype.is_floating]
    if output_key is not None:
        if output_key not in numeric:
            raise ModelError(("model", "output_name"), f"signature {name!r} has no float output {output_key!r} "
                             f"(outputs: {', '.join(sorted(outputs))})", "rebuild the plan: tfspec build")
        numeric = [output_key]
    if len(numeric) != 1:
        raise ModelError(_KEY, f"signature {name!r} has {len(numeric)} float outputs ({', '.join(sorted(outputs))}); "
                         "verify measures one", "pick a signature with one float output")
    (input_key, spec), = inputs.items()
    shape = _shape(spec)
    if example_shape is not None and shape:
        expected = shape[1:]
        if len(expected) != len(example_shape) or any(e is not None and e != d for e, d in zip(expected, example_shape)):
            raise ModelError(("model", "input_shape"), f"signature {name!r} takes {input_key} of shape {shape}, the "
                             f"spec says {example_shape} per example", "make model.input_shape match the signature")
    return Signature(name, function, input_key, numeric[0], spec.dtype.name, shape, loaded)


def read_signature_file(folder: Path) -> dict[str, Any]:
    """The ``signature.json`` the train step wrote for a SavedModel served as it is."""
    return json.loads((Path(folder) / SIGNATURE_FILE).read_text("utf-8"))


def signature_feed(sample: Any, input_name: str) -> dict[str, Any]:
    """Keyword arguments of a signature call: ``{input_name: x}``, or a dict of named inputs as it is."""
    tf, _ = import_tf()
    if isinstance(sample, dict):
        return {k: tf.constant(v) for k, v in sample.items()}
    return {input_name: tf.constant(sample)}
