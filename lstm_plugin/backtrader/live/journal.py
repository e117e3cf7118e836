"""The paper run's journal: one SQLite file (WAL) of runs, orders, fills, cash, positions and decisions.

A trading day is written in one transaction (:meth:`Journal.commit_day`): the fills at its open,
its decision with the forecasts and the model version + sha256 used per symbol, the orders sent at
its close, and the book after it. A run killed at any moment therefore leaves whole days only, and
a restart redoes the interrupted day from the same book, with the same result. Orders carry the
client id ``run:bar-date:symbol`` (unique), so the same bar can never place an order twice.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.backtrader.live.sqlite import connect, transaction
from lstm_plugin.core import jsonio

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

JOURNAL_FILE = "journal.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started TEXT NOT NULL, pid INTEGER, argv TEXT, ended TEXT, outcome TEXT
);
CREATE TABLE IF NOT EXISTS days (
    date TEXT PRIMARY KEY, run INTEGER NOT NULL, cash REAL NOT NULL, value REAL NOT NULL, rebalanced INTEGER NOT NULL,
    training_plan TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS orders (
    client_id TEXT PRIMARY KEY, run INTEGER NOT NULL, date TEXT NOT NULL, symbol TEXT NOT NULL,
    size REAL NOT NULL, target REAL NOT NULL, status TEXT NOT NULL, status_date TEXT
);
CREATE TABLE IF NOT EXISTS fills (
    client_id TEXT PRIMARY KEY REFERENCES orders(client_id), date TEXT NOT NULL, symbol TEXT NOT NULL,
    size REAL NOT NULL, price REAL NOT NULL, value REAL NOT NULL, commission REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS positions (
    date TEXT NOT NULL, symbol TEXT NOT NULL, size REAL NOT NULL, price REAL NOT NULL, PRIMARY KEY (date, symbol)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS decisions (
    date TEXT PRIMARY KEY, targets TEXT NOT NULL, forecasts TEXT NOT NULL, models TEXT NOT NULL, trainings TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY AUTOINCREMENT, run INTEGER, date TEXT, kind TEXT NOT NULL, message TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deliveries (date TEXT PRIMARY KEY, delivered TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS exits (
    client_id TEXT PRIMARY KEY REFERENCES orders(client_id), date TEXT NOT NULL, symbol TEXT NOT NULL,
    reason TEXT NOT NULL, score REAL, forecast REAL, model_type TEXT, model_version INTEGER, keep REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS exit_watch (date TEXT PRIMARY KEY, state TEXT NOT NULL) WITHOUT ROWID;
"""
#: The tables every journal has had: one that lost any of them is damaged (lstm_plugin.backtrader.live.sqlite)
TABLES = frozenset({"meta", "runs", "days", "orders", "fills", "positions", "decisions", "events"})


def _add_deliveries(db: Any) -> None:
    """A journal written before days' deliveries were recorded: its days were all handed to the plugins."""
    if "deliveries" not in {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}:
        db.execute("CREATE TABLE deliveries (date TEXT PRIMARY KEY, delivered TEXT NOT NULL) WITHOUT ROWID")
        db.execute("INSERT INTO deliveries SELECT date, 'before deliveries were journaled' FROM days")


def client_id(run_id: str, day: pd.Timestamp, symbol: str) -> str:
    """``run:bar-date:symbol``: one order per symbol per bar, whatever restarts happen."""
    return f"{run_id}:{day:%Y-%m-%d}:{symbol}"


@dataclass
class DayRecord:
    """Everything one trading day adds to the journal."""

    date: pd.Timestamp
    cash: float
    value: float
    positions: dict[str, tuple[float, float]]  # symbol: (size, average price), the book after the day
    fills: list[dict[str, Any]] = field(default_factory=list)
    closed: list[tuple[str, str]] = field(
        default_factory=list
    )  # (client id, status) of orders that ended unfilled
    orders: list[dict[str, Any]] = field(default_factory=list)
    decision: dict[str, Any] | None = None
    training_plan: dict[str, Any] = field(default_factory=dict)  # the training service's queue after the day
    #: forecast exits sent at the day's close: the order's client id, the rule that fired, the forecast
    #: and the model behind it (lstm_plugin.portfolio.forecast_exits.ExitCandidate with ``client_id``)
    exits: list[dict[str, Any]] = field(default_factory=list)
    exit_watch: dict[str, Any] | None = None  # the exit watch's streaks after the day (None: exits off)


