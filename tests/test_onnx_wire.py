"""Serving reads an ONNX file's signature from the protobuf wire format, without the onnx package:
the same inputs, outputs and metadata as ``onnx`` reads, and a reason for bytes that are not a model."""

from __future__ import annotations

import onnx
import pytest
from onnx.external_data_helper import _get_all_tensors, uses_external_data

from lstm_plugin.model.model_files import OnnxSignature, onnx_signature


def signature_by_onnx(blob: bytes) -> OnnxSignature:
    proto = onnx.ModelProto()
    proto.ParseFromString(blob)
    inputs = {
        item.name: tuple(
            d.dim_value if d.HasField("dim_value") else None for d in item.type.tensor_type.shape.dim
        )
        for item in proto.graph.input
    }
    return OnnxSignature(
        inputs=inputs,
        outputs=tuple(item.name for item in proto.graph.output),
        properties={entry.key: entry.value for entry in proto.metadata_props},
        input_types={item.name: item.type.tensor_type.elem_type for item in proto.graph.input},
        external=tuple(t.name for t in _get_all_tensors(proto) if uses_external_data(t)),
    )


@pytest.mark.parametrize("name", ["AAPL", "universal"])
def test_the_wire_reader_reads_what_onnx_reads(trained, name):
    record = trained["outcomes"][name].record
    blob = record.read_bytes()
    found = onnx_signature(blob)
    assert found == signature_by_onnx(blob)
    assert isinstance(found, OnnxSignature) and found.properties["symbol"] == record.symbol
    assert next(iter(found.inputs.values()))[1:] == (
        record.metadata["window"],
        len(record.metadata["features"]),
    )


@pytest.mark.parametrize(
    "damage", [lambda b: b[: len(b) // 2], lambda b: b"\xff" * 64, lambda b: b"", lambda b: b"\x0a\x05ab"]
)
def test_bytes_that_are_not_a_model_get_a_reason(trained, damage):
    blob = trained["outcomes"]["MSFT"].record.read_bytes()
    found = onnx_signature(damage(blob))
    assert isinstance(found, str) and found.startswith("not a readable ONNX model")
