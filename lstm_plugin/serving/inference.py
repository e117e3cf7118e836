"""onnxruntime serving: one cached ``InferenceSession`` per model version, explicit providers.

``InferenceSession.run`` is safe to call from many threads, so sessions are shared; creation is
locked so two threads never build the same session twice. Each session uses
``inference.intra_op_threads`` threads (default 1) so many sessions do not fight for two cores.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

import numpy as np
import onnxruntime as ort

from lstm_plugin.core.errors import ModelError, RegistryError
from lstm_plugin.model.model_files import INPUT_NAME, OUTPUT_NAMES
from lstm_plugin.model.sessions import open_session
from lstm_plugin.serving.registry import ModelRecord

logger = logging.getLogger(__name__)

__all__ = ["OnnxRunner", "select_providers"]


def select_providers(device: str) -> list[str]:
    """``['CUDAExecutionProvider', 'CPUExecutionProvider']`` when CUDA is asked for and installed, else
    CPU."""
    available = ort.get_available_providers()
    if device in ("cuda", "auto") and "CUDAExecutionProvider" in available:
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    if device == "cuda":
        logger.warning("inference.device is 'cuda' but onnxruntime has no CUDA provider; using the CPU")
    return ["CPUExecutionProvider"]


class OnnxRunner:
    """Runs registered models; keeps the ``max_sessions`` most recently used sessions."""

    def __init__(self, device: str = "cpu", intra_op_threads: int = 1, max_sessions: int = 256) -> None:
        self.providers = select_providers(device)
        self.intra_op_threads = intra_op_threads
        self.max_sessions = max_sessions
        self.run_count = 0
        self._sessions: OrderedDict[tuple, ort.InferenceSession] = OrderedDict()
        self._lock = threading.Lock()

    def session(self, record: ModelRecord) -> ort.InferenceSession:
        """The cached session for ``record``, created (from verified bytes) on first use."""
        with self._lock:
            session = self._sessions.get(record.key)
            if session is not None:
                self._sessions.move_to_end(record.key)
                return session
            try:
                session = open_session(record.read_bytes(), self.intra_op_threads, self.providers)
            except (RegistryError, OSError) as exc:
                raise ModelError(f"{record.label} › cannot load: {exc}") from exc
            except Exception as exc:  # onnxruntime raises its own exception types
                raise ModelError(f"{record.label} › onnxruntime cannot load the model: {exc}") from exc
            self._sessions[record.key] = session
            while len(self._sessions) > self.max_sessions:
                self._sessions.popitem(last=False)
            return session

    def run(self, record: ModelRecord, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities ``(n, 3)`` and expected log returns ``(n,)`` for ``windows (n, window, F)``, in one
        call."""
        session = self.session(record)
        with self._lock:
            self.run_count += 1
        probabilities, expected = session.run(
            list(OUTPUT_NAMES), {INPUT_NAME: np.ascontiguousarray(windows, dtype="float32")}
        )
        return probabilities, expected
