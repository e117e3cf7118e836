"""What the paper-run tests share: five bundled symbols replayed day by day, and a session's fills."""

from __future__ import annotations

from typing import Any

from lstm_plugin.backtrader.live import (
    PaperSession,
    ReplaySource,
)
from lstm_plugin.core.data import bundled_source

FIVE = ["AAPL", "MSFT", "KO", "XOM", "JNJ"]
SYNC = {"lstm_service": {"backend": "sync"}}


def replay(
    symbols: list[str] = FIVE, start: str = "2020-01-02", until: str | None = "2020-04-30"
) -> ReplaySource:
    return ReplaySource(bundled_source(), symbols, start, until, speed=0)


def fills(session: PaperSession) -> list[dict[str, Any]]:
    orders = {o["client_id"]: o for o in session.journal.rows("orders")}
    return sorted(
        (
            {
                "date": f["date"],
                "created": orders[f["client_id"]]["date"],
                "symbol": f["symbol"],
                "size": f["size"],
                "price": f["price"],
                "commission": f["commission"],
            }
            for f in session.journal.rows("fills")
        ),
        key=lambda r: (r["date"], r["symbol"]),
    )
