"""torch -> ONNX with a pinned opset and a dynamic batch axis, then a parity check against torch.

A model whose onnxruntime outputs differ from torch's at batch sizes 1, 7 or 64 raises
:class:`ModelError` and is never registered. torch is imported only when exporting, so serving
(which needs the graph's input and output names from here) starts without it.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import onnx

from lstm_plugin.core.errors import ModelError
from lstm_plugin.model.model_files import INPUT_NAME, OUTPUT_NAMES
from lstm_plugin.model.sessions import open_session

if TYPE_CHECKING:
    from lstm_plugin.model.network import EnsembleForecaster, Forecaster

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

OPSET = 17
PARITY_BATCHES = (1, 7, 64)
PARITY_TOLERANCE = 1e-4


def opset_for(exporter: str) -> int:
    """The pinned opset: 17 for the TorchScript exporter; the dynamo exporter needs at least 18."""
    return OPSET if exporter == "torchscript" else max(OPSET, 18)


def _export_file(forecaster: Forecaster | EnsembleForecaster, example: Any, path: str, exporter: str) -> None:
    import torch

    graph = forecaster.serving().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if exporter == "dynamo":
            program = torch.onnx.export(
                graph,
                (example,),
                dynamo=True,
                opset_version=opset_for("dynamo"),
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_shapes=({0: torch.export.Dim("batch")},),
                verbose=False,
            )
            if program is None:  # pragma: no cover - dynamo returns a program
                raise ModelError("export › the dynamo exporter returned nothing")
            program.save(path)
        else:
            torch.onnx.export(
                graph,
                (example,),
                path,
                dynamo=False,
                opset_version=opset_for("torchscript"),
                input_names=[INPUT_NAME],
                output_names=list(OUTPUT_NAMES),
                dynamic_axes={INPUT_NAME: {0: "batch"}},
            )


def export_onnx(
    forecaster: Forecaster | EnsembleForecaster,
    windows: np.ndarray,
    metadata: Mapping[str, Any],
    exporter: str = "torchscript",
) -> bytes:
    """Serialised ONNX of ``forecaster`` with ``metadata`` embedded as model properties.

    ``windows`` are real samples (at least 2; the example batch must not be 1 or the dynamo
    exporter freezes the batch axis); they also feed the parity check.
    """
    import torch

    if windows.shape[0] < 2:
        raise ModelError("export › need at least 2 sample windows for the example batch")
    forecaster = forecaster.cpu().eval()
    example = torch.as_tensor(windows[:2])
    with tempfile.TemporaryDirectory(prefix="lstm_plugin_export_") as folder:
        path = os.path.join(folder, "model.onnx")
        try:
            _export_file(forecaster, example, path, exporter)
        except Exception as exc:  # the exporter raises many types; all mean "cannot export"
            raise ModelError(f"export › {exporter} exporter failed: {exc}") from exc
        proto = onnx.load(path)
    for key, value in metadata.items():
        entry = proto.metadata_props.add()
        entry.key = str(key)
        entry.value = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    blob = proto.SerializeToString()
    check_parity(forecaster, blob, windows)
    return blob


def check_parity(
    forecaster: Forecaster | EnsembleForecaster, onnx_bytes: bytes, windows: np.ndarray
) -> float:
    """Largest |onnxruntime - torch| over batch sizes 1, 7 and 64; raise :class:`ModelError` above
    tolerance."""
    import torch

    session = open_session(onnx_bytes)
    graph = forecaster.serving().eval()
    worst = 0.0
    for batch in PARITY_BATCHES:
        index = np.arange(batch) % windows.shape[0]
        x = np.ascontiguousarray(windows[index], dtype="float32")
        got = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
        with torch.no_grad():
            want = [t.numpy() for t in graph(torch.as_tensor(x))]
        for g, w in zip(got, want):
            if g.shape != w.shape:
                raise ModelError(f"export › parity check › batch {batch}: shape {g.shape} != torch {w.shape}")
            worst = max(worst, float(np.max(np.abs(g - w))))
        if worst > PARITY_TOLERANCE:
            raise ModelError(
                f"export › parity check › batch {batch}: onnxruntime differs from torch by {worst:.2e} "
                f"(tolerance {PARITY_TOLERANCE:g}); model not registered"
            )
    return worst


def verify_onnx(onnx_bytes: bytes, window: int, n_features: int) -> None:
    """Check bytes from a worker before they are registered: they load, take ``(batch, window, F)``
    at two batch sizes, and give finite probabilities that sum to 1. Raises :class:`ModelError`."""
    try:
        session = open_session(onnx_bytes)
        for batch in (1, 3):
            x = np.linspace(-1, 1, batch * window * n_features, dtype="float32").reshape(
                batch, window, n_features
            )
            probabilities, expected = session.run(list(OUTPUT_NAMES), {INPUT_NAME: x})
            if probabilities.shape != (batch, 3) or expected.shape != (batch,):
                raise ModelError(f"output shapes {probabilities.shape}, {expected.shape} for batch {batch}")
            if not (
                np.isfinite(probabilities).all() and np.allclose(probabilities.sum(axis=1), 1, atol=1e-4)
            ):
                raise ModelError("probabilities are not finite or do not sum to 1")
    except ModelError as exc:
        raise ModelError(f"verify › worker model rejected: {exc}") from None
    except Exception as exc:  # onnxruntime raises its own types for a corrupt graph
        raise ModelError(f"verify › worker model rejected: onnxruntime cannot run it: {exc}") from None
