"""Monitoring of the training service: the ``service.json`` snapshot and the finished-job listeners.

The snapshot is what ``lstm-plugin service`` shows of a running service; listeners and the
``lstm_after_train`` / ``lstm_on_error`` hooks hear about every job that ends ``done`` or ``failed``.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.core.files import write_atomic
from lstm_plugin.core.statuses import ModelStatus
from lstm_plugin.plugins.manager import PluginManager
from lstm_plugin.training.queue import JobQueue, JobView

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

SNAPSHOT_FILE = "service.json"
SNAPSHOT_INTERVAL = 1.0  # wall seconds between snapshot writes while jobs run
Listener = Callable[[JobView], None]


def read_snapshot(registry_root: str | Path) -> dict[str, Any] | None:
    """The last snapshot a service wrote next to this registry, or ``None``."""
    path = Path(registry_root) / SNAPSHOT_FILE
    try:
        snapshot = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        logger.warning("%s is unreadable: %s", path, exc)
        return None
    problem = _snapshot_problem(snapshot)
    if problem:
        logger.warning("%s is not a service snapshot (%s); ignored", path, problem)
        return None
    return dict(snapshot)


def snapshot_states(snapshot: dict[str, Any] | None) -> dict[str, ModelStatus]:
    """``{symbol: "training" | "scheduled"}`` for the specific models a running service (one whose last
    snapshot is not closed) is training or has queued; nothing for a service that has shut down."""
    if not snapshot or snapshot.get("closed"):
        return {}
    states: dict[str, ModelStatus] = {}
    stages: tuple[tuple[list[Any], ModelStatus], ...] = (
        (snapshot["queue"], "scheduled"),
        (snapshot["in_flight"], "training"),
    )
    for jobs, state in stages:
        states.update({job["symbol"]: state for job in jobs if job.get("model_type") == "specific"})
    return states


def _snapshot_problem(snapshot: Any) -> str | None:
    """What makes a parsed ``service.json`` unusable by ``lstm-plugin service``, or ``None``."""
    if not isinstance(snapshot, dict):
        return f"a JSON {type(snapshot).__name__}, not an object"
    for key, kind in (
        ("counts", dict),
        ("queue", list),
        ("in_flight", list),
        ("done", list),
        ("failed", list),
    ):
        if not isinstance(snapshot.get(key, kind()), kind):
            return f"{key} is not a JSON {'object' if kind is dict else 'list'}"
    if not all(
        isinstance(v, (int, float)) and not isinstance(v, bool) for v in snapshot.get("counts", {}).values()
    ):
        return "counts are not numbers"
    return None


class Monitor:
    """Tells hooks and listeners about finished jobs, and writes the snapshot file when it is due."""

    def __init__(self, queue: JobQueue, plugins: PluginManager, folder: Path, enabled: bool) -> None:
        self.queue = queue
        self.plugins = plugins
        self.folder = folder
        self.enabled = enabled
        self._listeners: list[Listener] = []
        self._written = -math.inf

    def add_listener(self, listener: Listener) -> None:
        self._listeners.append(listener)

    def remove_listener(self, listener: Listener) -> None:
        if listener in self._listeners:
            self._listeners.remove(listener)

    def announce(self, view: JobView) -> None:
        """Tell hooks and listeners that a job ended (call outside the lock; a failing listener is logged)."""
        if view["state"] == "done":
            self.plugins.call_each("lstm_after_train", result=view)
        else:
            context = {
                "symbol": view["symbol"],
                "model_type": view["model_type"],
                "attempts": view["attempts"],
            }
            error = f"{view['model_type']}/{view['symbol']}: {view['error']}"
            self.plugins.call_each("lstm_on_error", where="training", error=error, context=context)
        for listener in list(self._listeners):
            try:
                listener(view)
            except Exception:
                logger.exception("training-service listener %r failed", listener)

    def save(self, snapshot: Callable[[], dict[str, Any]], force: bool = False) -> None:
        """Write ``snapshot()`` next to the registry for ``lstm-plugin service`` (monitoring on only).

        Always when forced (at shutdown), and after a change once no job is running; while jobs
        run, at most once a second. A pass that changed nothing writes nothing, so a backtest
        ticking every bar does not spend its time writing.
        """
        if not self.enabled:
            return
        with self.queue.lock:
            wall = time.monotonic()
            settled_after_change = self.queue.dirty and not self.queue.running  # nothing left to finish soon
            if not (force or settled_after_change or wall - self._written >= SNAPSHOT_INTERVAL):
                return
            self.queue.dirty, self._written = False, wall
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            write_atomic(self.folder / SNAPSHOT_FILE, json.dumps(snapshot(), default=str).encode())
        except OSError as exc:
            logger.warning("cannot write the service snapshot: %s", exc)


@dataclass(frozen=True)
class ServiceView:
    """What a snapshot reads of the service besides its queue, taken at one moment: the service hands
    this over, so monitoring needs no service."""

    now: pd.Timestamp
    backend: str
    workers: int
    closed: bool
    monitoring: bool
    last_pass: pd.Timestamp | None
    training_interval: float  # seconds between passes (``lstm.training_interval``)
    train_seconds: float  # the fitting seconds of every training so far
    universe: Sequence[str]
    model_status: Callable[[str], Mapping[str, Any]]  # a symbol's ``get_model_status``


def build_snapshot(view: ServiceView, queue: JobQueue) -> dict[str, Any]:
    """What ``service.json`` holds: queue, in-flight, done and failed jobs, counts, models by status."""
    with queue.lock:
        counts = queue.counts
        trained = counts["trained"]
        interval = pd.Timedelta(seconds=view.training_interval)
        snapshot: dict[str, Any] = {
            "backend": view.backend,
            "workers": view.workers,
            "clock": view.now.isoformat(),
            "closed": view.closed,
            "monitoring": view.monitoring,
            "last_pass": None if view.last_pass is None else view.last_pass.isoformat(),
            "next_pass": None if view.last_pass is None else (view.last_pass + interval).isoformat(),
            "queue": [j.view() for j in queue.in_order()],
            "in_flight": [j.view() for j in queue.running.values()],
            "done": [j.view() for j in queue.done],
            "failed": [j.view() for j in queue.failed],
            "counts": dict(counts),
            "mean_training_seconds": round(view.train_seconds / trained, 3) if trained else None,
        }
    reports = [view.model_status(symbol) for symbol in view.universe]
    snapshot["models_by_status"] = dict(sorted(Counter(r["status"] for r in reports).items()))
    snapshot["degraded"] = {r["symbol"]: r["degraded"] for r in reports if r["degraded"]}
    return snapshot
