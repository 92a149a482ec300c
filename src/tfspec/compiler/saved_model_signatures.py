"""A SavedModel's signatures, read from ``saved_model.pb`` without TensorFlow.

``saved_model.pb`` is a ``tensorflow.SavedModel`` protocol buffer. The compiler never imports TensorFlow
(nor its generated ``*_pb2`` modules, which import all of it), so this module reads the few fields it needs
straight from the protobuf wire format: the meta graph tagged ``serve`` and its ``signature_def`` map
(each signature's method name and its inputs' and outputs' keys, dtypes and shapes). Everything else —
the graph, the variables, the object graph — is skipped by its length, never decoded, so a large graph
costs a seek, not memory.

Field numbers, from TensorFlow's ``tensorflow/core/protobuf/saved_model.proto``, ``meta_graph.proto``,
``tensorflow/core/framework/tensor_shape.proto`` and ``types.proto`` (checked against the generated
descriptors of TensorFlow 2.21 in ``tests/compiler/test_saved_model_signatures.py``).
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Iterator
from typing import BinaryIO

__all__ = ["TensorFacts", "SignatureFacts", "ServedSignature", "SignatureReadError", "read_signatures", "SERVE_TAG", "DTYPE_NAMES"]

SERVE_TAG = "serve"

# tensorflow.DataType enum values → numpy-style names (types.proto); others are named ``dtype_<n>``.
DTYPE_NAMES = {1: "float32", 2: "float64", 3: "int32", 4: "uint8", 5: "int16", 6: "int8", 7: "string",
               8: "complex64", 9: "int64", 10: "bool", 14: "bfloat16", 17: "uint16", 18: "complex128",
               19: "float16", 22: "uint32", 23: "uint64"}

# Field numbers (see the module docstring).
_SAVED_MODEL_META_GRAPHS = 2              # SavedModel.meta_graphs
_META_GRAPH_INFO = 1                      # MetaGraphDef.meta_info_def
_META_GRAPH_SIGNATURES = 5                # MetaGraphDef.signature_def (map<string, SignatureDef>)
_META_INFO_TAGS = 4                       # MetaInfoDef.tags
_MAP_KEY, _MAP_VALUE = 1, 2               # every map entry
_SIGNATURE_INPUTS, _SIGNATURE_OUTPUTS, _SIGNATURE_METHOD = 1, 2, 3
_TENSOR_NAME, _TENSOR_DTYPE, _TENSOR_SHAPE = 1, 2, 3
_SHAPE_DIM, _SHAPE_UNKNOWN_RANK = 2, 3
_DIM_SIZE = 1

# Signatures TensorFlow writes for itself (signature_constants.INIT_OP_SIGNATURE_KEY, TRAIN_OP_SIGNATURE_KEY):
# not callable, not listed by ``tf.saved_model.load(...).signatures``.
_INTERNAL_SIGNATURES = frozenset({"__saved_model_init_op", "__saved_model_train_op"})

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
# Length-delimited fields this module decodes are small; a bigger one is a corrupt file, not a signature.
_MAX_DECODED = 64 * 1024 * 1024


class SignatureReadError(ValueError):
    """``saved_model.pb`` is not a SavedModel this module can read (truncated, corrupt, no serve graph)."""


@dataclasses.dataclass(frozen=True)
class TensorFacts:
    """One input or output of a signature: its key, dtype and shape (batch axis included; None for an
    unknown dimension; ``shape`` None for an unknown rank)."""

    key: str
    dtype: str
    shape: tuple[int | None, ...] | None

    def to_json(self) -> dict[str, object]:
        return {"dtype": self.dtype, "shape": None if self.shape is None else list(self.shape)}


@dataclasses.dataclass(frozen=True)
class SignatureFacts:
    """One signature of the serve meta graph: its name, method (``tensorflow/serving/predict``,
    ``.../classify``, ``.../regress``) and its inputs and outputs by key (sorted)."""

    name: str
    method: str
    inputs: tuple[TensorFacts, ...]
    outputs: tuple[TensorFacts, ...]

    def input(self, key: str) -> TensorFacts | None:
        return next((t for t in self.inputs if t.key == key), None)

    def output(self, key: str) -> TensorFacts | None:
        return next((t for t in self.outputs if t.key == key), None)


@dataclasses.dataclass(frozen=True)
class ServedSignature:
    """The signature a SavedModel served as it is is used through: its one input, the output that verify,
    the clients and ``model_info.json`` read (among all of ``outputs``) and the spec's example shape."""

    name: str
    method: str
    input: TensorFacts
    output: TensorFacts
    outputs: tuple[TensorFacts, ...]
    example_shape: tuple[int, ...]


def _varint(stream: BinaryIO) -> int:
    shift = result = 0
    while True:
        byte = stream.read(1)
        if not byte:
            raise SignatureReadError("saved_model.pb ends inside a number")
        result |= (byte[0] & 0x7F) << shift
        if not byte[0] & 0x80:
            return result
        shift += 7
        if shift > 63:
            raise SignatureReadError("saved_model.pb holds a malformed number")


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _fields(stream: BinaryIO, end: int) -> Iterator[tuple[int, int, int]]:
    """``(field number, wire type, value)`` up to offset ``end``; for length-delimited fields the value
    is the length and the stream stands at the field's first byte (the caller reads or skips it)."""
    while stream.tell() < end:
        key = _varint(stream)
        number, wire = key >> 3, key & 7
        if wire == _VARINT:
            yield number, wire, _varint(stream)
        elif wire == _BYTES:
            length = _varint(stream)
            start = stream.tell()
            if start + length > end:
                raise SignatureReadError("saved_model.pb is truncated")
            yield number, wire, length
            stream.seek(start + length)  # skipped, or re-positioned after the caller read it
        elif wire in (_FIXED64, _FIXED32):
            stream.seek(8 if wire == _FIXED64 else 4, io.SEEK_CUR)
        else:
            raise SignatureReadError(f"saved_model.pb has an unknown wire type {wire}")
    if stream.tell() != end:
        raise SignatureReadError("saved_model.pb is truncated")


