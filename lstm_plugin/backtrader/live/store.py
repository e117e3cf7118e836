"""The bar store: every bar a live run has seen, in the state folder, as the run's only DataSource.

Features, training and scores read bars from here, so a model can never read a bar that has not
been delivered. It is a SQLite file (``bars.sqlite``, WAL): values are stored as the exact doubles
the cleaned frames hold, and a released day is appended in one transaction (all its symbols, or none).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from lstm_plugin.backtrader.live.sqlite import connect, transaction
from lstm_plugin.core.data import DataSource, validate_symbol

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

STORE_FILE = "bars.sqlite"
COLUMNS = ("open", "high", "low", "close", "volume")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bars (
    symbol TEXT NOT NULL, date TEXT NOT NULL,
    open REAL NOT NULL, high REAL NOT NULL, low REAL NOT NULL, close REAL NOT NULL, volume REAL NOT NULL,
    PRIMARY KEY (symbol, date)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS days (date TEXT PRIMARY KEY, released TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS symbols (symbol TEXT PRIMARY KEY) WITHOUT ROWID;
"""


class BarStore(DataSource):
    """Cleaned daily bars of a fixed universe: history first (:meth:`seed`), then released days
    (:meth:`append_day`)."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__()
        self.path = Path(folder) / STORE_FILE
        self.name = f"bar store {self.path}"
        self._db = connect(self.path, _SCHEMA)
        self._symbols = [row[0] for row in self._db.execute("SELECT symbol FROM symbols ORDER BY symbol")]
        newest = "SELECT symbol, max(date), close FROM bars GROUP BY symbol"  # SQLite: close of the max row
        self._last: dict[str, tuple[pd.Timestamp, float]] = {
            symbol: (pd.Timestamp(date), float(close)) for symbol, date, close in self._db.execute(newest)
        }
        self._appended: dict[
            str, list[tuple[pd.Timestamp, np.ndarray]]
        ] = {}  # released rows not yet joined to a cached frame

    def symbols(self) -> list[str]:
        return list(self._symbols)

    @property
    def seeded(self) -> bool:
        return bool(self._symbols)

    def seed(self, history: Mapping[str, pd.DataFrame]) -> None:
        """The bars known before the run (a first start only), all symbols in one transaction."""
        with transaction(self._db, self.path):
            for symbol, frame in history.items():
                self._db.execute("INSERT INTO symbols VALUES (?)", (validate_symbol(symbol),))
                self._insert(symbol, frame)
        self._symbols = sorted(validate_symbol(s) for s in history)
        with self._lock:
            self._cache.clear()
            self._appended.clear()
            self._last = {
                validate_symbol(s): (f.index[-1], float(f["close"].iloc[-1]))
                for s, f in history.items()
                if len(f)
            }

    def _insert(self, symbol: str, frame: pd.DataFrame) -> None:
        dates = [f"{d:%Y-%m-%d}" for d in frame.index]
        values = _values(frame).tolist()
        self._db.executemany(
            "INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(symbol, d, *v) for d, v in zip(dates, values, strict=True)],
        )

    def append_day(self, day: pd.Timestamp, bars: Mapping[str, pd.DataFrame], released: str) -> None:
        """One released trading day: its bars (the symbols that traded) and the day itself, atomically."""
        with transaction(self._db, self.path):
            for symbol, frame in bars.items():
                self._insert(symbol, frame)
            self._db.execute("INSERT INTO days VALUES (?, ?)", (f"{day:%Y-%m-%d}", released))
        with self._lock:
            for symbol, frame in bars.items():
                self._last[symbol] = (frame.index[-1], float(frame["close"].iloc[-1]))
                if symbol in self._cache:
                    self._appended.setdefault(symbol, []).extend(
                        zip(frame.index, _values(frame), strict=True)
                    )

    def load(self, symbol: str, end: pd.Timestamp | str | None = None) -> pd.DataFrame:
        """As :meth:`DataSource.load`; rows released since the last call are joined to the cached frame
        first."""
        canonical = validate_symbol(symbol)
        with self._lock:
            extra = self._appended.pop(canonical, None)
            if extra:  # numpy, not pd.concat: a rebalance joins about twenty rows to each of many symbols
                cached = self._cache[canonical]
                dates = pd.DatetimeIndex([day for day, _ in extra]).as_unit("ns")
                self._cache[canonical] = pd.DataFrame(
                    np.concatenate([cached.to_numpy(), np.vstack([row for _, row in extra])]),
                    columns=cached.columns,
                    index=cached.index.append(dates).rename("date"),
                )
        return super().load(canonical, end)

    def released_days(self) -> pd.DatetimeIndex:
        """Every trading day this store has released, in order."""
        return pd.DatetimeIndex(
            [pd.Timestamp(r[0]) for r in self._db.execute("SELECT date FROM days ORDER BY date")]
        )

    def last_day(self) -> pd.Timestamp | None:
        row = self._db.execute("SELECT max(date) FROM days").fetchone()
        return None if row[0] is None else pd.Timestamp(row[0])

    def last_bar(self, symbol: str) -> pd.Timestamp | None:
        """The date of ``symbol``'s newest stored bar (history or released)."""
        last = self._last.get(validate_symbol(symbol))
        return None if last is None else last[0]

    def last_close(self, symbol: str) -> float | None:
        """The close of ``symbol``'s newest stored bar."""
        last = self._last.get(validate_symbol(symbol))
        return None if last is None else last[1]

    def known_through(self) -> pd.Timestamp | None:
        """The day a resumed source starts after: the last released day, else the oldest of the
        symbols' last history bars (so a symbol whose history ends earlier loses no row)."""
        last = self.last_day()
        if last is not None:
            return last
        ends = [end for s in self._symbols if (end := self.last_bar(s)) is not None]
        return min(ends) if ends else None

    def day_bars(self, days: Iterable[pd.Timestamp]) -> dict[pd.Timestamp, dict[str, pd.DataFrame]]:
        """The bars of released ``days``, per day and symbol (to back-fill feeds on a resumed run)."""
        out: dict[pd.Timestamp, dict[str, pd.DataFrame]] = {}
        for day in days:
            rows = self._db.execute(
                "SELECT symbol, open, high, low, close, volume FROM bars WHERE date = ?", (f"{day:%Y-%m-%d}",)
            )
            out[day] = {symbol: _frame([day], [values]) for symbol, *values in rows}
        return out

    def _read(self, symbol: str) -> pd.DataFrame:
        rows = self._db.execute(
            "SELECT date, open, high, low, close, volume FROM bars WHERE symbol = ? ORDER BY date", (symbol,)
        ).fetchall()
        return _frame(
            [pd.Timestamp(r[0]) for r in rows], [r[1:] for r in rows]
        )  # cleaned before it was stored

    def close(self) -> None:
        self._db.close()


def _values(frame: pd.DataFrame) -> np.ndarray:
    """The OHLCV values of a cleaned frame, as float64 in :data:`COLUMNS` order."""
    columns = frame if list(frame.columns) == list(COLUMNS) else frame[list(COLUMNS)]
    return columns.to_numpy(dtype="float64")


def _frame(dates: list[pd.Timestamp], values: list) -> pd.DataFrame:
    array = np.asarray(values, dtype="float64").reshape(len(dates), len(COLUMNS))
    return pd.DataFrame(
        array, columns=list(COLUMNS), index=pd.DatetimeIndex(dates, name="date").as_unit("ns")
    )
