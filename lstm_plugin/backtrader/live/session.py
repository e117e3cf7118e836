"""``PaperSession``: a paper run over a state folder — open, resume, run or step, report.

The state folder holds one paper run: ``journal.sqlite`` (the book,
:mod:`~lstm_plugin.backtrader.live.journal`),
``bars.sqlite`` (every delivered bar, :mod:`~lstm_plugin.backtrader.live.store`), ``heartbeat.json`` (what
the run is doing now) and ``paper.lock`` (one process at a time). Opening a folder checks that it
belongs to this config and these symbols, rebuilds the book from the journal and reconciles it
with the fills; :meth:`PaperSession.run` then drives ``cerebro.run(live=True)`` until the source
ends, the ``limit`` of new days is reached or :meth:`PaperSession.request_stop` is called.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any

import backtrader as bt
import pandas as pd

from lstm_plugin.backtrader.bar_service import bar_clock_service
from lstm_plugin.backtrader.live.broker import PaperBroker
from lstm_plugin.backtrader.live.delivery import clean_history
from lstm_plugin.backtrader.live.heartbeat import HEARTBEAT_FILE, check_heartbeat_path, write_heartbeat
from lstm_plugin.backtrader.live.hub import BarHub
from lstm_plugin.backtrader.live.journal import Journal
from lstm_plugin.backtrader.live.sources import BarSource, capabilities_of
from lstm_plugin.backtrader.live.sqlite import StateError
from lstm_plugin.backtrader.live.state import (
    check_identity,
    checked_book,
    config_fingerprint,
    decision_settings,
    lock_state,
)
from lstm_plugin.backtrader.live.store import BarStore
from lstm_plugin.backtrader.live.strategy import PaperStrategy
from lstm_plugin.backtrader.signals import training_row
from lstm_plugin.core.config import Config, load_config, training_backend
from lstm_plugin.serving.registry import ModelRegistry
from lstm_plugin.training.queue import JobView
from lstm_plugin.training.service import TrainingService

logger = logging.getLogger(__name__)

__all__ = ["HEARTBEAT_FILE", "PaperSession", "config_fingerprint"]  # the fingerprint: live.state


class PaperSession:
    """A paper run in ``state`` fed by ``source``; see the module docstring.

    - ``config``: a :class:`~lstm_plugin.core.config.Config` or a path (``None``: the defaults);
    - ``registry``: the model folder (default ``registry.path``), shared with backtests;
    - ``backend``: where trainings run (default ``lstm_service.backend``; ``sync`` trains inside
      the rebalance as a backtest does, ``local``/``ray`` in the background); ``train=False`` only uses
      models already registered; ``plugins``: extra plugin objects (hooks, e.g. ``lstm_paper_day``);
    - ``accept_state``: continue even when the book disagrees with the fills (the disagreement is journaled);
    - ``on_day(summary)``: called after each LIVE day is committed; ``on_wait(why)`` while it waits.
    """

    def __init__(
        self,
        state: str | Path,
        source: BarSource,
        *,
        config: Config | str | Path | None = None,
        registry: str | Path | None = None,
        backend: str | None = None,
        train: bool = True,
        plugins: Sequence[Any] = (),
        accept_state: bool = False,
        on_day: Callable[[dict[str, Any]], None] | None = None,
        on_wait: Callable[[str], None] | None = None,
        poll_seconds: float = 1.0,
        argv: Sequence[str] = (),
    ) -> None:
        self.state = Path(state)
        self.config = config if isinstance(config, Config) else load_config(config)
        self.source = source
        self.symbols = sorted(source.symbols())  # a set: the order given is not part of the run
        self.registry = ModelRegistry(
            registry or self.config.registry.path, self.config.registry.keep_versions
        )
        self.backend = training_backend(self.config, backend)
        self.train = train
        self.plugins = tuple(plugins)
        self.on_day, self.on_wait = on_day, on_wait
        self.poll_seconds = poll_seconds
        self.argv = list(argv)
        self.cash = float(self.config.backtest.cash)
        self._hub: BarHub | None = None
        self._training: dict[str, Any] | None = None
        self._service: TrainingService | None = None
        self._finished: list[dict[str, Any]] = []
        self.counts: dict[str, int] = {}
        self._stop_requested = False
        #: a committed day is being handed to the plugins: a stop signal may end the run at once
        self.delivering = False
        self._last_bar: pd.Timestamp | None = None
        self._lock_file: IO[str] | None = lock_state(self.state)
        try:
            self._open_state(source, accept_state)
        except BaseException:
            for opened in (getattr(self, "journal", None), getattr(self, "store", None)):
                if opened is not None:
                    opened.close()
            self._unlock()
            raise
        self.last_stop = "open"

    # ------------------------------------------------------------------ opening
    def _open_state(self, source: BarSource, accept_state: bool) -> None:
        """The journal (its identity checked: :mod:`~lstm_plugin.backtrader.live.state`), the bar store
        (seeded on a first run), and the book, once both files are known to belong together."""
        check_heartbeat_path(self.state)
        self.journal = Journal(self.state)
        replay_start = capabilities_of(source).replay_start
        identity = {
            "config": config_fingerprint(self.config),
            "settings": decision_settings(self.config),
            "symbols": self.symbols,
            "start": "watch" if replay_start is None else f"{replay_start:%Y-%m-%d}",
            "cash": self.cash,
            "run_id": os.urandom(4).hex(),
        }
        self.meta = check_identity(self.journal, identity, self.config, self.state)
        self.run_id = str(self.meta["run_id"])
        self.store = BarStore(self.state)
        if not self.store.seeded:
            self.store.seed({s: clean_history(source.history(s), source.name, s) for s in self.symbols})
        elif self.store.symbols() != self.symbols:
            raise StateError(
                f"{self.state} › the bar store holds {', '.join(self.store.symbols())}, not "
                f"{', '.join(self.symbols)}"
            )
        self.book = checked_book(self.journal, self.store, self.cash, accept_state, self.state)

    def _unlock(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None

    # ------------------------------------------------------------------ running
    def pending_days(self) -> int | None:
        """Trading days still to come from a replay (``None``: a source without an end)."""
        calendar = capabilities_of(self.source).calendar
        if calendar is None:
            return None
        last = self.store.last_day()
        unfinished = int((self.store.released_days() > (self.book.last_day or pd.Timestamp.min)).sum())
        ahead = len(calendar) if last is None else int((calendar > last).sum())
        return unfinished + ahead

    def run(self, limit: int | None = None) -> dict[str, Any]:
        """Run until the source ends, ``limit`` LIVE days are done, or a stop is requested; returns
        :meth:`status`."""
        self._deliver_missed()
        if self.pending_days() == 0:
            self.last_stop = "finished"
            return self.status()
        self.journal.begin_run(self.argv)
        hub = self._hub = self._new_hub(limit)
        if self._stop_requested:
            hub.request_stop()
        cerebro = self._cerebro(hub)
        self._heartbeat("running")
        outcome = "interrupted"
        try:
            strategy = cerebro.run(live=True)[0]
            outcome = (
                "stopped"
                if self._stop_requested
                else ("limit" if limit is not None and hub.live_days >= limit else "finished")
            )
            self.counts = {"mixed_days": strategy.mixed_days, "live_days": strategy.live_days}
        finally:
            self._hub = None
            self.book = self.journal.book(self.cash)
            self.journal.end_run(outcome)
            self.last_stop = outcome
            self._heartbeat(outcome)
        return self.status()

    def _new_hub(self, limit: int | None) -> BarHub:
        """The hub for this run: back-fill the days the journal has, redo a released but uncommitted day."""
        released = self.store.released_days()
        start = pd.Timestamp(self.meta["start"]) if self.meta["start"] != "watch" else pd.Timestamp.min
        done = self.book.last_day or pd.Timestamp.min
        backfill = [d for d in released if start <= d <= done]
        redo = [d for d in released if d > done]
        known = self.store.known_through()
        if known is not None:
            self.source.seek(known)
        service = self._training_service()
        hub = BarHub(
            self.source,
            self.store,
            self.symbols,
            backfill=backfill,
            redo=redo,
            limit=limit,
            poll_seconds=self.poll_seconds,
            on_wait=self._waiting,
            before_release=service.wait if self._replays_overnight() else None,
            max_move=self.config.data.max_move,
        )
        return hub

    def _cerebro(self, hub: BarHub) -> bt.Cerebro:
        """Cerebro on the hub's live feeds, with the paper broker (book restored) and the paper strategy."""
        service = self._training_service()
        cerebro = bt.Cerebro(stdstats=False)
        broker = PaperBroker()
        broker.setcash(self.cash)
        cerebro.broker = broker
        cerebro.addstore(hub)
        feeds = {s: hub.getdata(s) for s in self.symbols}
        for symbol, feed in feeds.items():
            cerebro.adddata(feed, name=symbol)
        broker.bind(list(feeds.values()))
        if self.book.last_day is not None:
            broker.restore(self.cash, self.book.cash, {feeds[s]: p for s, p in self.book.positions.items()})
        cerebro.addstrategy(
            PaperStrategy,
            config=self.config,
            registry=self.registry,
            source=self.store,
            journal=self.journal,
            book=self.book,
            run_id=self.run_id,
            days=self.store.released_days,
            on_day=self._day_done,
            service=service,
            take_trainings=self._take_trainings,
            deliver=self._deliver,
            train=self.train,
        )
        return cerebro

    def _replays_overnight(self) -> bool:
        """A replay at ``speed=0`` gives each day the night a live run has: trainings started on a day
        finish before the next day is released, so the run does not depend on how fast this machine is."""
        return capabilities_of(self.source).overnight and not self._training_service().backend.inline

    def _training_service(self) -> TrainingService:
        """One service for the session's life: background trainings go on between :meth:`step` calls,
        and a new session takes the queue up where the journal's last day left it."""
        if self._service is None:
            universe = sorted(self.symbols)  # as LSTMSignals orders its feeds
            self._service = bar_clock_service(
                self.config,
                self.store,
                self.registry,
                universe,
                backend=self.backend,
                plugins=self.plugins,
                growing=True,
            )
            self._service.restore_plan(self.book.training_plan)
            self._service.add_listener(self._trained)
        return self._service

    def _deliver(
        self,
        when: pd.Timestamp,
        orders: list[dict[str, Any]],
        fills: list[dict[str, Any]],
        book: dict[str, Any],
    ) -> None:
        """Hand a committed day to the ``lstm_paper_day`` plugins (a broker adapter), then journal that it
        was: a run that ends in between hands it over at its next start, with the same client ids."""
        self.delivering = True
        try:
            self._training_service().plugins.call_each(
                "lstm_paper_day", when=when, orders=orders, fills=fills, book=book
            )
        finally:
            self.delivering = False
        self.journal.delivered(when)

    def _deliver_missed(self) -> None:
        """The committed days the plugins were not handed (the last run ended while a plugin ran)."""
        for day in self.journal.undelivered():
            logger.info(
                "handing %s to the plugins again: the last run ended before they had it", f"{day:%Y-%m-%d}"
            )
            self._deliver(**self.journal.day_report(day))

    def _trained(self, job: JobView) -> None:
        assert self._service is not None
        self._finished.append(training_row(job, self._service.clock.now()))

    def _take_trainings(self) -> list[dict[str, Any]]:
        """Trainings finished since the last call (reported at the next rebalance)."""
        taken, self._finished[:] = list(self._finished), []
        return taken

    def step(self, days: int = 1) -> dict[str, Any]:
        """Process ``days`` more trading days, synchronously (no threads): for notebooks."""
        return self.run(limit=days)

    def wait_for_training(self, timeout: float | None = None) -> bool:
        """Block until no training runs (queued ones wait for the next day's pass); ``False`` on timeout."""
        return True if self._service is None else self._service.wait(timeout)

    def request_stop(self) -> None:
        """Stop after the day in progress (safe from a signal handler)."""
        self._stop_requested = True
        if self._hub is not None:
            self._hub.request_stop()

    def _day_done(self, summary: dict[str, Any]) -> None:
        self._training = summary["training"]
        self._last_bar = summary["date"]
        if self.on_day is not None:
            self.on_day(summary)
        self._heartbeat("running", summary["date"])

    def _waiting(self, why: str) -> None:
        self._heartbeat(why)
        if self.on_wait is not None:
            self.on_wait(why)

    def _heartbeat(self, state: str, last_bar: pd.Timestamp | None = None) -> None:
        hub = self._hub
        last_bar = last_bar or self._last_bar or self.book.last_day
        beat = {
            "pid": os.getpid(),
            "updated": pd.Timestamp.now("UTC").isoformat(timespec="seconds"),
            "wall": time.time(),
            "state": state,
            "last_bar": None if last_bar is None else f"{last_bar:%Y-%m-%d}",
            "waiting_for": hub.waiting_for() if hub is not None else [],
            "source": self.source.name,
            "source_error": hub.error if hub is not None else None,
            "training": self._training,
        }
        write_heartbeat(self.state, beat)

    # ------------------------------------------------------------------ reading
    def status(self) -> dict[str, Any]:
        """The book and the run's progress (``lstm-plugin paper status``)."""
        from lstm_plugin.backtrader.live.status import paper_status

        return paper_status(self.state, journal=self.journal, registry=self.registry)

    def equity(self) -> pd.Series:
        """The value at each committed day's close."""
        rows = self.journal.rows("days")
        return pd.Series(
            [r["value"] for r in rows],
            index=pd.DatetimeIndex([r["date"] for r in rows], name="date"),
            name="value",
        )

    def close(self, wait: bool = True) -> None:
        """Stop the training service (``wait``: let running trainings finish and publish), release the
        folder."""
        if self._service is not None:
            waiting = self._service.queue_summary()["queued"]
            self._service.shutdown(None if wait else 0)
            # the queued jobs wait for the next run (the journal's plan requeues them); the running ones are
            # done
            self._training = dict(self._service.queue_summary(), queued=waiting)
            self._service = None
            self._heartbeat(self.last_stop)
        self.journal.close()
        self.store.close()
        self._unlock()

    def __enter__(self) -> PaperSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
