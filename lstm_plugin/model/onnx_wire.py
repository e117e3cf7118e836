"""What serving reads of an ONNX file — input shapes, output names, metadata — straight from the
protobuf wire format.

Importing the ``onnx`` package costs about a second (it loads ``ml_dtypes``), more than a warm
``lstm-plugin predict`` should take in all; the few fields serving checks are simple to read, and
every other field (the weights, the nodes) is skipped by its length without being decoded. Field
numbers are those of ``onnx.proto``; a test checks the result against the ``onnx`` package.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["read_signature"]

_VARINT, _FIXED64, _BYTES, _FIXED32 = 0, 1, 2, 5
# onnx.proto field numbers
_MODEL_GRAPH, _MODEL_METADATA = 7, 14
_GRAPH_INPUT, _GRAPH_OUTPUT = 11, 12
_VALUE_NAME, _VALUE_TYPE = 1, 2
_TYPE_TENSOR, _TENSOR_SHAPE, _SHAPE_DIM, _DIM_VALUE = 1, 2, 1, 1
_ENTRY_KEY, _ENTRY_VALUE = 1, 2


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


def _input_shape(value_info: memoryview) -> tuple[str, tuple[int | None, ...]]:
    name, dims = "", []
    for number, value in _fields(value_info):
        if number == _VALUE_NAME:
            name = _text(value)
        elif number == _VALUE_TYPE:
            for type_number, tensor in _fields(_message(value)):
                if type_number != _TYPE_TENSOR:
                    continue
                for tensor_number, shape in _fields(_message(tensor)):
                    if tensor_number != _TENSOR_SHAPE:
                        continue
                    for dim_number, dim in _fields(_message(shape)):
                        if dim_number == _SHAPE_DIM:
                            found = [v for n, v in _fields(_message(dim)) if n == _DIM_VALUE]
                            dims.append(int(found[-1]) if found and isinstance(found[-1], int) else None)
    return name, tuple(dims)


def read_signature(
    blob: bytes,
) -> tuple[dict[str, tuple[int | None, ...]], tuple[str, ...], dict[str, str]]:
    """``(inputs with their shapes, output names, metadata properties)`` of a serialised ModelProto;
    :class:`ValueError` when the bytes are not one."""
    inputs: dict[str, tuple[int | None, ...]] = {}
    outputs: list[str] = []
    properties: dict[str, str] = {}
    graphs = 0
    for number, value in _fields(memoryview(blob)):
        if number == _MODEL_GRAPH:
            graphs += 1
            for graph_number, item in _fields(_message(value)):
                if graph_number == _GRAPH_INPUT:
                    name, shape = _input_shape(_message(item))
                    inputs[name] = shape
                elif graph_number == _GRAPH_OUTPUT:
                    outputs.extend(_text(v) for n, v in _fields(_message(item)) if n == _VALUE_NAME)
        elif number == _MODEL_METADATA:
            entry = dict(_fields(_message(value)))
            empty = memoryview(b"")
            properties[_text(entry.get(_ENTRY_KEY, empty))] = _text(entry.get(_ENTRY_VALUE, empty))
    if not graphs:
        raise ValueError("no graph")
    return inputs, tuple(outputs), properties
