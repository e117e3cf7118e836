"""What serving reads of an ONNX file — input shapes and types, output names, metadata, and any tensor
that keeps its data outside the file — straight from the protobuf wire format.

Importing the ``onnx`` package costs about a second (it loads ``ml_dtypes``), more than a warm
``lstm-plugin predict`` should take in all; the few fields serving checks are simple to read, and
every other field (the weights' bytes, names) is skipped by its length without being decoded.
Field numbers are those of ``onnx.proto``; a test checks the result against the ``onnx`` package.

External data: a tensor may say ``data_location: EXTERNAL`` and name a file (``location``) that
onnxruntime then opens, relative to the working directory for a model loaded from bytes. The
registry writes self-contained models only, so every tensor is visited — initializers, sparse
initializers, constants in node attributes, subgraphs (``If``, ``Loop``), functions and training
graphs — and any external reference is reported, before onnxruntime ever sees the bytes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
# onnx.proto field numbers
_MODEL_GRAPH, _MODEL_METADATA, _MODEL_TRAINING, _MODEL_FUNCTIONS = 7, 14, 20, 25
_GRAPH_NODE, _GRAPH_INITIALIZER, _GRAPH_SPARSE = 1, 5, 15
_GRAPH_INPUT, _GRAPH_OUTPUT = 11, 12
_NODE_ATTRIBUTE, _FUNCTION_NODE = 5, 3
_ATTRIBUTE_TENSOR, _ATTRIBUTE_GRAPH, _ATTRIBUTE_TENSORS, _ATTRIBUTE_GRAPHS = 5, 6, 10, 11
_ATTRIBUTE_SPARSE, _ATTRIBUTE_SPARSES = 22, 23
_TRAINING_GRAPHS = (1, 2)  # TrainingInfoProto: initialization, algorithm
_SPARSE_TENSORS = (1, 2)  # SparseTensorProto: values, indices
_TENSOR_NAME, _TENSOR_EXTERNAL, _TENSOR_LOCATION = 8, 13, 14
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR, _TENSOR_ELEM_TYPE, _TENSOR_SHAPE, _SHAPE_DIM, _DIM_VALUE = 1, 1, 2, 1, 1
_ENTRY_KEY, _ENTRY_VALUE = 1, 2
_MAX_DEPTH = 64  # subgraphs nested deeper than this are not a model anyone exported


@dataclass(frozen=True)
class WireModel:
    """What :func:`read_signature` found in a serialised ModelProto."""

    inputs: dict[str, tuple[int | None, ...]]
    outputs: tuple[str, ...]
    properties: dict[str, str]
    #: each input's element type (``onnx.TensorProto.DataType``: 1 is float32), 0 when not a tensor
    input_types: dict[str, int] = field(default_factory=dict)
    #: names of tensors whose data lives outside the file, with the location they name
    external: tuple[str, ...] = ()


def _varint(buf: memoryview, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: memoryview) -> Iterator[tuple[int, int | memoryview]]:
    """``(field number, value)`` of one message: an int for varints, the bytes of anything else."""
    pos, end = 0, len(buf)
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        value: int | memoryview
        if number == 0:
            raise ValueError("field number 0")
        if wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            value, pos = buf[pos : pos + size], pos + size
        elif wire == _BYTES:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        else:
            raise ValueError(f"wire type {wire}")
        if pos > end:
            raise ValueError("truncated field")
        yield number, value


def _message(value: int | memoryview) -> memoryview:
    if isinstance(value, int):
        raise ValueError("a number where a message belongs")
    return value


def _text(value: int | memoryview) -> str:
    return bytes(_message(value)).decode("utf-8")


def _input(value_info: memoryview) -> tuple[str, tuple[int | None, ...], int]:
    """An input's name, shape and element type."""
    name, dims, elem_type = "", [], 0
    for number, value in _fields(value_info):
        if number == _VALUE_NAME:
            name = _text(value)
        elif number == _VALUE_TYPE:
            for type_number, tensor in _fields(_message(value)):
                if type_number != _TYPE_TENSOR:
                    continue
                for tensor_number, item in _fields(_message(tensor)):
                    if tensor_number == _TENSOR_ELEM_TYPE and isinstance(item, int):
                        elem_type = item
                    if tensor_number != _TENSOR_SHAPE:
                        continue
                    for dim_number, dim in _fields(_message(item)):
                        if dim_number == _SHAPE_DIM:
                            found = [v for n, v in _fields(_message(dim)) if n == _DIM_VALUE]
                            dims.append(int(found[-1]) if found and isinstance(found[-1], int) else None)
    return name, tuple(dims), elem_type


