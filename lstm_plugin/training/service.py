"""The training service: the original API over a priority queue of trainings and the workers that run them.

Requests queue a job per model in a heap keyed on ``(priority, insertion order)``. A request for a
symbol already queued keeps the better priority; one already training is counted as
``already_training`` and not queued again. Each *pass* (:meth:`TrainingService.update`, or
:meth:`~TrainingService.tick` once ``lstm.training_interval`` seconds of the clock have passed)
queues the automatic retraining that is due and lets at most ``lstm.max_training_models`` jobs
start, as workers free up, best priority first. Everything time-related runs on the injected clock.

This class is the facade; the parts are :mod:`~lstm_plugin.training.queue` (jobs and their states),
:mod:`~lstm_plugin.training.planning` (priorities), :mod:`~lstm_plugin.training.dispatch` (backend,
publishing, retries) and :mod:`~lstm_plugin.training.monitoring` (snapshot, listeners).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from lstm_plugin.core.clock import Clock, SystemClock, default_clock
from lstm_plugin.core.config import Config
from lstm_plugin.core.data import DataSource, validate_symbol
from lstm_plugin.core.errors import LSTMPluginError, SymbolError
from lstm_plugin.core.statuses import ModelStatus, ModelType
from lstm_plugin.plugins.manager import get_plugin_manager, training_plugins
from lstm_plugin.serving.forecast import ForecastService
from lstm_plugin.serving.registry import UNIVERSAL_NAME, ModelRegistry
from lstm_plugin.training.backends import Backend, check_sendable, make_backend
from lstm_plugin.training.dispatch import Dispatcher, ServiceClosedError
from lstm_plugin.training.monitoring import (
    SNAPSHOT_FILE,
    Listener,
    Monitor,
    ServiceView,
    build_snapshot,
    read_snapshot,
)
from lstm_plugin.training.planning import PlanEntry, Planner
from lstm_plugin.training.policy import ModelState, Priority
from lstm_plugin.training.prefetch import universal_prefetch_jobs
from lstm_plugin.training.queue import Job, JobQueue, RequestDetail, RequestResult
from lstm_plugin.training.trainer import ModelTrainer
from lstm_plugin.training.tuning.continual import continual_tuning, tuning_order

__all__ = ["SNAPSHOT_FILE", "Job", "RequestResult", "ServiceClosedError", "TrainingService", "read_snapshot"]


class TrainingService:
    """Prioritised training on a ``sync``, ``local`` or ``ray`` backend; see the module docstring.

    ``universe`` names the symbols the service looks after on its own (automatic retraining, the
    universal model); symbols requested later join it. ``plugins`` are extra plugin objects (they
    must be picklable for the ``local`` and ``ray`` backends). ``forecaster`` builds :attr:`forecasts`
    (called like :class:`~lstm_plugin.serving.forecast.ForecastService`); backtests pass a
    :class:`~lstm_plugin.serving.tape.ForecastTape`.
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
        forecaster: Callable[..., ForecastService] = ForecastService,
    ) -> None:
        plugins = tuple(plugins)
        self.config = config
        self.source = source
        self.registry = registry
        self.clock = clock or default_clock(source)
        self.plugins = get_plugin_manager(config.plugins, list(plugins))
        chosen = backend or config.lstm_service.backend
        if chosen == "local":
            check_sendable(training_plugins(plugins))
        self.backend: Backend = (
            make_backend(chosen, config, self.plugins) if isinstance(chosen, str) else chosen
        )
        self.trainer = ModelTrainer(
            config,
            source,
            registry,
            plugins=self.plugins,
            clock=self.clock,
            progress=progress,
            extra_plugins=plugins,
            by_path=self.backend.by_path,
        )
        self.forecasts = forecaster(
            config, registry, source, self.clock, plugins=self.plugins, training_state=self.training_state
        )
        self.queue = JobQueue(history)
        self.planner = Planner(config, registry, self.plugins, self.queue, health=self.forecasts.live_health)
        self.monitor = Monitor(self.queue, self.plugins, registry.root, config.lstm_service.enable_monitoring)
        self.dispatcher = Dispatcher(
            self.queue,
            self.trainer,
            self.backend,
            self.clock,
            config.lstm_service,
            self.monitor,
            pool=lambda: self.universe,
            snapshot=self.snapshot,
        )
        self.tuning = continual_tuning(config, source, registry, self.backend, self.clock, plugins)
        self._last_pass: pd.Timestamp | None = None
        self._universe: set[str] = {validate_symbol(s) for s in universe or ()}
        self._categories: dict[str, str] = {}

    # ------------------------------------------------------------------ state and priority
    def training_state(self, symbol: str) -> ModelStatus | None:
        """``'training'``, ``'scheduled'`` or ``None`` for ``symbol``'s own model."""
        state = self.queue.state_of(("specific", symbol))
        return "training" if state == "running" else ("scheduled" if state == "queued" else None)

    def model_state(
        self, model_type: ModelType, name: str, in_flight: bool = False, now: pd.Timestamp | None = None
    ) -> ModelState:
        """What the priority rules see of a model at ``now`` (default: the clock's now)."""
        return self.planner.model_state(model_type, name, in_flight, self.clock.now() if now is None else now)

    def create_training_schedule(
        self,
        portfolio: Sequence[str] = (),
        watchlist: Sequence[str] = (),
        scanning: Sequence[str] = (),
        on_demand: Sequence[str] = (),
        priority_override: Mapping[str, float] | None = None,
    ) -> list[PlanEntry]:
        """The ordered training plan for these symbols, best priority first; queues nothing.

        Each entry has ``symbol``, ``category``, ``position``, ``priority``, ``reasons`` (the
        adjustments that applied), ``status`` and ``reliability``. A symbol in several lists keeps
        its best entry; one already scheduled or training gets the +40 of the priority rules
        (docs/training-service.md).
        """
        lists = {"portfolio": portfolio, "on_demand": on_demand, "watchlist": watchlist, "scanning": scanning}
        return self.planner.schedule(lists, priority_override or {}, self.clock.now(), self.training_state)

    # ------------------------------------------------------------------ requests
    def request_model_training(
        self,
        symbols: Iterable[str],
        priority_override: Mapping[str, float] | None = None,
        *,
        category: str = "on_demand",
        force: bool = False,
        if_due: bool = False,
    ) -> RequestResult:
        """Queue trainings for ``symbols`` (the original API): ``{'requested', 'already_training', 'rejected',
        'up_to_date', 'details'}``.

        ``details[symbol]['status']`` is ``queued`` (new job), ``already_queued`` (the better of the
        two priorities kept), ``already_training``, ``rejected`` (with ``error``) or, with
        ``if_due``, ``up_to_date``: the symbol's newest training (promoted or not) is younger than
        ``lstm.force_retrain_days``, so it is not queued. The position in ``symbols`` adds +5 per
        place (at most +30); ``priority_override`` replaces base + position.
        """
        self.planner.base(category)  # fail early on an unknown category
        now = self.clock.now()
        known = set(self.source.symbols())
        result: RequestResult = {
            "requested": 0,
            "already_training": 0,
            "rejected": 0,
            "up_to_date": 0,
            "details": {},
        }
        for position, raw in enumerate(symbols):
            try:
                symbol = validate_symbol(raw)
                if symbol not in known:
                    raise SymbolError(f"{symbol} › not in {self.source.name}")
            except LSTMPluginError as exc:
                result["rejected"] += 1
                result["details"][str(raw)] = {"status": "rejected", "error": str(exc)}
                continue
            up_to_date = None if force or not if_due else self.planner.up_to_date(symbol, now)
            if up_to_date is not None:
                result["up_to_date"] += 1
                result["details"][symbol] = up_to_date
                continue
            override = (priority_override or {}).get(symbol)
            priority, _ = self.planner.priority(
                ("specific", symbol), category, position, override, False, now
            )
            detail = self._enqueue("specific", symbol, category, priority, now, force)
            result["already_training" if detail["status"] == "already_training" else "requested"] += 1
            result["details"][symbol] = detail
        return result

    def request_universal_training(
        self,
        symbols: Iterable[str] | None = None,
        priority_override: float | None = None,
        force: bool = False,
    ) -> RequestDetail:
        """Queue the universal model; the same detail dict as a symbol's.

        It pools ``symbols``, else ``lstm_service.universal.symbols``, else :attr:`universe`, else
        the data source's symbols.
        """
        now = self.clock.now()
        priority, _ = self.planner.priority(
            ("universal", UNIVERSAL_NAME), "universal", 0, priority_override, False, now
        )
        pooled = tuple(validate_symbol(s) for s in symbols) if symbols else None
        return self._enqueue("universal", UNIVERSAL_NAME, "universal", priority, now, force, pooled)

    def _enqueue(
        self,
        model_type: ModelType,
        name: str,
        category: str,
        priority: Priority,
        now: pd.Timestamp,
        force: bool,
        symbols: tuple[str, ...] | None = None,
    ) -> RequestDetail:
        with self.queue.lock:
            if self.dispatcher.closed:
                raise ServiceClosedError("training service › shut down; no new requests")
            if model_type == "specific":
                self._universe.add(name)
                self._categories[name] = category
            return self.queue.enqueue(model_type, name, category, priority, now, force, symbols)

    def prefetch_universal(self, dates: Iterable[pd.Timestamp]) -> list[pd.Timestamp]:
        """Start the universal model's automatic trainings due on these coming pass ``dates`` on workers the
        passes leave idle; each pass takes its result (same bytes). Only where the bars after now exist
        (a backtest), not on ``sync``. The dates predicted (:mod:`lstm_plugin.training.prefetch`)."""
        if self.backend.inline:
            return []
        due, jobs = universal_prefetch_jobs(
            self.trainer, self.registry, self.clock.now(), dates, self.universe
        )
        self.dispatcher.prefetch(jobs)
        return due

    def cancel(self, symbols: Iterable[str], model_type: ModelType = "specific") -> int:
        """Drop queued jobs for ``symbols`` (running ones finish); returns how many were dropped."""
        return self.queue.cancel([(model_type, validate_symbol(s)) for s in symbols])

    # ------------------------------------------------------------------ universe
    @property
    def last_pass(self) -> pd.Timestamp | None:
        """The clock's time of the last pass (``None`` before the first)."""
        with self.queue.lock:
            return self._last_pass

    @property
    def universe(self) -> list[str]:
        with self.queue.lock:
            return sorted(self._universe)

    def add_symbols(self, symbols: Iterable[str]) -> None:
        """Symbols the service should look after on its own from now on."""
        with self.queue.lock:
            self._universe.update(validate_symbol(s) for s in symbols)

    def remove_symbols(self, symbols: Iterable[str]) -> int:
        """Stop looking after ``symbols``: forget them and drop their queued jobs; returns jobs dropped."""
        chosen = [validate_symbol(s) for s in symbols]
        with self.queue.lock:
            self._universe.difference_update(chosen)
            for symbol in chosen:
                self._categories.pop(symbol, None)
        return self.cancel(chosen)

    # ------------------------------------------------------------------ passes
    def update(self, automatic: bool | None = None) -> dict[str, Any]:
        """One pass now: queue due automatic retraining (``auto_retrain``), then start up to
        ``max_training_models`` jobs as workers free up. With the ``sync`` backend the jobs run
        here, in priority order, before this returns."""
        now = self.clock.now()
        planning = time.perf_counter()
        if automatic is None:
            automatic = self.config.lstm_service.retraining.auto_retrain
        with self.queue.lock:
            categories = dict(self._categories)
        if self.tuning is not None:  # before the trainings, which then use what it chose
            self.tuning.run_pass(now, tuning_order(self.config, self.universe, categories))
        if automatic:
            self.planner.queue_due(self.universe, categories, now, self._enqueue)
        self.dispatcher.spent("plan", planning)
        with self.queue.lock:
            if self.dispatcher.closed:
                raise ServiceClosedError("training service › shut down")
            self.dispatcher.start_pass(self.config.lstm.max_training_models)
            self._last_pass = now
            self.queue.counts["passes"] += 1
        started = self.dispatcher.dispatch()
        self.monitor.save(self.snapshot)
        with self.queue.lock:
            return {
                "at": now.isoformat(),
                "started": started,
                "queued": self.queue.queued_count(),
                "running": self.queue.running_count(),
            }

    def tick(self) -> dict[str, Any] | None:
        """Run :meth:`update` when ``lstm.training_interval`` seconds of the clock have passed since the last
        pass."""
        now = self.clock.now()
        with self.queue.lock:
            last = self._last_pass
        if last is not None and (now - last) < pd.Timedelta(seconds=self.config.lstm.training_interval):
            return None
        return self.update()

    # ------------------------------------------------------------------ listeners
    def add_listener(self, listener: Listener) -> None:
        """Call ``listener(job_view)`` in the driver after each job that ends ``done`` or ``failed``."""
        self.monitor.add_listener(listener)

    def remove_listener(self, listener: Listener) -> None:
        """Stop calling ``listener`` (a helper that closes while the service goes on)."""
        self.monitor.remove_listener(listener)

    # ------------------------------------------------------------------ waiting and stopping
    def idle(self) -> bool:
        return self.queue.idle()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no job is running (queued jobs may remain); ``False`` on timeout."""
        with self.queue.changed:
            return self.queue.changed.wait_for(lambda: not self.queue.running_count(), timeout)

    def finish_pass(self, timeout: float | None = None) -> bool:
        """Block until the last pass is over, then close it (``False`` on timeout): after :meth:`update`
        on a ``local`` or ``ray`` backend, what ``sync`` gives on return — the pass's trainings, run
        concurrently, all published, and a job requested later waits for the next pass. A backtest
        waits here before it selects."""
        return self.dispatcher.finish_pass(timeout)

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
            running, queued = self.queue.running_count(), self.queue.queued_count()
            if not running and not queued:
                return True
            if running:
                with self.queue.changed:
                    self.queue.changed.wait(0.2 if remaining is None else min(0.2, remaining))
                continue
            pause = self.queue.seconds_until_startable(self.clock.now(), isinstance(self.clock, SystemClock))
            if pause > 0:
                time.sleep(pause if remaining is None else min(pause, remaining))
                continue
            self.update(automatic=False)

    def shutdown(self, timeout: float | None = None) -> dict[str, int]:
        """Stop: drop queued jobs, give running ones ``timeout`` seconds, then stop the workers.

        Results that arrive after the deadline are discarded, never half-published: the registry
        only ever sees complete versions. Safe to call twice.
        """
        with self.queue.lock:
            self.dispatcher.close()
            dropped = self.queue.cancel_all()
        self.dispatcher.say_waiting(timeout)
        stopped = self.dispatcher.stop(self.wait(timeout))
        self.monitor.save(self.snapshot, force=True)
        return {"dropped": dropped, "stopped": stopped}

    def __enter__(self) -> TrainingService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown(timeout=0 if exc[0] is not None else None)

    # ------------------------------------------------------------------ monitoring
    def plan(self) -> dict[str, Any]:
        """The queue (running jobs first, as if queued again) and the symbols' categories, as plain
        data: what :meth:`restore_plan` takes back, so a restarted process continues the same plan."""
        with self.queue.lock:
            return {"jobs": self.queue.plan_jobs(), "categories": dict(sorted(self._categories.items()))}

    def restore_plan(self, plan: Mapping[str, Any]) -> None:
        """Queue the jobs of a :meth:`plan` in their order (jobs already known are left as they are)."""
        with self.queue.lock:
            self._categories.update(plan.get("categories") or {})
            for model_type, name in self.queue.restore_jobs(plan.get("jobs") or []):
                if model_type == "specific":
                    self._universe.add(name)

    def seconds(self) -> dict[str, float]:
        """Where the service's time went: ``training`` (the fitting seconds of its trainings, in workers),
        then the driver's own phases (:data:`~lstm_plugin.training.dispatch.DRIVER_PHASES`)."""
        return {"training": self.dispatcher.train_seconds, **self.dispatcher.driver_seconds}

    def queue_summary(self) -> dict[str, Any]:
        """:meth:`JobQueue.summary`: cheap, for status lines."""
        return self.queue.summary()

    def snapshot(self) -> dict[str, Any]:
        """Queue, in-flight, done and failed jobs, mean training time and models by status."""
        view = ServiceView(
            now=self.clock.now(),
            backend=self.backend.name,
            workers=self.backend.slots,
            closed=self.dispatcher.closed,
            monitoring=self.config.lstm_service.enable_monitoring,
            last_pass=self.last_pass,
            training_interval=self.config.lstm.training_interval,
            train_seconds=self.dispatcher.train_seconds,
            universe=self.universe,
            model_status=self.forecasts.get_model_status,
        )
        return build_snapshot(view, self.queue)
