"""The hub: one complete trading day for every symbol at once, from a :class:`BarSource` to the feeds.

Backtrader asks each live feed for a bar in turn; feeds that got theirs at different moments would
hand the strategy a rebalance bar on which they hold different dates. The hub is a Backtrader
*store* (``cerebro.addstore``), asked once at the top of every loop, before any feed: only then,
and only when every feed has taken the previous day, it releases the next one into all feeds'
queues together. A day D is released once every symbol is complete through D (a barrier), and is
first appended to the bar store, so nothing downstream can read a bar the store does not hold.

Back-filled days of a resumed run come first, marked ``DELAYED`` (nothing trades on them); then
days the store released but the journal did not finish, then new days, ``LIVE``. A failing source
turns the feeds ``DISCONNECTED`` until a poll succeeds again.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd

from lstm_plugin.backtrader.live.delivery import Held, clean_delivery
from lstm_plugin.backtrader.live.feed import LiveFeed
from lstm_plugin.backtrader.live.sources import BarSource, SourceError
from lstm_plugin.backtrader.live.store import COLUMNS as OHLCV
from lstm_plugin.backtrader.live.store import BarStore
from lstm_plugin.core.errors import DataError
from lstm_plugin.core.quoting import one_line

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


@dataclass(frozen=True)
class ReleasedDay:
    """A trading day handed to the feeds: its bars (symbols that traded) and how it is delivered."""

    date: pd.Timestamp
    bars: dict[str, pd.DataFrame]
    status: int  # LiveFeed.DELAYED or LiveFeed.LIVE


class BarHub:
    """See the module docstring. ``limit``: finish after handing out that many LIVE days
    (``PaperSession.step``); ``before_release()``: called before a new day is taken from the source."""

    def __init__(
        self,
        source: BarSource,
        store: BarStore,
        symbols: Iterable[str],
        *,
        backfill: Iterable[pd.Timestamp] = (),
        redo: Iterable[pd.Timestamp] = (),
        limit: int | None = None,
        poll_seconds: float = 1.0,
        on_wait: Callable[[str], None] | None = None,
        before_release: Callable[[], object] | None = None,
        max_move: float | None = None,
    ) -> None:
        self.source = source
        self.store = store
        self.symbols = list(symbols)
        self.feeds: dict[str, LiveFeed] = {}
        self._ready: deque[ReleasedDay] = deque()
        known = store.day_bars(list(backfill) + list(redo))
        self._ready.extend(ReleasedDay(d, known[d], LiveFeed.DELAYED) for d in backfill)
        self._ready.extend(ReleasedDay(d, known[d], LiveFeed.LIVE) for d in redo)
        self._pending: dict[str, pd.DataFrame] = {}
        self._complete: dict[str, pd.Timestamp] = {}
        self._source_done = False
        self.limit = limit
        self.live_days = 0  # LIVE days handed out
        self.poll_seconds = poll_seconds
        self.on_wait = on_wait
        self.before_release = before_release  # called before each new day: a replay lets its trainings finish
        self.max_move = max_move  # data.max_move: the implausible-move guard of new bars
        self.finished = False
        self.current: ReleasedDay | None = None
        self.error: str | None = None
        self._stop = threading.Event()

    # ------------------------------------------------------------------ feeds
    def getdata(self, symbol: str) -> LiveFeed:
        """The feed of ``symbol`` (add it with ``cerebro.adddata(feed, name=symbol)``)."""
        feed = self.feeds.get(symbol)
        if feed is None:
            # Backtrader params are keyword arguments its metaclass reads
            feed = self.feeds[symbol] = LiveFeed(hub=self, symbol=symbol)  # type: ignore[call-arg]
        return feed

    def request_stop(self) -> None:
        """Finish after the day in progress (a signal handler may call this)."""
        self._stop.set()

    # ------------------------------------------------------------------ Backtrader store protocol
    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def get_notifications(self) -> list:
        self.pump()
        return []

    # ------------------------------------------------------------------ releasing days
    def pump(self) -> ReleasedDay | None:
        """Release the next day if every feed has taken the last one; returns it (``None``: nothing now)."""
        if self.finished or any(feed.queued() for feed in self.feeds.values()):
            return None
        if self._stop.is_set() or (self.limit is not None and self.live_days >= self.limit):
            self.finished = True
            return None
        if self._ready:
            return self._deliver(self._ready.popleft())
        if self.before_release is not None and self.current is not None:
            self.before_release()
        day = self._next_complete_day()
        if day is None:
            if self._source_done and not self._pending:
                self.finished = True
            elif self.error is None:
                self._idle("waiting for bars")
            return None
        bars = {s: f.loc[[day]] for s, f in self._pending.items() if day in f.index}
        for symbol in bars:
            rest = self._pending[symbol].loc[day + pd.Timedelta(microseconds=1) :]
            if len(rest):
                self._pending[symbol] = rest
            else:
                del self._pending[symbol]
        self.store.append_day(day, bars, pd.Timestamp.now("UTC").isoformat(timespec="seconds"))
        return self._deliver(ReleasedDay(day, bars, LiveFeed.LIVE))

    def _next_complete_day(self) -> pd.Timestamp | None:
        """The earliest pending day every symbol is complete through; polls the source when there is none."""
        day = self._complete_day()
        if day is not None or self._source_done:
            return day
        try:
            delivery = self.source.poll()
            new = {symbol: self._accepted(symbol, frame) for symbol, frame in delivery.bars.items()}
        except SourceError as exc:
            self._disconnected(str(exc))
            return None
        if self.error is not None:
            logger.warning("source %s is back", self.source.name)
            self.error = None
        for symbol, frame in new.items():
            if len(frame):
                self._pending[symbol] = (
                    pd.concat([self._pending[symbol], frame]) if symbol in self._pending else frame
                )
        self._complete.update(delivery.complete_through)
        self._source_done = delivery.finished
        return self._complete_day()

    def _complete_day(self) -> pd.Timestamp | None:
        if not self._pending:
            return None
        day = min(f.index[0] for f in self._pending.values())
        if all(self._complete.get(s, pd.Timestamp.min) >= day for s in self.symbols) or self._source_done:
            return day
        return None

    def _accepted(self, symbol: str, frame: object) -> pd.DataFrame:
        """The new, cleaned rows of one symbol's delivery (:mod:`~lstm_plugin.backtrader.live.delivery`); a
        bad row is a :class:`SourceError`."""
        if symbol not in self.symbols:
            raise SourceError(f"{self.source.name} › delivered {symbol!r}, not one of the run's symbols")
        try:
            return clean_delivery(frame, self.source.name, symbol, self._held(symbol), self.max_move)
        except DataError as exc:
            raise SourceError(one_line(str(exc))) from None

    def _held(self, symbol: str) -> Held:
        """What the run holds of ``symbol``: its pending rows, else the bar store's (dates read if asked)."""
        pending = self._pending.get(symbol)
        if pending is not None and len(pending):
            newest, last_close = pending.index[-1], float(pending["close"].iloc[-1])
            return Held(newest, last_close, lambda: self._stored_dates(symbol).append(pending.index))
        return Held(
            self.store.last_bar(symbol), self.store.last_close(symbol), lambda: self._stored_dates(symbol)
        )

    def _stored_dates(self, symbol: str) -> pd.DatetimeIndex:
        return self.store.load(symbol).index if symbol in self.store.symbols() else pd.DatetimeIndex([])

    def _deliver(self, day: ReleasedDay) -> ReleasedDay:
        self.current = day
        self.live_days += day.status == LiveFeed.LIVE
        for symbol, feed in self.feeds.items():
            feed.set_status(day.status)
            frame = day.bars.get(symbol)
            if frame is not None:  # by name: the columns a source delivered were cleaned, never positional
                feed.push(
                    frame.index[0], frame.to_numpy(dtype="float64")[0, frame.columns.get_indexer(OHLCV)]
                )
        return day

    def _disconnected(self, message: str) -> None:
        if self.error != message:
            logger.warning("source %s failed: %s", self.source.name, message)
        self.error = message
        known = self.store.known_through()
        if known is not None:  # deliver again from what the store holds: a refused row comes back when fixed
            try:
                self.source.seek(known)
            except Exception as exc:  # a plugin's source can raise anything; the next poll will tell
                logger.debug("seek after a failed delivery: %s", exc)
        for feed in self.feeds.values():
            feed.set_status(LiveFeed.DISCONNECTED)
        self._idle(f"disconnected: {message}")

    def _idle(self, why: str) -> None:
        if self.on_wait is not None:
            self.on_wait(why)
        self._stop.wait(self.poll_seconds)

    def waiting_for(self) -> list[str]:
        """Symbols the barrier waits for (complete through an earlier day than the next pending one)."""
        if not self._pending:
            return []
        day = min(f.index[0] for f in self._pending.values())
        return sorted(s for s in self.symbols if self._complete.get(s, pd.Timestamp.min) < day)
