"""One way to open and run an onnxruntime session, for the export checks, promotion and serving alike.

Sessions run without onnxruntime's memory arena, and big batches run in blocks of :data:`ROWS_PER_RUN`
windows. An arena keeps, for the life of its session, the largest batch it ever ran: scoring a
universal model on 144,000 test windows left about 0.5 GiB in each of the many sessions a walk-forward
keeps (a cold 404-symbol backtest peaked at 17.6 GiB; docs/benchmarks.md). Without the arena a session
costs its weights; blocks keep the big runs as fast as with it, and give the same bits as one call.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: windows per onnxruntime call: enough to amortise the call, few enough that its buffers stay small
ROWS_PER_RUN = 1024


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
    options.enable_cpu_mem_arena = False  # see the module docstring
    return ort.InferenceSession(onnx_bytes, options, providers=list(providers))


def run_in_blocks(
    session: ort.InferenceSession, outputs: Sequence[str], feed_name: str, windows: np.ndarray
) -> list[np.ndarray]:
    """``session``'s ``outputs`` for ``windows``, run :data:`ROWS_PER_RUN` rows at a time and joined."""
    windows = np.ascontiguousarray(windows, dtype="float32")
    if len(windows) <= ROWS_PER_RUN:
        return [np.asarray(out) for out in session.run(list(outputs), {feed_name: windows})]
    blocks = [
        session.run(list(outputs), {feed_name: windows[start : start + ROWS_PER_RUN]})
        for start in range(0, len(windows), ROWS_PER_RUN)
    ]
    return [np.concatenate([block[k] for block in blocks]) for k in range(len(outputs))]
