"""Training jobs that overrun ``lstm_service.job_timeout``: each is failed and its worker stopped, so a plugin
that hangs (a ``lstm_features`` that sleeps, a network call that never returns) costs one job, not the
service. The ``sync`` backend runs jobs in the caller and cannot be interrupted; ``local`` and ``ray`` can."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from lstm_plugin.core.errors import ModelError

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class JobTimedOut(ModelError):
    """A job ran longer than ``lstm_service.job_timeout``; permanent: it would hang again."""


class Deadlines:
    """Watches running jobs' futures: ``expired(job, future)`` is called once for each past ``seconds``."""

    def __init__(self, seconds: float | None, expired: Callable[[Any, Future[Any]], None]) -> None:
        self.seconds = seconds
        self.expired = expired
        self._watched: dict[int, tuple[Any, Future[Any], float]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def watch(self, job: Any, future: Future[Any]) -> None:
        if self.seconds is None or future.done():
            return
        with self._lock:
            self._watched[id(future)] = (job, future, time.monotonic())
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="lstm-plugin-deadlines", daemon=True)
                self._thread.start()
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._watched.pop(id(future), None)

    def _run(self) -> None:
        assert self.seconds is not None
        tick = min(1.0, self.seconds / 10)
        while not self._stop.wait(tick):
            now = time.monotonic()
            with self._lock:
                late = [
                    (job, f) for job, f, started in self._watched.values() if now - started > self.seconds
                ]
                for _, future in late:
                    self._watched.pop(id(future), None)
            for job, future in late:
                self.expired(job, future)

    def error(self) -> JobTimedOut:
        return JobTimedOut(
            f"ran longer than lstm_service.job_timeout ({self.seconds:g} s) and was stopped: a plugin that "
            "hangs? (raise the setting for a longer training)"
        )

    def close(self) -> None:
        self._stop.set()
