"""``paper_status``: what a paper run's state folder says — the book, the P&L, the models, the heartbeat."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.backtrader.live.heartbeat import read_heartbeat
from lstm_plugin.backtrader.live.journal import JOURNAL_FILE, Journal
from lstm_plugin.backtrader.live.sqlite import StateError

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def paper_status(state: str | Path, journal: Journal | None = None, registry: Any = None) -> dict[str, Any]:
    """The book after the last committed day, the run's progress and its heartbeat (``--json`` of ``paper
    status``)."""
    folder = Path(state)
    if journal is None:
        if not (folder / JOURNAL_FILE).is_file():
            raise StateError(f"{folder} › no paper run here (no {JOURNAL_FILE})")
        journal = Journal(folder, readonly=True)
        try:
            return _status(folder, journal)
        finally:
            journal.close()
    return _status(folder, journal)


def _status(folder: Path, journal: Journal) -> dict[str, Any]:
    meta = journal.meta()
    if not meta:
        raise StateError(f"{folder} › no paper run here (its journal was never claimed by a run)")
    days = journal.rows("days")
    start_cash = float(meta.get("cash", 0.0))
    book = journal.book(start_cash)
    decisions = journal.rows("decisions")
    orders = journal.rows("orders")
    last_bar = book.last_day
    models = {}
    if decisions:
        for symbol, model in decisions[-1]["models"].items():
            age = (
                None
                if last_bar is None
                else round((last_bar - pd.Timestamp(model["trained_at"])) / pd.Timedelta(days=1), 1)
            )
            models[symbol] = dict(model, age_days=age)
    heartbeat = read_heartbeat(folder)
    value = float(days[-1]["value"]) if days else start_cash
    return {
        "state": str(folder),
        "run_id": meta.get("run_id"),
        "symbols": meta.get("symbols", []),
        "start": meta.get("start"),
        "days": len(days),
        "last_bar": None if last_bar is None else f"{last_bar:%Y-%m-%d}",
        "last_rebalance": None if book.last_rebalance is None else f"{book.last_rebalance:%Y-%m-%d}",
        "rebalances": len(decisions),
        "cash": book.cash,
        "value": value,
        "start_cash": start_cash,
        "pnl": value - start_cash,
        "pnl_pct": (value / start_cash - 1.0) * 100.0 if start_cash else None,
        "positions": {
            symbol: {"size": size, "price": price} for symbol, (size, price) in sorted(book.positions.items())
        },
        "orders": {
            "total": len(orders),
            "filled": sum(o["status"] == "completed" for o in orders),
            "open": [o["client_id"] for o in book.pending],
        },
        "models": models,
        "training": (heartbeat or {}).get("training"),
        "heartbeat": heartbeat,
        "runs": len(journal.rows("runs")),
    }


def status_lines(status: dict[str, Any]) -> list[str]:
    """``paper status`` for people."""
    lines = [
        f"{status['state']}: {len(status['symbols'])} symbols from {status['start']}, {status['days']} days, "
        f"last bar {status['last_bar'] or '-'}",
        f"value {status['value']:,.2f}  cash {status['cash']:,.2f}  P&L {status['pnl']:+,.2f} "
        f"({status['pnl_pct']:+.2f}%)",
        f"last rebalance {status['last_rebalance'] or '-'} ({status['rebalances']} in all); orders "
        f"{status['orders']['filled']}/"
        f"{status['orders']['total']} filled, {len(status['orders']['open'])} open",
    ]
    for symbol, position in sorted(status["positions"].items()):
        model = status["models"].get(symbol)
        used = (
            f"{model['model']} ({model['age_days']:.0f} d, {model['sha256'][:12]})" if model else "no model"
        )
        lines.append(f"  {symbol:<6} {position['size']:>10.0f} @ {position['price']:,.2f}  {used}")
    training = status.get("training") or {}
    if training:
        lines.append(
            f"training: {_count(training.get('running'))} running, {_count(training.get('queued'))} queued"
        )
    beat = status.get("heartbeat") or {}
    if beat:
        lines.append(f"heartbeat {beat.get('updated')} pid {beat.get('pid')}: {beat.get('state')}")
        if beat.get("problem"):
            lines.append(f"heartbeat.json: {beat['problem']}")
    return lines


def _count(items: Any) -> int:
    return len(items) if isinstance(items, list) else 0
