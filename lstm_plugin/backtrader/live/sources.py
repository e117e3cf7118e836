"""Where live bars come from: the :class:`BarSource` port, a replay of any DataSource, and a watched
folder.

A source hands out *new* bars per symbol and says, per symbol, through which date its bars are
complete. It never decides when a trading day is complete for the whole universe: the hub does
(:mod:`lstm_plugin.backtrader.live.hub`), so a source may deliver symbols staggered, in any order.
What a source can promise beyond that (a replay's first day, its calendar, that it waits for the
night's trainings) it declares in :class:`SourceCapabilities`; the session reads those, never the
source's type (docs/paper.md, *Adapters*).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import pandas as pd

from lstm_plugin.core.data import MAX_FILE_MB, DataSource, read_ohlcv_csv, validate_symbol
from lstm_plugin.core.errors import DataError, LSTMPluginError

__all__ = [
    "LIVE",
    "BarSource",
    "Delivery",
    "DirectorySource",
    "ReplaySource",
    "SourceCapabilities",
    "SourceError",
    "capabilities_of",
]


class SourceError(LSTMPluginError):
    """The source cannot deliver now (a folder gone, a file half-written, a network down): feeds go
    DISCONNECTED."""


@dataclass
class Delivery:
    """What one poll brought: new bars per symbol, and the date each symbol is complete through."""

    bars: dict[str, pd.DataFrame] = field(default_factory=dict)
    complete_through: dict[str, pd.Timestamp] = field(default_factory=dict)
    finished: bool = False  # no bar will ever come again (a replay's end)


@dataclass(frozen=True)
class SourceCapabilities:
    """What a source promises the session beyond new bars; the defaults (:data:`LIVE`) promise nothing.

    - ``replay_start``: the first day it releases as live (bars before it are history), so a resumed
      run knows which journaled days are its own; ``None``: a live feed, every day it brings is new;
    - ``calendar``: every day it will release, so a run knows how many are left and when it is
      done; ``None``: open-ended;
    - ``overnight``: it releases the next day only when the run asks for it, so trainings started
      on a day may finish before the next one (a replay as fast as it is taken); the run then
      waits for them, as a live night would, and does not depend on this machine's speed.
    """

    replay_start: pd.Timestamp | None = None
    calendar: pd.DatetimeIndex | None = None
    overnight: bool = False


#: A live feed's capabilities: no start, no end, no waiting.
LIVE = SourceCapabilities()


def capabilities_of(source: object) -> SourceCapabilities:
    """``source.capabilities`` when it declares them, else :data:`LIVE` (a source of an older plugin)."""
    declared = getattr(source, "capabilities", None)
    return declared if isinstance(declared, SourceCapabilities) else LIVE


@runtime_checkable
class BarSource(Protocol):
    """A feed of daily bars for a fixed list of symbols (docs/paper.md, *Adapters*).

    It may also have a ``capabilities`` attribute (:class:`SourceCapabilities`); without one it is
    taken for a live feed.
    """

    name: str

    def symbols(self) -> list[str]:
        """The symbols it delivers."""
        ...

    def history(self, symbol: str) -> pd.DataFrame:
        """Bars known before the live part starts (they seed the bar store on a first run)."""
        ...

    def seek(self, after: pd.Timestamp) -> None:
        """Deliver only bars dated after ``after`` from now on (a resumed run)."""
        ...

    def poll(self) -> Delivery:
        """New bars since the last poll; raises :class:`SourceError` when the source fails."""
        ...


class ReplaySource:
    """A :class:`~lstm_plugin.core.data.DataSource` released one trading day at a time from ``start``.

    ``speed``: trading days per second (``0``: as fast as they are taken; to step by hand, use
    :meth:`~lstm_plugin.backtrader.live.session.PaperSession.step`). Bars before ``start`` are the history;
    the replay ends after ``until`` (or the data's last bar).
    """

    def __init__(
        self,
        source: DataSource,
        symbols: Iterable[str],
        start: pd.Timestamp | str,
        until: pd.Timestamp | str | None = None,
        speed: float = 0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = f"replay of {source.name}"
        self.source = source
        self._symbols = [validate_symbol(s) for s in symbols]
        self.start = pd.Timestamp(start)
        self.until = None if until is None else pd.Timestamp(until)
        frames = {s: source.load(s) for s in self._symbols}
        self._frames = {
            s: f.loc[self.start : self.until] if self.until is not None else f.loc[self.start :]
            for s, f in frames.items()
        }
        self._history = {s: f.loc[: self.start - pd.Timedelta(microseconds=1)] for s, f in frames.items()}
        self.calendar = pd.DatetimeIndex(sorted(set().union(*(f.index for f in self._frames.values()))))
        if len(self.calendar) == 0:
            raise DataError(
                f"{source.name} › no bars from {self.start:%Y-%m-%d}"
                + (f" to {self.until:%Y-%m-%d}" if self.until is not None else "")
            )
        self.speed = speed
        self._timer = timer
        self._next = 0  # index into the calendar of the next day to release
        self._last_release = -float("inf")

    @property
    def capabilities(self) -> SourceCapabilities:
        return SourceCapabilities(replay_start=self.start, calendar=self.calendar, overnight=self.speed == 0)

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def history(self, symbol: str) -> pd.DataFrame:
        return self._history[symbol]

    def seek(self, after: pd.Timestamp) -> None:
        self._next = int(self.calendar.searchsorted(after, side="right"))

    def _may_release(self) -> bool:
        return self.speed == 0 or self._timer() - self._last_release >= 1.0 / self.speed

    def poll(self) -> Delivery:
        if self._next >= len(self.calendar):
            return Delivery(finished=True)
        if not self._may_release():
            return Delivery()
        day = self.calendar[self._next]
        self._next += 1
        self._last_release = self._timer()
        bars = {s: f.loc[[day]] for s, f in self._frames.items() if day in f.index}
        return Delivery(bars, {s: day for s in self._symbols}, finished=self._next >= len(self.calendar))


class DirectorySource:
    """A folder of ``SYMBOL.csv`` files that someone appends end-of-day rows to.

    Each poll re-reads the files whose size or modification time changed and delivers the rows
    dated after what was already delivered; a symbol is complete through its file's last row. A
    file that is missing, unreadable or malformed (a row half-written) is a :class:`SourceError`;
    the next good poll recovers.
    """

    def __init__(self, folder: str | Path, symbols: Iterable[str], max_file_mb: int = MAX_FILE_MB) -> None:
        self.folder = Path(folder)
        self.max_file_mb = max_file_mb
        self.name = f"folder {self.folder}"
        self._symbols = [validate_symbol(s) for s in symbols]
        self._seen: dict[str, tuple[int, int]] = {}
        self._frames: dict[str, pd.DataFrame] = {}
        self._delivered: dict[str, pd.Timestamp] = {}

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def _path(self, symbol: str) -> Path:
        for name in (f"{symbol}.csv", f"{symbol}.csv.gz"):
            if (self.folder / name).is_file():
                return self.folder / name
        raise SourceError(f"{self.folder} › no {symbol}.csv")

    def _frame(self, symbol: str) -> pd.DataFrame:
        path = self._path(symbol)
        try:
            stat = path.stat()
        except OSError as exc:
            raise SourceError(f"{path} › {exc.strerror}") from None
        key = (stat.st_size, stat.st_mtime_ns)
        if self._seen.get(symbol) != key or symbol not in self._frames:
            try:
                self._frames[symbol] = read_ohlcv_csv(path, self.max_file_mb)
            except DataError as exc:
                raise SourceError(str(exc)) from None
            self._seen[symbol] = key
        return self._frames[symbol]

    def history(self, symbol: str) -> pd.DataFrame:
        try:
            frame = self._frame(symbol)
        except SourceError as exc:
            raise DataError(str(exc)) from None
        if len(frame):
            self._delivered[symbol] = frame.index[-1]
        return frame

    def seek(self, after: pd.Timestamp) -> None:
        for symbol in self._symbols:
            self._delivered[symbol] = after

    def poll(self) -> Delivery:
        delivery = Delivery()
        for symbol in self._symbols:
            frame = self._frame(symbol)
            after = self._delivered.get(symbol)
            new = frame if after is None else frame.loc[after + pd.Timedelta(microseconds=1) :]
            if len(new):
                delivery.bars[symbol] = new
                self._delivered[symbol] = new.index[-1]
            if len(frame):
                delivery.complete_through[symbol] = frame.index[-1]
        return delivery