@dataclass
class Book:
    """The book as the journal left it: what a restarted broker starts from."""

    cash: float
    positions: dict[str, tuple[float, float]]
    pending: list[dict[str, Any]]  # orders sent and not yet filled, oldest first
    last_day: pd.Timestamp | None
    last_rebalance: pd.Timestamp | None
    targets: dict[str, float] = field(default_factory=dict)  # the last decision's
    training_plan: dict[str, Any] = field(default_factory=dict)  # the training queue the last day left
    exit_watch: dict[str, Any] | None = None  # the exit watch's streaks the last day left


class Journal:
    """The journal file of a state folder; see the module docstring."""

    def __init__(self, folder: str | Path, readonly: bool = False) -> None:
        self.path = Path(folder) / JOURNAL_FILE
        self._db = connect(
            self.path, _SCHEMA, readonly, required=TABLES, kind="paper journal", upgrade=_add_deliveries
        )
        self.run: int | None = None

    # ------------------------------------------------------------------ identity
    def meta(self) -> dict[str, Any]:
        return {k: json.loads(v) for k, v in self._db.execute("SELECT key, value FROM meta")}

    def claim(self, identity: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Stamp a new journal with ``identity`` (config, symbols, start, cash, run id); returns the journal's
        identity and whether it was new (the caller checks an old one:
        :func:`~lstm_plugin.backtrader.live.state.check_identity`)."""
        existing = self.meta()
        if existing:
            return existing, False
        self.update_meta(identity)
        return dict(identity), True

    def update_meta(self, values: Mapping[str, Any]) -> None:
        with transaction(self._db, self.path):
            self._db.executemany(
                "INSERT OR REPLACE INTO meta VALUES (?, ?)", [(k, json.dumps(v)) for k, v in values.items()]
            )

    def begin_run(self, argv: list[str]) -> int:
        with transaction(self._db, self.path):
            cursor = self._db.execute(
                "INSERT INTO runs (started, pid, argv) VALUES (?, ?, ?)",
                (pd.Timestamp.now("UTC").isoformat(timespec="seconds"), os.getpid(), json.dumps(argv)),
            )
        self.run = int(cursor.lastrowid or 0)
        return self.run

    def end_run(self, outcome: str) -> None:
        if self.run is not None:
            with transaction(self._db, self.path):
                self._db.execute(
                    "UPDATE runs SET ended = ?, outcome = ? WHERE id = ?",
                    (pd.Timestamp.now("UTC").isoformat(timespec="seconds"), outcome, self.run),
                )

    def event(self, kind: str, message: str, day: pd.Timestamp | None = None) -> None:
        with transaction(self._db, self.path):
            self._db.execute(
                "INSERT INTO events (run, date, kind, message) VALUES (?, ?, ?, ?)",
                (self.run, None if day is None else f"{day:%Y-%m-%d}", kind, message),
            )

    # ------------------------------------------------------------------ days
    def commit_day(self, record: DayRecord) -> None:
        """Write one day in one transaction (see the module docstring)."""
        day = f"{record.date:%Y-%m-%d}"
        with transaction(self._db, self.path):
            for fill in record.fills:
                self._db.execute(
                    "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (
                        fill["client_id"],
                        day,
                        fill["symbol"],
                        fill["size"],
                        fill["price"],
                        fill["value"],
                        fill["commission"],
                    ),
                )
                self._db.execute(
                    "UPDATE orders SET status = 'completed', status_date = ? WHERE client_id = ?",
                    (day, fill["client_id"]),
                )
            for cid, status in record.closed:
                self._db.execute(
                    "UPDATE orders SET status = ?, status_date = ? WHERE client_id = ?", (status, day, cid)
                )
            for order in record.orders:
                self._db.execute(
                    "INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, 'submitted', NULL)",
                    (order["client_id"], self.run, day, order["symbol"], order["size"], order["target"]),
                )
            self._write_exits(day, record)
            if record.decision is not None:
                d = record.decision
                self._db.execute(
                    "INSERT INTO decisions VALUES (?, ?, ?, ?, ?)",
                    (
                        day,
                        jsonio.dumps(d["targets"]),
                        jsonio.dumps(d["forecasts"]),
                        jsonio.dumps(d["models"]),
                        jsonio.dumps(d["trainings"]),
                    ),
                )
            self._db.executemany(
                "INSERT INTO positions VALUES (?, ?, ?, ?)",
                [(day, s, size, price) for s, (size, price) in sorted(record.positions.items())],
            )
            self._db.execute(
                "INSERT INTO days VALUES (?, ?, ?, ?, ?, ?)",
                (
                    day,
                    self.run or 0,
                    record.cash,
                    record.value,
                    int(record.decision is not None),
                    json.dumps(record.training_plan),
                ),
            )

    def _write_exits(self, day: str, record: DayRecord) -> None:
        """The day's forecast exits and the exit watch's streaks after it (inside the day's transaction)."""
        self._db.executemany(
            "INSERT INTO exits VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    e["client_id"],
                    day,
                    e["symbol"],
                    e["reason"],
                    e["score"],
                    e["forecast"],
                    e["model_type"],
                    e["model_version"],
                    e["keep"],
                )
                for e in record.exits
            ],
        )
        if record.exit_watch is not None:
            self._db.execute("INSERT INTO exit_watch VALUES (?, ?)", (day, json.dumps(record.exit_watch)))

    def book(self, start_cash: float) -> Book:
        """The book after the last committed day (``start_cash`` and nothing else before the first)."""
        last = self._db.execute(
            "SELECT date, cash, training_plan FROM days ORDER BY date DESC LIMIT 1"
        ).fetchone()
        rebalance = self._db.execute("SELECT max(date) FROM days WHERE rebalanced = 1").fetchone()[0]
        targets = self._db.execute("SELECT targets FROM decisions ORDER BY date DESC LIMIT 1").fetchone()
        pending = [
            {"client_id": r[0], "date": pd.Timestamp(r[1]), "symbol": r[2], "size": r[3], "target": r[4]}
            for r in self._db.execute(
                "SELECT client_id, date, symbol, size, target FROM orders WHERE status = 'submitted' ORDER "
                "BY rowid"
            )
        ]
        if last is None:
            return Book(start_cash, {}, pending, None, None)
        watch = self._db.execute("SELECT state FROM exit_watch ORDER BY date DESC LIMIT 1").fetchone()
        positions = {
            s: (size, price)
            for s, size, price in self._db.execute(
                "SELECT symbol, size, price FROM positions WHERE date = ?", (last[0],)
            )
        }
        return Book(
            float(last[1]),
            positions,
            pending,
            pd.Timestamp(last[0]),
            None if rebalance is None else pd.Timestamp(rebalance),
            json.loads(targets[0]) if targets else {},
            json.loads(last[2]),
            json.loads(watch[0]) if watch else None,
        )

    def _derived(self, start_cash: float) -> tuple[dict[str, float], float]:
        """Positions and cash as the fills add them up."""
        derived: dict[str, float] = {}
        cash = start_cash
        for symbol, size, price, commission in self._db.execute(
            "SELECT symbol, size, price, commission FROM fills ORDER BY date, rowid"
        ):
            derived[symbol] = derived.get(symbol, 0.0) + size
            cash -= size * price + commission
        return derived, cash

    def reconcile(self, book: Book, start_cash: float) -> list[str]:
        """Disagreements between the book and what the fills add up to, less what an ``--accept-state``
        settled (:meth:`accept`); empty: they agree."""
        derived, cash = self._derived(start_cash)
        accepted = self.meta().get("accepted") or {}
        settled: dict[str, float] = accepted.get("positions", {})
        cash += float(accepted.get("cash", 0.0))
        problems = []
        for symbol in sorted(set(derived) | set(book.positions) | set(settled)):
            held = book.positions.get(symbol, (0.0, 0.0))[0]
            filled = derived.get(symbol, 0.0) + float(settled.get(symbol, 0.0))
            if not math.isclose(held, filled, rel_tol=1e-9, abs_tol=1e-9):
                problems.append(f"{symbol}: the fills add up to {filled:g} shares, the book holds {held:g}")
        if not math.isclose(cash, book.cash, rel_tol=1e-9, abs_tol=0.01):
            problems.append(f"cash: the fills leave {cash:,.2f}, the book holds {book.cash:,.2f}")
        return problems

    def accept(self, book: Book, start_cash: float, message: str) -> None:
        """Settle the book's disagreement with the fills (``--accept-state``): journaled once, with the
        amounts, and taken into every later :meth:`reconcile`, so a resume needs the flag only once."""
        derived, cash = self._derived(start_cash)
        settled = {
            symbol: book.positions.get(symbol, (0.0, 0.0))[0] - derived.get(symbol, 0.0)
            for symbol in sorted(set(derived) | set(book.positions))
        }
        accepted = {"positions": {s: v for s, v in settled.items() if v}, "cash": book.cash - cash}
        day = None if book.last_day is None else f"{book.last_day:%Y-%m-%d}"
        with transaction(self._db, self.path):
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('accepted', ?)", (json.dumps(accepted),))
            self._db.execute(
                "INSERT INTO events (run, date, kind, message) VALUES (?, ?, 'accepted_state', ?)",
                (self.run, day, message),
            )

    # ------------------------------------------------------------------ deliveries
    def delivered(self, day: pd.Timestamp) -> None:
        """``day`` was handed to the ``lstm_paper_day`` plugins (a restart hands over the days that were not)."""
        with transaction(self._db, self.path):
            self._db.execute(
                "INSERT OR REPLACE INTO deliveries VALUES (?, ?)",
                (f"{day:%Y-%m-%d}", pd.Timestamp.now("UTC").isoformat(timespec="seconds")),
            )

    def undelivered(self) -> list[pd.Timestamp]:
        """Committed days not yet handed to the plugins (the process ended in between), oldest first."""
        rows = self._db.execute(
            "SELECT date FROM days WHERE date NOT IN (SELECT date FROM deliveries) ORDER BY date"
        )
        return [pd.Timestamp(r[0]) for r in rows]

    def day_report(self, day: pd.Timestamp) -> dict[str, Any]:
        """What ``lstm_paper_day`` is given for a committed day: its orders, fills and book."""
        date = f"{day:%Y-%m-%d}"
        orders = [
            {"client_id": r[0], "symbol": r[1], "size": r[2], "target": r[3], "reason": r[4]}
            for r in self._db.execute(
                "SELECT o.client_id, o.symbol, o.size, o.target, CASE WHEN e.client_id IS NULL THEN "
                "'rebalance' ELSE 'exit' END FROM orders o LEFT JOIN exits e ON e.client_id = o.client_id "
                "WHERE o.date = ? ORDER BY o.rowid",
                (date,),
            )
        ]
        fills = [
            {
                "client_id": r[0],
                "symbol": r[1],
                "size": r[2],
                "price": r[3],
                "value": r[4],
                "commission": r[5],
            }
            for r in self._db.execute(
                "SELECT client_id, symbol, size, price, value, commission FROM fills WHERE date = ? ORDER BY rowid",
                (date,),
            )
        ]
        cash, value = self._db.execute("SELECT cash, value FROM days WHERE date = ?", (date,)).fetchone()
        positions = {
            s: [size, price]
            for s, size, price in self._db.execute(
                "SELECT symbol, size, price FROM positions WHERE date = ?", (date,)
            )
        }
        return {
            "when": day,
            "orders": orders,
            "fills": fills,
            "book": {"cash": cash, "value": value, "positions": positions},
        }

    # ------------------------------------------------------------------ reading
    def rows(self, table: str) -> list[dict[str, Any]]:
        """Every row of ``table`` as dicts, in write order (for status, reports and tests)."""
        if table not in {
            "runs",
            "days",
            "orders",
            "fills",
            "positions",
            "decisions",
            "events",
            "deliveries",
            "exits",
            "exit_watch",
        }:
            raise ValueError(f"unknown journal table {table!r}")
        cursor = self._db.execute(
            f"SELECT * FROM {table} ORDER BY rowid"
            if table in {"runs", "events", "orders", "fills"}
            else f"SELECT * FROM {table}"
        )
        names = [c[0] for c in cursor.description]
        rows = [dict(zip(names, r, strict=True)) for r in cursor]
        for row in rows:
            for key in ("targets", "forecasts", "models", "trainings", "training_plan"):
                if key in row:
                    row[key] = json.loads(row[key])
        return rows

    def close(self) -> None:
        self._db.close()