def _external_tensor(tensor: memoryview) -> str | None:
    """``name (location)`` of a tensor that keeps its data in another file, else ``None``."""
    name, location, external = "", "", False
    for number, value in _fields(tensor):
        if number == _TENSOR_NAME:
            name = _text(value)
        elif number == _TENSOR_LOCATION and value == _EXTERNAL:
            external = True
        elif number == _TENSOR_EXTERNAL:
            external = True
            entry = dict(_fields(_message(value)))
            if bytes(_message(entry.get(_ENTRY_KEY, memoryview(b"")))) == b"location":
                location = _text(entry.get(_ENTRY_VALUE, memoryview(b"")))
    if not external:
        return None
    return f"{name or '(unnamed)'} ({location!r})" if location else name or "(unnamed)"


class _ExternalFinder:
    """Walks every tensor of a model (see the module docstring) and collects external references."""

    def __init__(self) -> None:
        self.found: list[str] = []

    def tensor(self, value: int | memoryview) -> None:
        hit = _external_tensor(_message(value))
        if hit is not None:
            self.found.append(hit)

    def sparse(self, value: int | memoryview) -> None:
        for number, item in _fields(_message(value)):
            if number in _SPARSE_TENSORS:
                self.tensor(item)

    def graph(self, value: int | memoryview, depth: int) -> None:
        if depth > _MAX_DEPTH:
            raise ValueError("subgraphs nested too deeply")
        for number, item in _fields(_message(value)):
            if number == _GRAPH_INITIALIZER:
                self.tensor(item)
            elif number == _GRAPH_SPARSE:
                self.sparse(item)
            elif number == _GRAPH_NODE:
                self.node(item, depth)

    def node(self, value: int | memoryview, depth: int) -> None:
        for number, attribute in _fields(_message(value)):
            if number != _NODE_ATTRIBUTE:
                continue
            for kind, item in _fields(_message(attribute)):
                if kind in (_ATTRIBUTE_TENSOR, _ATTRIBUTE_TENSORS):
                    self.tensor(item)
                elif kind in (_ATTRIBUTE_SPARSE, _ATTRIBUTE_SPARSES):
                    self.sparse(item)
                elif kind in (_ATTRIBUTE_GRAPH, _ATTRIBUTE_GRAPHS):
                    self.graph(item, depth + 1)

    def model(self, number: int, value: int | memoryview) -> None:
        if number == _MODEL_GRAPH:
            self.graph(value, 0)
        elif number == _MODEL_TRAINING:
            for part, item in _fields(_message(value)):
                if part in _TRAINING_GRAPHS:
                    self.graph(item, 0)
        elif number == _MODEL_FUNCTIONS:
            for part, item in _fields(_message(value)):
                if part == _FUNCTION_NODE:
                    self.node(item, 0)


def read_signature(blob: bytes) -> WireModel:
    """Inputs with their shapes and types, output names, metadata properties and external tensors of a
    serialised ModelProto; :class:`ValueError` when the bytes are not one."""
    inputs: dict[str, tuple[int | None, ...]] = {}
    input_types: dict[str, int] = {}
    outputs: list[str] = []
    properties: dict[str, str] = {}
    finder = _ExternalFinder()
    graphs = 0
    for number, value in _fields(memoryview(blob)):
        finder.model(number, value)
        if number == _MODEL_GRAPH:
            graphs += 1
            for graph_number, item in _fields(_message(value)):
                if graph_number == _GRAPH_INPUT:
                    name, shape, elem_type = _input(_message(item))
                    inputs[name], input_types[name] = shape, elem_type
                elif graph_number == _GRAPH_OUTPUT:
                    outputs.extend(_text(v) for n, v in _fields(_message(item)) if n == _VALUE_NAME)
        elif number == _MODEL_METADATA:
            entry = dict(_fields(_message(value)))
            empty = memoryview(b"")
            properties[_text(entry.get(_ENTRY_KEY, empty))] = _text(entry.get(_ENTRY_VALUE, empty))
    if not graphs:
        raise ValueError("no graph")
    return WireModel(inputs, tuple(outputs), properties, input_types, tuple(dict.fromkeys(finder.found)))
