"""onnxruntime serving: one cached ``InferenceSession`` per model version, explicit providers.

``InferenceSession.run`` is safe to call from many threads, so sessions are shared; creation is
locked so two threads never build the same session twice. The cache is bounded by bytes
(``inference.session_cache_mb``), not by count: a walk-forward registers a new version every few bars and
never serves a superseded one again, so a cache of a fixed count would grow with the run's length
(docs/benchmarks.md, *Memory*); a forecaster also releases a version as soon as a newer one replaces it.
Each session uses ``inference.intra_op_threads`` threads (default 1): many sessions do not fight for cores.

onnxruntime falls back to the CPU without a word when its CUDA provider cannot start (no GPU, no
driver, the CPU-only package installed), so each new session is asked which provider it really
uses: ``inference.device: cuda`` fails then, ``auto`` warns once and carries on on the CPU, and the
provider in use is reported with every forecast (docs/gpu.md).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from typing import Any

import numpy as np
import onnxruntime as ort

from lstm_plugin.core.errors import BrokenModelError, ConfigError, ModelError, RegistryError
from lstm_plugin.core.quoting import first_line
from lstm_plugin.model.model_files import INPUT_NAME, OUTPUT_NAMES
from lstm_plugin.model.sessions import open_session, run_in_blocks
from lstm_plugin.serving.registry import ModelRecord

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

CUDA, CPU = "CUDAExecutionProvider", "CPUExecutionProvider"
_NO_CUDA = "install onnxruntime-gpu instead of onnxruntime (never both; docs/gpu.md)"


def select_providers(device: str) -> list[str]:
    """``[CUDA, CPU]`` when CUDA is asked for (``cuda``, ``auto``) and installed, else ``[CPU]``;
    ``cuda`` without the CUDA provider is a :class:`ConfigError`, ``auto`` a warning."""
    available = ort.get_available_providers()
    if device in ("cuda", "auto") and CUDA in available:
        return [CUDA, CPU]
    if device == "cuda":
        raise ConfigError(
            f"inference.device › 'cuda', but this onnxruntime has no CUDA provider (it has "
            f"{', '.join(available)}): {_NO_CUDA}"
        )
    if device == "auto":
        logger.warning("inference.device is 'auto' and onnxruntime has no CUDA provider: on the CPU")
    return [CPU]


#: what one session costs beside its model's bytes, measured: 196 sessions of the default 28 KB model held
#: 76 MiB once each had run (docs/benchmarks.md, *Memory*)
SESSION_OVERHEAD_BYTES = 320 * 1024
#: each byte of an ONNX file is counted this many times (weights unpacked, graph, kernels): an allowance for
#: bigger models, not measured (the default model's 28 KB are lost in the overhead)
SESSION_BYTES_PER_MODEL_BYTE = 3


def session_cost(model_bytes: int) -> int:
    """The memory a session of a model of ``model_bytes`` is counted at in the cache's budget."""
    return SESSION_OVERHEAD_BYTES + SESSION_BYTES_PER_MODEL_BYTE * model_bytes


class OnnxRunner:
    """Runs registered models; keeps the most recently used sessions within ``cache_mb`` MiB (at least the
    one in use) and drops a version's session when :meth:`release` says it will not serve again."""

    def __init__(self, device: str = "cpu", intra_op_threads: int = 1, cache_mb: float = 64.0) -> None:
        self.device = device
        self.providers = select_providers(device)
        #: the provider sessions really run on: the first asked for until a session says otherwise
        self.provider = self.providers[0]
        self.intra_op_threads = intra_op_threads
        self.cache_bytes = int(cache_mb * 2**20)
        self.run_count = 0
        self._sessions: OrderedDict[tuple[Any, ...], tuple[ort.InferenceSession, int]] = OrderedDict()
        self.held_bytes = 0  # the counted cost of the sessions kept (:func:`session_cost`)
        self._lock = threading.Lock()

    def cached(self) -> int:
        """How many sessions are kept."""
        return len(self._sessions)

    def release(self, key: tuple[Any, ...]) -> None:
        """Drop the session of the version with ``key`` (if kept): it will not serve again, or rarely."""
        with self._lock:
            kept = self._sessions.pop(key, None)
            if kept is not None:
                self.held_bytes -= kept[1]

    def session(self, record: ModelRecord) -> ort.InferenceSession:
        """The cached session for ``record``, created (from verified bytes) on first use."""
        with self._lock:
            kept = self._sessions.get(record.key)
            if kept is not None:
                self._sessions.move_to_end(record.key)
                return kept[0]
            try:
                blob = record.read_bytes()
                session = open_session(blob, self.intra_op_threads, self.providers)
            except (RegistryError, OSError) as exc:
                raise ModelError(f"{record.label} › cannot load: {exc}") from exc
            except Exception as exc:  # onnxruntime raises its own exception types
                raise BrokenModelError(f"onnxruntime cannot load it ({first_line(exc, 300)})") from exc
            self._check_provider(session, record)
            cost = session_cost(len(blob))
            self._sessions[record.key] = (session, cost)
            self.held_bytes += cost
            while self.held_bytes > self.cache_bytes and len(self._sessions) > 1:
                self.held_bytes -= self._sessions.popitem(last=False)[1][1]
            return session

    def _check_provider(self, session: ort.InferenceSession, record: ModelRecord) -> None:
        """The provider the new session really uses; CUDA asked for and not used: fail (``cuda``) or use
        the CPU from now on, with one warning (``auto``)."""
        used = session.get_providers()[0]
        if self.providers[0] == CUDA and used != CUDA:
            if self.device == "cuda":
                raise ConfigError(
                    f"inference.device › 'cuda', but onnxruntime could not start its CUDA provider and "
                    f"runs {record.label} on {used} (no GPU or driver visible?)"
                )
            logger.warning("inference.device is 'auto': onnxruntime could not start CUDA; on %s", used)
            self.providers = [used]
        self.provider = used

    def run(
        self, record: ModelRecord, windows: np.ndarray, check_finite: bool = True
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities ``(n, 3)`` and expected log returns ``(n,)`` for ``windows (n, window, F)``, in
        blocks (:func:`~lstm_plugin.model.sessions.run_in_blocks`). :class:`BrokenModelError` when the
        version cannot load or run, when its outputs have other shapes, or (``check_finite``) when any
        row is not finite."""
        session = self.session(record)
        with self._lock:
            self.run_count += 1
        try:
            probabilities, expected = run_in_blocks(session, OUTPUT_NAMES, INPUT_NAME, windows)
        except Exception as exc:  # onnxruntime raises its own exception types
            raise BrokenModelError(f"onnxruntime cannot run it ({first_line(exc, 300)})") from exc
        rows = len(windows)
        probabilities, expected = np.asarray(probabilities), np.asarray(expected)
        if probabilities.shape != (rows, 3) or expected.shape != (rows,):
            raise BrokenModelError(
                f"its outputs have shapes {probabilities.shape} and {expected.shape}, not ({rows}, 3) and "
                f"({rows},)"
            )
        finite = finite_rows(probabilities, expected)
        if check_finite and not finite.all():
            raise BrokenModelError(not_finite(int((~finite).sum()), len(finite)))
        return probabilities, expected


def finite_rows(probabilities: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Which output rows are finite (every probability and the expected return)."""
    finite: np.ndarray = np.isfinite(probabilities).all(axis=1) & np.isfinite(expected)
    return finite


def not_finite(bad: int, rows: int) -> str:
    return f"its output is not finite (NaN or infinity) for {bad} of {rows} windows"