def _read(stream: BinaryIO, length: int) -> bytes:
    if length > _MAX_DECODED:
        raise SignatureReadError("saved_model.pb holds a signature field too large to be one")
    data = stream.read(length)
    if len(data) != length:
        raise SignatureReadError("saved_model.pb is truncated")
    return data


def _message(data: bytes) -> Iterator[tuple[int, int, int | bytes]]:
    """The fields of a small decoded message: varints as ints, length-delimited fields as bytes."""
    stream = io.BytesIO(data)
    for number, wire, value in _fields(stream, len(data)):
        yield number, wire, _read(stream, value) if wire == _BYTES else value


def _shape(data: bytes) -> tuple[int | None, ...] | None:
    dims: list[int | None] = []
    for number, _, value in _message(data):
        if number == _SHAPE_UNKNOWN_RANK and value:
            return None
        if number == _SHAPE_DIM:
            assert isinstance(value, bytes)
            size = 0
            for dim_field, _, dim_value in _message(value):
                if dim_field == _DIM_SIZE:
                    assert isinstance(dim_value, int)
                    size = _signed64(dim_value)
            dims.append(None if size < 0 else size)
    return tuple(dims)


def _tensor(key: str, data: bytes) -> TensorFacts:
    dtype, shape = 0, None
    has_shape = False
    for number, _, value in _message(data):
        if number == _TENSOR_DTYPE:
            assert isinstance(value, int)
            dtype = value
        elif number == _TENSOR_SHAPE:
            assert isinstance(value, bytes)
            shape, has_shape = _shape(value), True
    # no tensor_shape field: the shape is unknown (TensorInfo leaves it unset for sparse/composite tensors)
    return TensorFacts(key, DTYPE_NAMES.get(dtype, f"dtype_{dtype}"), shape if has_shape else None)


def _map_entry(data: bytes) -> tuple[str, bytes]:
    key, value = "", b""
    for number, _, field in _message(data):
        if number == _MAP_KEY and isinstance(field, bytes):
            key = field.decode("utf-8", "replace")
        elif number == _MAP_VALUE and isinstance(field, bytes):
            value = field
    return key, value


def _signature(name: str, data: bytes) -> SignatureFacts:
    inputs, outputs, method = [], [], ""
    for number, _, value in _message(data):
        if number in (_SIGNATURE_INPUTS, _SIGNATURE_OUTPUTS) and isinstance(value, bytes):
            key, tensor = _map_entry(value)
            (inputs if number == _SIGNATURE_INPUTS else outputs).append(_tensor(key, tensor))
        elif number == _SIGNATURE_METHOD and isinstance(value, bytes):
            method = value.decode("utf-8", "replace")
    return SignatureFacts(name, method, tuple(sorted(inputs, key=lambda t: t.key)),
                          tuple(sorted(outputs, key=lambda t: t.key)))


def _meta_graph(stream: BinaryIO, end: int) -> tuple[set[str], dict[str, SignatureFacts]]:
    tags: set[str] = set()
    signatures: dict[str, SignatureFacts] = {}
    for number, wire, length in _fields(stream, end):
        if wire != _BYTES:
            continue
        if number == _META_GRAPH_INFO:
            # MetaInfoDef is small unless it holds a stripped op list: walk it, decode only the tags
            info_end = stream.tell() + length
            for info_field, info_wire, info_length in _fields(stream, info_end):
                if info_field == _META_INFO_TAGS and info_wire == _BYTES:
                    tags.add(_read(stream, info_length).decode("utf-8", "replace"))
        elif number == _META_GRAPH_SIGNATURES:
            name, value = _map_entry(_read(stream, length))
            if name not in _INTERNAL_SIGNATURES:
                signatures[name] = _signature(name, value)
    return tags, signatures


def read_signatures(stream: BinaryIO, size: int) -> dict[str, SignatureFacts]:
    """The signatures of the meta graph tagged ``serve`` (what TF Serving and ``tf.saved_model.load``
    load) of the ``saved_model.pb`` in ``stream`` (seekable, ``size`` bytes), by name."""
    graphs: list[tuple[set[str], dict[str, SignatureFacts]]] = []
    stream.seek(0)
    for number, wire, length in _fields(stream, size):
        if number == _SAVED_MODEL_META_GRAPHS and wire == _BYTES:
            graphs.append(_meta_graph(stream, stream.tell() + length))
    for tags, signatures in graphs:
        if SERVE_TAG in tags:
            return signatures
    if not graphs:
        raise SignatureReadError("saved_model.pb holds no meta graph")
    found = sorted({tag for tags, _ in graphs for tag in tags})
    raise SignatureReadError(f"saved_model.pb has no meta graph tagged {SERVE_TAG!r} (tags: {', '.join(found) or 'none'})")
