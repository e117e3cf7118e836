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

from ..data import DataSource, validate_symbol
from .sqlite import connect

__all__ = ["BarStore", "STORE_FILE"]

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
    """Cleaned daily bars of a fixed universe: history first (:meth:`seed`), then released days (:meth:`append_day`)."""

    def __init__(self, folder: str | Path) -> None:
        super().__init__()
        self.path = Path(folder) / STORE_FILE
        self.name = f"bar store {self.path}"
        self._db = connect(self.path, _SCHEMA)
        self._symbols = [row[0] for row in self._db.execute("SELECT symbol FROM symbols ORDER BY symbol")]

    def symbols(self) -> list[str]:
        return list(self._symbols)

    @property
    def seeded(self) -> bool:
        return bool(self._symbols)

    def seed(self, history: Mapping[str, pd.DataFrame]) -> None:
        """The bars known before the run (a first start only), all symbols in one transaction."""
        with self._db:
            for symbol, frame in history.items():
                self._db.execute("INSERT INTO symbols VALUES (?)", (validate_symbol(symbol),))
                self._insert(symbol, frame)
        self._symbols = sorted(validate_symbol(s) for s in history)
        with self._lock:
            self._cache.clear()

    def _insert(self, symbol: str, frame: pd.DataFrame) -> None:
        dates = [f"{d:%Y-%m-%d}" for d in frame.index]
        values = frame[list(COLUMNS)].to_numpy(dtype="float64").tolist()
        self._db.executemany("INSERT INTO bars VALUES (?, ?, ?, ?, ?, ?, ?)", [(symbol, d, *v) for d, v in zip(dates, values)])

    def append_day(self, day: pd.Timestamp, bars: Mapping[str, pd.DataFrame], released: str) -> None:
        """One released trading day: its bars (the symbols that traded) and the day itself, atomically."""
        with self._db:
            for symbol, frame in bars.items():
                self._insert(symbol, frame)
            self._db.execute("INSERT INTO days VALUES (?, ?)", (f"{day:%Y-%m-%d}", released))
        with self._lock:
            for symbol, frame in bars.items():
                cached = self._cache.get(symbol)
                if cached is not None:
                    self._cache[symbol] = pd.concat([cached, frame[list(COLUMNS)].astype("float64")])

    def released_days(self) -> pd.DatetimeIndex:
        """Every trading day this store has released, in order."""
        return pd.DatetimeIndex([pd.Timestamp(r[0]) for r in self._db.execute("SELECT date FROM days ORDER BY date")])

    def last_day(self) -> pd.Timestamp | None:
        row = self._db.execute("SELECT max(date) FROM days").fetchone()
        return None if row[0] is None else pd.Timestamp(row[0])

    def day_bars(self, days: Iterable[pd.Timestamp]) -> dict[pd.Timestamp, dict[str, pd.DataFrame]]:
        """The bars of released ``days``, per day and symbol (to back-fill feeds on a resumed run)."""
        out: dict[pd.Timestamp, dict[str, pd.DataFrame]] = {}
        for day in days:
            rows = self._db.execute("SELECT symbol, open, high, low, close, volume FROM bars WHERE date = ?", (f"{day:%Y-%m-%d}",))
            out[day] = {symbol: _frame([day], [values]) for symbol, *values in rows}
        return out

    def _read(self, symbol: str) -> pd.DataFrame:
        rows = self._db.execute("SELECT date, open, high, low, close, volume FROM bars WHERE symbol = ? ORDER BY date", (symbol,)).fetchall()
        return _frame([pd.Timestamp(r[0]) for r in rows], [r[1:] for r in rows])  # cleaned before it was stored

    def close(self) -> None:
        self._db.close()


def _frame(dates: list[pd.Timestamp], values: list) -> pd.DataFrame:
    array = np.asarray(values, dtype="float64").reshape(len(dates), len(COLUMNS))
    return pd.DataFrame(array, columns=list(COLUMNS), index=pd.DatetimeIndex(dates, name="date").as_unit("ns"))

