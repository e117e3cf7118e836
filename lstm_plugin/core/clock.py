"""One clock runs everything: the bar clock in backtests, the wall clock in live runs.

Cache TTLs, model ages and "outdated" are measured on the clock handed in, never on
``datetime.now()`` directly, so tests move time without sleeping and backtests never read the
wall clock.
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol, runtime_checkable

import pandas as pd

logger = logging.getLogger(__name__)

__all__ = ["Clock", "ManualClock", "SystemClock", "as_timestamp", "default_clock", "resolve_as_of"]


def as_timestamp(value: object) -> pd.Timestamp:
    """A naive ``pd.Timestamp`` (timezone-aware values are converted to UTC first)."""
    stamp = pd.Timestamp(value)
    if stamp is pd.NaT:
        raise ValueError(f"not a date: {value!r}")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp


def resolve_as_of(as_of: object, now: pd.Timestamp) -> pd.Timestamp:
    """``as_of`` as a timestamp (``None``: ``now``); a time after ``now`` raises :class:`ValueError`,
    since answering for it would read data the clock has not reached."""
    if as_of is None:
        return now
    try:
        when = as_timestamp(as_of)
    except (TypeError, ValueError):
        raise ValueError(f"as_of › not a date (got: {as_of!r})") from None
    if when > now:
        raise ValueError(
            f"as_of › {when:%Y-%m-%d %H:%M} is after the clock's now ({now:%Y-%m-%d %H:%M}); it would read "
            f"the future"
        )
    return when


@runtime_checkable
class Clock(Protocol):
    def now(self) -> pd.Timestamp:
        """The current time as a naive timestamp."""
        ...


class SystemClock:
    """The wall clock (local time, naive)."""

    def now(self) -> pd.Timestamp:
        return pd.Timestamp.now()


class ManualClock:
    """A clock that only moves when told: the bar clock of backtests and the clock of tests."""

    def __init__(self, start: object) -> None:
        self._now = as_timestamp(start)

    def now(self) -> pd.Timestamp:
        return self._now

    def set(self, when: object) -> None:
        self._now = as_timestamp(when)

    def advance(self, seconds: float = 0.0, days: float = 0.0) -> None:
        self._now = self._now + pd.Timedelta(seconds=seconds, days=days)


_announced = threading.Event()


def default_clock(source: object = None, level: int = logging.WARNING) -> Clock:
    """The clock of an object given none: the wall clock, except over a fixed historical sample.

    A source with a ``sample_end`` (the bundled data, which stops on 2021-04-21) gets a
    :class:`ManualClock` standing on that last bar, so "now" is a day the data knows and scans do
    not reject every symbol as years stale; a log line says so once per process. A user's own
    data never has a ``sample_end``: a stale live feed stays visibly stale.
    """
    end = getattr(source, "sample_end", None)
    if end is None:
        return SystemClock()
    if not _announced.is_set():
        _announced.set()
        logger.log(
            level,
            "%s ends on %s: its clock stands on that day, not today (pass as_of= or clock= to choose another "
            "time)",
            getattr(source, "name", "the data"),
            end,
        )
    return ManualClock(end)
