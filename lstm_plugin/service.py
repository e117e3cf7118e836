"""The training service: a priority queue of trainings and the workers that run them.

Requests queue a job per model in a heap keyed on ``(priority, insertion order)``. A request for a
symbol already queued keeps the better priority; one already training is counted as
``already_training`` and not queued again. Each *pass* (:meth:`TrainingService.update`, or
:meth:`~TrainingService.tick` once ``lstm.training_interval`` seconds of the clock have passed)
queues the automatic retraining that is due and lets at most ``lstm.max_training_models`` jobs
start, as workers free up, best priority first.

Workers never write to the registry: they return ONNX bytes and metadata, and the service verifies
and publishes them (as production model or as candidate, see :mod:`lstm_plugin.trainer`). A job
that fails for a transient reason is retried after ``retry_backoff_seconds`` (doubling) up to
``max_retries`` times; one that fails on bad input (data, symbol, config, model) fails at once.
Everything time-related runs on the injected clock.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import math
import threading
import time
import types
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import pandas as pd

from .backends import Backend, make_backend
from .clock import Clock, SystemClock, default_clock
from .config import Config
from .data import DataSource, validate_symbol
from .errors import ConfigError, DataError, LSTMPluginError, ModelError, SymbolError, UnsafePathError
from .files import write_atomic
from .forecast import ForecastService
from .policy import (
    CATEGORIES,
    ModelState,
    Priority,
    as_number,
    category_base,
    compute_priority,
    retrain_due,
    retry_delay,
)
from .registry import UNIVERSAL_NAME, ModelRegistry
from .trainer import ModelTrainer

logger = logging.getLogger(__name__)

__all__ = ["TrainingService", "Job", "SNAPSHOT_FILE", "read_snapshot"]

SNAPSHOT_FILE = "service.json"
SNAPSHOT_INTERVAL = 1.0  # wall seconds between snapshot writes while jobs run
#: Failures that retrying cannot fix: bad data, symbol, config, a model that does not export, a link in the registry.
PERMANENT_ERRORS = (DataError, SymbolError, ConfigError, ModelError, UnsafePathError)
Key = tuple[str, str]


class ServiceClosedError(LSTMPluginError):
    """The service was shut down."""


@dataclass
class Job:
    """One model to train, as the queue and the monitoring see it."""

    model_type: str
    name: str
    category: str
    priority: float
    reasons: list[str]
    seq: int
    requested_at: pd.Timestamp
    force: bool = False
    symbols: tuple[str, ...] | None = None  # the universal model's pool, when given
    attempts: int = 0
    not_before: pd.Timestamp | None = None  # retry time on the service's clock
    retry_wall_time: float | None = None  # the same, on time.monotonic(), for drain() on a manual clock
    state: str = "queued"  # queued | running | done | failed | cancelled
    started_at: pd.Timestamp | None = None
    finished_at: pd.Timestamp | None = None
    seconds: float | None = None
    errors: list[str] = field(default_factory=list)
    permanent: bool = False
    outcome: dict[str, Any] | None = None

    @property
    def key(self) -> Key:
        return (self.model_type, self.name)

    def view(self) -> dict[str, Any]:
        """Plain data for snapshots and JSON."""
        stamp = lambda t: None if t is None else t.isoformat()  # noqa: E731
        return {
            "symbol": self.name,
            "model_type": self.model_type,
            "category": self.category,
            "priority": as_number(self.priority),
            "reasons": list(self.reasons),
            "state": self.state,
            "attempts": self.attempts,
            "requested_at": stamp(self.requested_at),
            "not_before": stamp(self.not_before),
            "started_at": stamp(self.started_at),
            "finished_at": stamp(self.finished_at),
            "seconds": self.seconds,
            "error": self.errors[-1] if self.errors else None,
            "errors": list(self.errors),
            "permanent": self.permanent,
            "outcome": self.outcome,
        }


def _failed_future(exc: BaseException) -> Future:
    future: Future = Future()
    future.set_exception(exc)
    return future


def _check_sendable(plugins: Iterable[Any]) -> None:
    """Spawned workers import plugins by module name; one defined in ``__main__`` (a notebook cell,
    a script body) cannot be found there, so say so now rather than fail every job."""
    for plugin in plugins:
        is_module = isinstance(plugin, types.ModuleType)
        module = plugin.__name__ if is_module else type(plugin).__module__
        if module == "__main__":
            name = "the __main__ module" if is_module else type(plugin).__name__
            raise ConfigError(
                f"plugins › {name} is defined in __main__, which local worker processes cannot "
                "import; move it to a module, or use backend 'sync' or 'ray'"
            )


def read_snapshot(registry_root: str | Any) -> dict[str, Any] | None:
    """The last snapshot a service wrote next to this registry, or ``None``."""
    from pathlib import Path

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
    return snapshot


def _snapshot_problem(snapshot: Any) -> str | None:
    """What makes a parsed ``service.json`` unusable by ``lstm-plugin service``, or ``None``."""
    if not isinstance(snapshot, dict):
        return f"a JSON {type(snapshot).__name__}, not an object"
    for key, kind in (("counts", dict), ("queue", list), ("in_flight", list), ("done", list), ("failed", list)):
        if not isinstance(snapshot.get(key, kind()), kind):
            return f"{key} is not a JSON {'object' if kind is dict else 'list'}"
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in snapshot.get("counts", {}).values()):
        return "counts are not numbers"
    return None


class TrainingService:
    """Prioritised training on a ``sync``, ``local`` or ``ray`` backend; see the module docstring.

    ``universe`` names the symbols the service looks after on its own (automatic retraining, the
    universal model); symbols requested later join it. ``plugins`` are extra plugin objects (they
    must be picklable for the ``local`` and ``ray`` backends).
    """

    def __init__(
        self,
        config: Config,
        source: DataSource,
        registry: ModelRegistry,
        *,
        clock: Clock | None = None,
        backend: str | Backend | None = None,
        plugins: Iterable[Any] = (),
        universe: Iterable[str] | None = None,
        progress: bool = False,
        history: int = 1000,
    ) -> None:
        self.config = config
        self.source = source
        self.registry = registry
        self.clock = clock or default_clock(source)
        self.trainer = ModelTrainer(config, source, registry, clock=self.clock, progress=progress, extra_plugins=plugins)
        self.plugins = self.trainer.plugins
        chosen = backend or config.lstm_service.backend
        if chosen == "local":
            _check_sendable(plugins)
        self.backend: Backend = make_backend(chosen, config, self.plugins) if isinstance(chosen, str) else chosen
        self.forecasts = ForecastService(
            config, registry, source, self.clock, plugins=self.plugins, training_state=self.training_state
        )
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._publish_lock = threading.Lock()
        self._heap: list[tuple[float, int, Key]] = []
        self._queued: dict[Key, Job] = {}
        self._running: dict[Key, Job] = {}
        self._done: deque[Job] = deque(maxlen=history)
        self._failed: deque[Job] = deque(maxlen=history)
        self._seq = itertools.count()
        self._budget = 0
        self._last_pass: pd.Timestamp | None = None
        self._closed = False
        self._killed = False
        self._universe: set[str] = {validate_symbol(s) for s in universe or ()}
        self._categories: dict[str, str] = {}
        self._counts: Counter[str] = Counter()
        self._train_seconds = 0.0
        self._snapshot_written = -math.inf
        self._dirty = False
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    # ------------------------------------------------------------------ state and priority
    def training_state(self, symbol: str) -> str | None:
        """``'training'``, ``'scheduled'`` or ``None`` for ``symbol``'s own model."""
        key = ("specific", symbol)
        with self._lock:
            if key in self._running:
                return "training"
            return "scheduled" if key in self._queued else None

    def _in_flight(self, key: Key) -> bool:
        with self._lock:
            return key in self._running or key in self._queued

    def model_state(self, model_type: str, name: str, in_flight: bool = False, now: pd.Timestamp | None = None) -> ModelState:
        """What the priority rules see of a model at ``now`` (default: the clock's now)."""
        now = self.clock.now() if now is None else now
        record = self.registry.resolve(model_type, name, now)
        if record is None:
            return ModelState(available=False, in_flight=in_flight)
        max_age = self.config.lstm.force_retrain_days if model_type == "specific" else self.config.lstm_service.universal.retrain_days
        return ModelState(
            available=True,
            outdated=retrain_due(record.trained_at, now, max_age),
            reliability=record.reliability,
            in_flight=in_flight,
        )

    def _base(self, category: str) -> float:
        if category == "universal":
            return self.config.lstm_service.universal.priority
        return category_base(category, self.config.lstm_service.schedule_priority)

    def _priority(
        self, key: Key, category: str, position: int, override: float | None, in_flight: bool, now: pd.Timestamp
    ) -> tuple[Priority, ModelState]:
        state = self.model_state(key[0], key[1], in_flight, now)
        priority = compute_priority(
            self._base(category), state, reliability_threshold=self.config.lstm.reliability_threshold,
            position=position, override=override, base_reason=category,
        )
        for plugin, amount in self.plugins.call_each(
            "lstm_training_priority", symbol=key[1], category=category, priority=priority.value, state=state
        ):
            if isinstance(amount, (int, float)) and not isinstance(amount, bool) and math.isfinite(amount):
                priority = priority.adjusted(f"plugin {plugin}", float(amount))
            else:
                logger.warning("plugin %r returned %r from lstm_training_priority; ignored", plugin, amount)
        return priority, state

    # ------------------------------------------------------------------ planning
    def create_training_schedule(
        self,
        portfolio: Sequence[str] = (),
        watchlist: Sequence[str] = (),
        scanning: Sequence[str] = (),
        on_demand: Sequence[str] = (),
        priority_override: Mapping[str, float] | None = None,
    ) -> list[dict[str, Any]]:
        """The ordered training plan for these symbols, best priority first; queues nothing.

        Each entry has ``symbol``, ``category``, ``position``, ``priority``, ``reasons`` (the
        adjustments that applied), ``status`` and ``reliability``. A symbol in several lists keeps
        its best entry; one already scheduled or training gets the +40 of the priority rules (docs/training-service.md).
        """
        now = self.clock.now()
        best: dict[str, dict[str, Any]] = {}
        rank = {name: i for i, name in enumerate(CATEGORIES)}
        for category, symbols in (("portfolio", portfolio), ("on_demand", on_demand), ("watchlist", watchlist), ("scanning", scanning)):
            for position, raw in enumerate(symbols):
                symbol = validate_symbol(raw)
                key = ("specific", symbol)
                override = (priority_override or {}).get(symbol)
                priority, state = self._priority(key, category, position, override, self._in_flight(key), now)
                entry = {
                    "symbol": symbol,
                    "model_type": "specific",
                    "category": category,
                    "position": position,
                    "priority": priority.number,
                    "reasons": priority.describe(),
                    "status": self.training_state(symbol) or self._status_name(state),
                    "reliability": state.reliability,
                }
                held = best.get(symbol)
                if held is None or (entry["priority"], rank[category]) < (held["priority"], rank[held["category"]]):
                    best[symbol] = entry
        return sorted(best.values(), key=lambda e: (e["priority"], rank[e["category"]], e["position"], e["symbol"]))

    @staticmethod
    def _status_name(state: ModelState) -> str:
        if not state.available:
            return "not_available"
        return "outdated" if state.outdated else "ready"

    # ------------------------------------------------------------------ requests
    def request_model_training(
        self,
        symbols: Iterable[str],
        priority_override: Mapping[str, float] | None = None,
        *,
        category: str = "on_demand",
        force: bool = False,
        if_due: bool = False,
    ) -> dict[str, Any]:
        """Queue trainings for ``symbols`` (the original API): ``{'requested', 'already_training', 'rejected', 'up_to_date', 'details'}``.

        ``details[symbol]['status']`` is ``queued`` (new job), ``already_queued`` (the better of the
        two priorities kept), ``already_training``, ``rejected`` (with ``error``) or, with
        ``if_due``, ``up_to_date``: the symbol's newest training (promoted or not) is younger than
        ``lstm.force_retrain_days``, so it is not queued. The position in ``symbols`` adds +5 per
        place (at most +30); ``priority_override`` replaces base + position.
        """
        self._base(category)  # fail early on an unknown category
        now = self.clock.now()
        known = set(self.source.symbols())
        result: dict[str, Any] = {"requested": 0, "already_training": 0, "rejected": 0, "up_to_date": 0, "details": {}}
        for position, raw in enumerate(symbols):
            try:
                symbol = validate_symbol(raw)
                if symbol not in known:
                    raise SymbolError(f"{symbol} › not in {self.source.name}")
            except LSTMPluginError as exc:
                result["rejected"] += 1
                result["details"][str(raw)] = {"status": "rejected", "error": str(exc)}
                continue
            if if_due and not force:
                newest = self.registry.resolve("specific", symbol, now, candidates=True)
                if newest is not None and not retrain_due(newest.trained_at, now, self.config.lstm.force_retrain_days):
                    result["up_to_date"] += 1
                    result["details"][symbol] = {
                        "status": "up_to_date", "model_version": newest.version, "trained_at": newest.metadata["trained_at"],
                    }
                    continue
            override = (priority_override or {}).get(symbol)
            priority, _ = self._priority(("specific", symbol), category, position, override, False, now)
            detail = self._enqueue("specific", symbol, category, priority, now, force)
            result["already_training" if detail["status"] == "already_training" else "requested"] += 1
            result["details"][symbol] = detail
        return result

    def request_universal_training(
        self, symbols: Iterable[str] | None = None, priority_override: float | None = None, force: bool = False
    ) -> dict[str, Any]:
        """Queue the universal model; the same detail dict as a symbol's.

        It pools ``symbols``, else ``lstm_service.universal.symbols``, else :attr:`universe`, else
        the data source's symbols.
        """
        now = self.clock.now()
        priority, _ = self._priority(("universal", UNIVERSAL_NAME), "universal", 0, priority_override, False, now)
        pooled = tuple(validate_symbol(s) for s in symbols) if symbols else None
        return self._enqueue("universal", UNIVERSAL_NAME, "universal", priority, now, force, pooled)

    def _enqueue(
        self,
        model_type: str,
        name: str,
        category: str,
        priority: Priority,
        now: pd.Timestamp,
        force: bool,
        symbols: tuple[str, ...] | None = None,
    ) -> dict[str, Any]:
        key = (model_type, name)
        with self._lock:
            if self._closed:
                raise ServiceClosedError("training service › shut down; no new requests")
            self._counts["requests"] += 1
            if model_type == "specific":
                self._universe.add(name)
                self._categories[name] = category
            running = self._running.get(key)
            if running is not None:
                return {"status": "already_training", "priority": as_number(running.priority), "reasons": running.reasons}
            job = self._queued.get(key)
            if job is not None:
                if priority.value < job.priority:
                    job.priority, job.reasons, job.category, job.seq = priority.value, priority.describe(), category, next(self._seq)
                    heapq.heappush(self._heap, (job.priority, job.seq, key))
                    self._touch()
                job.force = job.force or force
                job.symbols = symbols or job.symbols
                return {"status": "already_queued", "priority": as_number(job.priority), "reasons": job.reasons}
            job = Job(model_type, name, category, priority.value, priority.describe(), next(self._seq), now, force, symbols)
            self._queued[key] = job
            heapq.heappush(self._heap, (job.priority, job.seq, key))
            self._counts["queued"] += 1
            self._touch()
            return {"status": "queued", "priority": as_number(job.priority), "reasons": job.reasons}

    def cancel(self, symbols: Iterable[str], model_type: str = "specific") -> int:
        """Drop queued jobs for ``symbols`` (running ones finish); returns how many were dropped."""
        dropped = 0
        with self._lock:
            for symbol in symbols:
                job = self._queued.pop((model_type, validate_symbol(symbol)), None)
                if job is not None:
                    job.state = "cancelled"
                    dropped += 1
                    self._counts["cancelled"] += 1
            self._touch()
        return dropped

    # ------------------------------------------------------------------ universe
    @property
    def universe(self) -> list[str]:
        with self._lock:
            return sorted(self._universe)

    def add_symbols(self, symbols: Iterable[str]) -> None:
        """Symbols the service should look after on its own from now on."""
        with self._lock:
            self._universe.update(validate_symbol(s) for s in symbols)

    def remove_symbols(self, symbols: Iterable[str]) -> int:
        """Stop looking after ``symbols``: forget them and drop their queued jobs; returns jobs dropped."""
        chosen = [validate_symbol(s) for s in symbols]
        with self._lock:
            self._universe.difference_update(chosen)
            for symbol in chosen:
                self._categories.pop(symbol, None)
        return self.cancel(chosen)

    def _queue_automatic(self, now: pd.Timestamp) -> None:
        """Automatic retraining: symbols whose newest attempt is older than ``force_retrain_age_days``,
        and the universal model on its own ``universal.retrain_days`` schedule."""
        retraining = self.config.lstm_service.retraining
        now = now - pd.Timedelta(microseconds=1)  # what existed before this pass, not models stamped with its time
        for symbol in self.universe:
            key = ("specific", symbol)
            last = self.registry.resolve("specific", symbol, now, candidates=True)
            if last is None or self._in_flight(key) or not retrain_due(last.trained_at, now, retraining.force_retrain_age_days):
                continue
            category = self._categories.get(symbol, "scanning")
            priority, _ = self._priority(key, category, 0, None, False, now)
            age = (now - last.trained_at) / pd.Timedelta(days=1)
            priority = Priority(priority.value, (*priority.reasons, (f"auto retrain: {age:.0f} days old", 0.0)))
            self._enqueue("specific", symbol, category, priority, now, False)
        universal = self.config.lstm_service.universal
        key = ("universal", UNIVERSAL_NAME)
        if universal.enabled and not self._in_flight(key):
            last = self.registry.resolve("universal", UNIVERSAL_NAME, now, candidates=True)
            if retrain_due(None if last is None else last.trained_at, now, universal.retrain_days):
                priority, _ = self._priority(key, "universal", 0, None, False, now)
                self._enqueue("universal", UNIVERSAL_NAME, "universal", priority, now, False)

    # ------------------------------------------------------------------ passes
    def update(self, automatic: bool | None = None) -> dict[str, Any]:
        """One pass now: queue due automatic retraining (``auto_retrain``), then start up to
        ``max_training_models`` jobs as workers free up. With the ``sync`` backend the jobs run
        here, in priority order, before this returns."""
        now = self.clock.now()
        if automatic is None:
            automatic = self.config.lstm_service.retraining.auto_retrain
        if automatic:
            self._queue_automatic(now)
        with self._lock:
            if self._closed:
                raise ServiceClosedError("training service › shut down")
            self._budget = self.config.lstm.max_training_models
            self._last_pass = now
            self._counts["passes"] += 1
        started = self._dispatch()
        self._save_snapshot()
        with self._lock:
            return {"at": now.isoformat(), "started": started, "queued": len(self._queued), "running": len(self._running)}

    def tick(self) -> dict[str, Any] | None:
        """Run :meth:`update` when ``lstm.training_interval`` seconds of the clock have passed since the last pass."""
        now = self.clock.now()
        with self._lock:
            last = self._last_pass
        if last is not None and (now - last) < pd.Timedelta(seconds=self.config.lstm.training_interval):
            return None
        return self.update()

    def _pop_due(self, now: pd.Timestamp) -> Job | None:
        """Best-priority queued job whose retry time has come (lock held)."""
        held, found = [], None
        while self._heap:
            entry = heapq.heappop(self._heap)
            job = self._queued.get(entry[2])
            if job is None or job.seq != entry[1]:
                continue  # cancelled, or superseded by a better priority
            if job.not_before is not None and job.not_before > now:
                held.append(entry)
                continue
            found = job
            break
        for entry in held:
            heapq.heappush(self._heap, entry)
        return found

    def _dispatch(self) -> list[str]:
        """Start jobs while the pass has budget and the backend has free slots."""
        started: list[str] = []
        inline = self.backend.name == "sync"  # its futures are done on return: finish here, in order
        while True:
            now = self.clock.now()
            with self._lock:
                if self._closed or self._budget <= 0 or len(self._running) >= self.backend.slots:
                    break
                job = self._pop_due(now)
                if job is None:
                    break
                del self._queued[job.key]
                self._running[job.key] = job
                self._budget -= 1
                job.state, job.started_at, job.attempts = "running", now, job.attempts + 1
                self._touch()
            started.append(f"{job.model_type}/{job.name}")
            try:
                if job.model_type == "specific":
                    prepared = self.trainer.prepare_specific(job.name, now, job.force)
                else:
                    pooled = job.symbols or self.config.lstm_service.universal.symbols or self.universe or None
                    prepared = self.trainer.prepare_universal(pooled, now, job.force)
                future = self.backend.submit(prepared)
            except Exception as exc:  # noqa: BLE001 - recorded on the job
                future = _failed_future(exc)
            except BaseException:  # Ctrl-C in a sync training: give the job back, then stop
                with self._lock:
                    self._running.pop(job.key, None)
                    job.state, job.seq = "queued", next(self._seq)
                    self._queued[job.key] = job
                    heapq.heappush(self._heap, (job.priority, job.seq, job.key))
                raise
            if inline:
                self._finish(job, future, refill=False)
            else:
                future.add_done_callback(partial(self._finish, job, refill=True))
        return started

    def _finish(self, job: Job, future: Future, refill: bool) -> None:
        """Publish a finished job's result, or record its failure and maybe retry it."""
        outcome, error, permanent = None, None, False
        try:
            result = future.result()
            with self._publish_lock:
                if self._killed:
                    raise ServiceClosedError("shut down before the result could be published")
                outcome = self.trainer.publish(result)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded, none stops the service
            error = str(exc) if isinstance(exc, LSTMPluginError) else f"{type(exc).__name__}: {exc}"
            permanent = isinstance(exc, PERMANENT_ERRORS)
        now = self.clock.now()
        with self._lock:
            if self._running.pop(job.key, None) is None:
                return  # shutdown already gave up on this job
            job.finished_at = now
            if outcome is not None:
                job.state, job.seconds, job.outcome = "done", round(outcome.seconds, 3), outcome.summary()
                self._done.append(job)
                self._counts["done"] += 1
                self._counts[outcome.status] += 1
                if not outcome.reused:
                    self._train_seconds += outcome.seconds
            else:
                job.errors.append(str(error))
                job.permanent = permanent
                if self._closed:
                    job.state = "cancelled"
                    self._counts["cancelled"] += 1
                elif permanent or job.attempts > self.config.lstm_service.max_retries:
                    job.state = "failed"
                    self._failed.append(job)
                    self._counts["failed"] += 1
                else:
                    delay = retry_delay(job.attempts, self.config.lstm_service.retry_backoff_seconds)
                    job.state, job.not_before, job.seq = "queued", now + pd.Timedelta(seconds=delay), next(self._seq)
                    job.retry_wall_time = time.monotonic() + delay
                    self._queued[job.key] = job
                    heapq.heappush(self._heap, (job.priority, job.seq, job.key))
                    self._counts["retried"] += 1
                    logger.info("training %s/%s failed (%s); retry %d in %.0f s", job.model_type, job.name, error, job.attempts, delay)
            self._touch()
            final = job.view() if job.state in ("done", "failed") else None
        if final is not None:
            self._announce(final)
        if refill:  # inline (sync) jobs are written once, at the end of their pass
            if not self._closed:
                self._dispatch()  # first refill the slot: the snapshot then shows the next job running
            self._save_snapshot()

    def add_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Call ``listener(job_view)`` in the driver after each job that ends ``done`` or ``failed``."""
        self._listeners.append(listener)

    def remove_listener(self, listener: Callable[[dict[str, Any]], None]) -> None:
        """Stop calling ``listener`` (a helper that closes while the service goes on)."""
        if listener in self._listeners:
            self._listeners.remove(listener)

    def _announce(self, view: dict[str, Any]) -> None:
        """Tell hooks and listeners that a job ended (outside the lock; a failing listener is logged)."""
        if view["state"] == "done":
            self.plugins.call_each("lstm_after_train", result=view)
        else:
            context = {"symbol": view["symbol"], "model_type": view["model_type"], "attempts": view["attempts"]}
            self.plugins.call_each("lstm_on_error", where="training", error=f"{view['model_type']}/{view['symbol']}: {view['error']}", context=context)
        for listener in list(self._listeners):
            try:
                listener(view)
            except Exception:  # noqa: BLE001 - a listener must not break the service
                logger.exception("training-service listener %r failed", listener)

    # ------------------------------------------------------------------ waiting and stopping
    def idle(self) -> bool:
        with self._lock:
            return not self._running and not self._queued

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job is running (queued jobs may remain); ``False`` on timeout."""
        with self._changed:
            return self._changed.wait_for(lambda: not self._running, timeout)

    def drain(self, timeout: float | None = None) -> bool:
        """Run passes back to back (no automatic work) until nothing is queued or running.

        Retries wait their backoff: on the wall clock with a :class:`SystemClock`; with a clock
        that does not move on its own (a :class:`ManualClock`) the backoff is waited in wall time,
        since the caller, blocked here, cannot advance it. Returns ``True`` when the service is idle.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return self.idle()
            with self._lock:
                running, queued = bool(self._running), list(self._queued.values())
            if not running and not queued:
                return True
            if running:
                with self._changed:
                    self._changed.wait(0.2 if remaining is None else min(0.2, remaining))
                continue
            pause = self._release_retries(queued)
            if pause > 0:
                time.sleep(pause if remaining is None else min(pause, remaining))
                continue
            self.update(automatic=False)

    def _release_retries(self, queued: list[Job]) -> float:
        """Seconds until a queued job may start (0: one may start now)."""
        now = self.clock.now()
        waiting = [j for j in queued if j.not_before is not None and j.not_before > now]
        if len(waiting) < len(queued):
            return 0.0
        if isinstance(self.clock, SystemClock):
            return max(0.01, (min(j.not_before for j in waiting if j.not_before) - now).total_seconds())
        wall_now = time.monotonic()
        ready = [j for j in waiting if j.retry_wall_time is None or j.retry_wall_time <= wall_now]
        with self._lock:
            for job in ready:
                job.not_before = None  # waited its backoff in wall time
        return 0.0 if ready else max(0.01, min(j.retry_wall_time or wall_now for j in waiting) - wall_now)

    def shutdown(self, timeout: float | None = None) -> dict[str, int]:
        """Stop: drop queued jobs, give running ones ``timeout`` seconds, then stop the workers.

        Results that arrive after the deadline are discarded, never half-published: the registry
        only ever sees complete versions. Safe to call twice.
        """
        with self._lock:
            self._closed = True
            dropped = len(self._queued)
            for job in self._queued.values():
                job.state = "cancelled"
            self._counts["cancelled"] += dropped
            self._queued.clear()
            self._heap.clear()
        finished = self.wait(timeout)
        with self._lock:
            stopped = len(self._running)
        with self._publish_lock:
            self._killed = True
        self.backend.shutdown(0 if not finished else None)
        with self._lock:  # jobs whose futures did not report back (a killed worker usually does)
            for job in self._running.values():
                job.state = "cancelled"
                job.errors.append("shut down before it finished")
                self._counts["cancelled"] += 1
            self._running.clear()
            self._touch()
        self._save_snapshot(force=True)
        return {"dropped": dropped, "stopped": stopped}

    def __enter__(self) -> TrainingService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(timeout=0 if exc[0] is not None else None)

    # ------------------------------------------------------------------ monitoring
    def plan(self) -> dict[str, Any]:
        """The queue (running jobs first, as if queued again) and the symbols' categories, as plain
        data: what :meth:`restore_plan` takes back, so a restarted process continues the same plan."""
        with self._lock:
            jobs = list(self._running.values()) + sorted(self._queued.values(), key=lambda j: (j.priority, j.seq))
            return {
                "jobs": [{"model_type": j.model_type, "name": j.name, "category": j.category, "priority": j.priority,
                          "reasons": list(j.reasons), "requested_at": j.requested_at.isoformat(), "force": j.force,
                          "symbols": list(j.symbols) if j.symbols else None} for j in jobs],
                "categories": dict(sorted(self._categories.items())),
            }

    def restore_plan(self, plan: Mapping[str, Any]) -> None:
        """Queue the jobs of a :meth:`plan` in their order (jobs already known are left as they are)."""
        with self._lock:
            self._categories.update(plan.get("categories") or {})
            for item in plan.get("jobs") or []:
                key = (item["model_type"], item["name"])
                if key in self._queued or key in self._running:
                    continue
                symbols = tuple(item["symbols"]) if item.get("symbols") else None
                job = Job(key[0], key[1], item["category"], float(item["priority"]), list(item["reasons"]), next(self._seq),
                          pd.Timestamp(item["requested_at"]), bool(item["force"]), symbols)
                self._queued[key] = job
                heapq.heappush(self._heap, (job.priority, job.seq, key))
                if key[0] == "specific":
                    self._universe.add(key[1])
            self._touch()

    def queue_summary(self) -> dict[str, Any]:
        """Queued (best first) and running jobs as ``type/name``, and the counts so far: cheap, for status lines."""
        with self._lock:
            queued = sorted(self._queued.values(), key=lambda j: (j.priority, j.seq))
            return {"queued": [f"{j.model_type}/{j.name}" for j in queued],
                    "running": [f"{j.model_type}/{j.name}" for j in self._running.values()], "counts": dict(self._counts)}

    def snapshot(self) -> dict[str, Any]:
        """Queue, in-flight, done and failed jobs, mean training time and models by status."""
        now = self.clock.now()
        with self._lock:
            queue = sorted(self._queued.values(), key=lambda j: (j.priority, j.seq))
            trained = self._counts["trained"] + self._counts["candidate"]
            snapshot: dict[str, Any] = {
                "backend": self.backend.name,
                "workers": self.backend.slots,
                "clock": now.isoformat(),
                "closed": self._closed,
                "monitoring": self.config.lstm_service.enable_monitoring,
                "last_pass": None if self._last_pass is None else self._last_pass.isoformat(),
                "next_pass": None
                if self._last_pass is None
                else (self._last_pass + pd.Timedelta(seconds=self.config.lstm.training_interval)).isoformat(),
                "queue": [j.view() for j in queue],
                "in_flight": [j.view() for j in self._running.values()],
                "done": [j.view() for j in self._done],
                "failed": [j.view() for j in self._failed],
                "counts": dict(self._counts),
                "mean_training_seconds": round(self._train_seconds / trained, 3) if trained else None,
            }
            universe = sorted(self._universe)
        statuses = Counter(self.forecasts.get_model_status(symbol)["status"] for symbol in universe)
        snapshot["models_by_status"] = dict(sorted(statuses.items()))
        return snapshot

    def _touch(self) -> None:
        """Record a change of state (lock held): wake waiters, mark the snapshot file stale."""
        self._dirty = True
        self._changed.notify_all()

    def _save_snapshot(self, force: bool = False) -> None:
        """Write the snapshot next to the registry for ``lstm-plugin service`` (monitoring on only).

        Always at shutdown, and after a change once no job is running; while jobs run, at most
        once a second. A pass that changed nothing writes nothing, so a backtest calling
        :meth:`tick` every bar does not spend its time writing.
        """
        if not self.config.lstm_service.enable_monitoring:
            return
        with self._lock:
            wall = time.monotonic()
            settled_after_change = self._dirty and not self._running  # nothing left to finish soon
            if not (force or settled_after_change or wall - self._snapshot_written >= SNAPSHOT_INTERVAL):
                return
            self._dirty, self._snapshot_written = False, wall
        try:
            self.registry.root.mkdir(parents=True, exist_ok=True)
            write_atomic(self.registry.root / SNAPSHOT_FILE, json.dumps(self.snapshot(), default=str).encode())
        except OSError as exc:
            logger.warning("cannot write the service snapshot: %s", exc)
