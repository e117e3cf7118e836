"""Model versions written by an attacker: real ONNX graphs, edited with the ``onnx`` package, registered as a
newer version of a symbol with a matching sha256 (what a careful tamperer does). Used by the hostile table
(``tests/hostile_registry_cases.py``) and the serving tests (``tests/test_broken_versions.py``)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

#: ``change(model, folder)``: edits the parsed graph in place; ``folder`` is where the command runs
Change = Callable[..., None]


def rewrite(onnx_path: Path, change: Change, folder: Path) -> None:
    import onnx

    model = onnx.load_from_string(onnx_path.read_bytes())
    change(model, folder)
    onnx_path.write_bytes(model.SerializeToString())


def rehashed(meta_path: Path, metadata: dict) -> dict:
    """``metadata`` with the sha256 of the (replaced) ONNX file beside it."""
    metadata["sha256"] = hashlib.sha256(meta_path.with_suffix(".onnx").read_bytes()).hexdigest()
    return metadata


def crafted(change: Change) -> Callable[[dict, Path], dict]:
    """An edit for ``damage_newest``: v2's graph changed by ``change``, its metadata re-hashed. The command
    runs in the case folder, three levels above ``M/specific/AAPL/v000002.json``."""

    def edit(metadata: dict, meta_path: Path) -> dict:
        rewrite(meta_path.with_suffix(".onnx"), change, meta_path.parents[3])
        return rehashed(meta_path, metadata)

    return edit


def craft_version(registry_root: Path, symbol: str, change: Change, trained_at: str, folder: Path) -> Path:
    """Register v1's graph, changed by ``change``, as the next version of ``symbol`` stamped ``trained_at``
    (sha256 matching). Returns the new ONNX file."""
    from lstm_plugin import ModelRegistry

    registry = ModelRegistry(registry_root)
    first = registry.resolve("specific", symbol)
    record = registry.publish(
        "specific", symbol, first.read_bytes(), dict(first.metadata, trained_at=trained_at)
    )
    meta_path = record.onnx_path.with_suffix(".json")
    rewrite(record.onnx_path, change, folder)
    meta_path.write_text(json.dumps(rehashed(meta_path, json.loads(meta_path.read_text()))))
    return record.onnx_path


def _first_weights(model):
    import onnx

    return next(
        t for t in model.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) >= 1
    )


def external_weights(location: str) -> Change:
    """The first float initializer's data moved to the file ``location`` names, which is written, with the
    true weights, in the folder the command runs in: served, the model would answer as v1 does."""

    def change(model, folder: Path) -> None:
        import onnx
        from onnx import numpy_helper

        tensor = _first_weights(model)
        values = numpy_helper.to_array(tensor)
        (folder / "outside.bin").write_bytes(values.tobytes())
        tensor.ClearField("raw_data")
        tensor.ClearField("float_data")
        tensor.data_location = onnx.TensorProto.EXTERNAL
        for key, value in (("location", location), ("offset", "0"), ("length", str(values.nbytes))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value

    return change


def external_constant(model, folder: Path) -> None:
    """A ``Constant`` node whose tensor lives in another file, inside an ``If`` subgraph: the reference is
    as hostile wherever it hides."""
    import onnx
    from onnx import helper

    value = helper.make_tensor("hidden", onnx.TensorProto.FLOAT, [1], [0.0])
    value.ClearField("float_data")
    value.data_location = onnx.TensorProto.EXTERNAL
    entry = value.external_data.add()
    entry.key, entry.value = "location", "outside.bin"
    branch = helper.make_graph(
        [helper.make_node("Constant", [], ["hidden_out"], value=value)],
        "branch",
        [],
        [helper.make_tensor_value_info("hidden_out", onnx.TensorProto.FLOAT, [1])],
    )
    condition = helper.make_tensor("always", onnx.TensorProto.BOOL, [], [True])
    model.graph.node.append(helper.make_node("Constant", [], ["cond"], value=condition))
    model.graph.node.append(
        helper.make_node("If", ["cond"], ["unused"], then_branch=branch, else_branch=branch)
    )


def double_input(model, folder: Path) -> None:
    import onnx

    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.DOUBLE


def nan_head_bias(model, folder: Path) -> None:
    from onnx import numpy_helper

    tensor = next(t for t in model.graph.initializer if t.name.endswith("head.bias"))
    values = numpy_helper.to_array(tensor).copy()
    values[...] = np.nan
    tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))


def unknown_operator(model, folder: Path) -> None:
    """A node of an operator no runtime has: onnxruntime refuses to load the graph."""
    model.graph.node[-1].op_type = "NoSuchOperator"


def _redirect_output(model, name: str) -> str:
    """Rename the node output ``name`` to ``<name>_raw`` and return the new name, so a node added after it
    can produce ``name``."""
    raw = f"{name}_raw"
    for node in model.graph.node:
        node.output[:] = [raw if out == name else out for out in node.output]
    return raw


def fails_at_run(model, folder: Path) -> None:
    """The expected return reshaped to 3 elements: loads, fails when a batch is not 3 windows."""
    import onnx
    from onnx import helper

    raw = _redirect_output(model, "expected_return")
    shape = helper.make_tensor("three", onnx.TensorProto.INT64, [1], [3])
    model.graph.node.append(helper.make_node("Constant", [], ["three_shape"], value=shape))
    model.graph.node.append(helper.make_node("Reshape", [raw, "three_shape"], ["expected_return"]))


def nan_when_last_return_falls(model, folder: Path) -> None:
    """``expected_return + 0 * sqrt(ret_1 of the window's last bar)``: NaN exactly on bars whose close fell
    (a feature-dependent NaN, so a version can be sound at one bar and broken at a later one)."""
    import onnx
    from onnx import helper

    raw = _redirect_output(model, "expected_return")
    model.graph.initializer.extend(
        [
            helper.make_tensor("start", onnx.TensorProto.INT64, [3], [0, -1, 0]),
            helper.make_tensor("stop", onnx.TensorProto.INT64, [3], [2**62, 2**62, 1]),
            helper.make_tensor("zero", onnx.TensorProto.FLOAT, [], [0.0]),
            helper.make_tensor("flat", onnx.TensorProto.INT64, [1], [-1]),
        ]
    )
    model.graph.node.extend(
        [
            helper.make_node("Slice", ["features", "start", "stop"], ["last_ret"]),
            helper.make_node("Reshape", ["last_ret", "flat"], ["last_ret_flat"]),
            helper.make_node("Sqrt", ["last_ret_flat"], ["root"]),
            helper.make_node("Mul", ["root", "zero"], ["nothing_or_nan"]),
            helper.make_node("Add", [raw, "nothing_or_nan"], ["expected_return"]),
        ]
    )
