"""The Paper runs page: for each state folder, whether the run is alive, its book, and what it decided.

Everything is read from the folder as ``lstm-plugin paper status`` reads it: the journal through a
``mode=ro`` connection (the page never holds a write lock, and a day being committed is either whole in
what it shows or not there yet), the heartbeat file as it was last replaced whole.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from lstm_plugin.backtrader.live.journal import Journal
from lstm_plugin.backtrader.live.status import paper_status

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: A heartbeat older than this (wall seconds) reads as ``stale``: the run beats at least every few seconds
#: while it waits or trades.
STALE_AFTER_SECONDS = 120.0
ENDED = {"finished", "limit", "stopped", "SIGINT", "SIGTERM", "interrupted", "failed"}
#: The most orders and fills the page lists (the newest).
SHOWN = 200


def liveness(beat: dict[str, Any] | None, now: float | None = None) -> dict[str, Any]:
    """What the heartbeat says, in one word and one sentence: ``alive``, ``waiting``, ``disconnected``,
    ``stale``, ``finished`` or ``unknown``."""
    if not beat:
        return {"state": "unknown", "detail": "no heartbeat.json yet"}
    if beat.get("problem") and "state" not in beat:
        return {"state": "unknown", "detail": f"heartbeat.json: {beat['problem']}"}
    state = str(beat.get("state", ""))
    age = None if "wall" not in beat else (time.time() if now is None else now) - float(beat["wall"])
    ago = "" if age is None else f" ({age:,.0f} s ago)"
    if state in ENDED or state.startswith("stopped"):
        return {"state": "finished", "detail": f"ended: {state}{ago}"}
    if age is not None and age > STALE_AFTER_SECONDS:
        return {"state": "stale", "detail": f"no heartbeat for {age:,.0f} s (pid {beat.get('pid')}): {state}"}
    if beat.get("source_error"):
        return {"state": "disconnected", "detail": f"source {beat.get('source')}: {beat['source_error']}"}
    waiting = beat.get("waiting_for") or []
    if state.startswith("waiting") or waiting:
        named = ", ".join(map(str, waiting)) or "the next day"
        return {"state": "waiting", "detail": f"waiting for bars of {named}{ago}"}
    return {"state": "alive", "detail": f"{state}{ago}"}


def _equity(days: list[dict[str, Any]]) -> list[dict[str, Any]]:
    peak = float("-inf")
    points = []
    for day in days:
        value = float(day["value"])
        peak = max(peak, value)
        points.append({"date": day["date"][:10], "value": value, "drawdown": value / peak - 1.0})
    return points


def paper_view(folder: Path) -> dict[str, Any]:
    """One state folder's page section (``/api/paper``); a :class:`~lstm_plugin.core.errors.LSTMPluginError`
    when the folder cannot be read now."""
    journal = Journal(folder, readonly=True)
    try:
        status = paper_status(folder, journal)
        days = journal.rows("days")
        orders = journal.rows("orders")
        fills = journal.rows("fills")
        decisions = journal.rows("decisions")
        events = journal.rows("events")
    finally:
        journal.close()
    last = decisions[-1] if decisions else None
    equity = _equity(days)
    positions = []
    for symbol, held in status["positions"].items():
        model = status["models"].get(symbol) or {}  # the model whose forecast chose it
        positions.append(
            {
                "symbol": symbol,
                "size": held["size"],
                "price": held["price"],
                "value": held["size"] * held["price"],
                "model": model.get("model"),
                "sha256": (model.get("sha256") or "")[:12] or None,
                "model_age_days": model.get("age_days"),
            }
        )
    return {
        "state": str(folder),
        "run_id": status["run_id"],
        "heartbeat": liveness(status["heartbeat"]),
        "last_bar": status["last_bar"],
        "days": status["days"],
        "value": status["value"],
        "cash": status["cash"],
        "pnl": status["pnl"],
        "pnl_pct": status["pnl_pct"],
        "max_drawdown": min((p["drawdown"] for p in equity), default=0.0),
        "equity": equity,
        "positions": positions,
        "orders": orders[-SHOWN:],
        "fills": fills[-SHOWN:],
        "orders_total": len(orders),
        "last_decision": None
        if last is None
        else {
            "date": last["date"][:10],
            "targets": last["targets"],
            "forecasts": last["forecasts"],
            "models": last["models"],
        },
        "events": events[-SHOWN:],
        "training": status["training"],
    }
