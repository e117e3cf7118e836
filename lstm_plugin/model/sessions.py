"""One way to open an onnxruntime session, for the export checks and for serving alike."""

from __future__ import annotations

from collections.abc import Sequence

import onnxruntime as ort

__all__ = ["open_session"]


def open_session(
    onnx_bytes: bytes, intra_op_threads: int = 1, providers: Sequence[str] = ("CPUExecutionProvider",)
) -> ort.InferenceSession:
    """A sequential session with ``intra_op_threads`` threads and onnxruntime's own logging off: a failure
    is raised, and our message names the model.

    One thread per session by default: many small sessions side by side would otherwise fight
    over the cores (``inference.intra_op_threads``).
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 4  # fatal only: its errors reach us as exceptions
    return ort.InferenceSession(onnx_bytes, options, providers=list(providers))
