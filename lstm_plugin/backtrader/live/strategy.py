"""``PaperStrategy``: :class:`~lstm_plugin.backtrader.LSTMRebalanceStrategy` on live feeds, with a journal.

It trades only on a day every feed delivers ``LIVE`` and on one date; back-filled (``DELAYED``)
days replay the book without trading. The schedule comes from the calendar and the last rebalance
in the journal, never from a count of bars this process has seen, so a restart keeps it. Each
LIVE day ends in one journal transaction (:meth:`~lstm_plugin.backtrader.live.journal.Journal.commit_day`).
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from lstm_plugin.backtrader.analyzer import fill_row
from lstm_plugin.backtrader.live.feed import LiveFeed
from lstm_plugin.backtrader.live.journal import Book, DayRecord, Journal, client_id
from lstm_plugin.backtrader.strategy import LSTMRebalanceStrategy
from lstm_plugin.portfolio.rebalancing import rebalance_due

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

_UNFILLED = {"Canceled": "canceled", "Margin": "margin", "Rejected": "rejected", "Expired": "expired"}


def decision_record(
    decision: Any, models: dict[str, dict[str, Any]], trainings: list[dict[str, Any]]
) -> dict[str, Any]:
    """A :class:`~lstm_plugin.backtrader.signals.Decision` as journal data: targets, forecasts, the
    models behind them, and the trainings that finished since the previous rebalance."""
    forecasts = {}
    for symbol, p in decision.forecasts.items():
        forecasts[symbol] = {
            k: p.get(k)
            for k in (
                "status",
                "message",
                "predicted_direction",
                "confidence",
                "price_change_pct",
                "expected_log_return",
                "model_type",
                "model_version",
                "trained_at",
                "as_of",
            )
        }
        entry = (decision.analyses.get(symbol) or {}).get("lstm") or {}
        forecasts[symbol]["score_contribution"] = entry.get(
            "contribution"
        )  # what the forecast moved the score by
    return {
        "targets": dict(decision.targets),
        "forecasts": forecasts,
        "models": models,
        "trainings": trainings,
    }


class PaperStrategy(LSTMRebalanceStrategy):
    """See the module docstring; the extra parameters are set by
    :class:`~lstm_plugin.backtrader.live.session.PaperSession`."""

    params = (  # type: ignore[assignment]  # Backtrader merges them with the base class's
        ("journal", None),  # Journal
        (
            "book",
            None,
        ),  # Book: the journal's book at start (pending orders are sent again on the last back-filled day)
        ("run_id", ""),  # the paper run's id, first part of every client id
        ("days", None),  # callable: the released trading days (the bar store's calendar)
        ("on_day", None),  # callable(summary dict) after each committed LIVE day
        ("service", None),  # the session's TrainingService (it outlives this strategy)
        ("take_trainings", None),  # callable: the trainings finished since the last call
        ("deliver", None),  # callable(day, orders, fills, book): hands a committed day to the plugins
    )

    def __init__(self) -> None:
        super().__init__()
        self.journal: Journal = self.p.journal
        self.book: Book = self.p.book
        self.last_rebalance = (
            self.book.last_rebalance.date() if self.book.last_rebalance is not None else None
        )
        self._fills: list[dict[str, Any]] = []
        self._closed: list[tuple[str, str]] = []
        self.mixed_days = 0
        self.live_days = 0

    def _signals_options(self) -> dict[str, Any]:
        return {"service": self.p.service}

    def start(self) -> None:
        super().start()
        self.lstm.manager.current_portfolio = dict(self.book.targets)  # what the last process held in memory
        self.lstm.controls.watch.restore(self.book.exit_watch)  # the streaks the last LIVE day left

    # ------------------------------------------------------------------ feed and broker events
    def notify_data(self, data: Any, status: int, *args: Any, **kwargs: Any) -> None:
        if status == LiveFeed.DISCONNECTED and data is self.datas[0]:
            hub = data.p.hub
            self.journal.event(
                "disconnected", hub.error or "source failed", hub.current.date if hub.current else None
            )
        elif status == LiveFeed.LIVE and data is self.datas[0] and self._disconnected_before():
            self.journal.event("reconnected", "source delivers again", None)

    def _disconnected_before(self) -> bool:
        events = self.journal.rows("events")
        return bool(events) and events[-1]["kind"] == "disconnected"

    def notify_order(self, order: Any) -> None:
        cid = order.info.get("client_id")
        if cid is None:
            return
        if order.status == order.Completed:
            symbol = order.data._name
            self._fills.append(dict(fill_row(order, symbol), client_id=cid))
        elif order.getstatusname() in _UNFILLED:
            self._closed.append((cid, _UNFILLED[order.getstatusname()]))

    # ------------------------------------------------------------------ bars
    def next(self) -> None:
        today = pd.Timestamp(self.datetime.date(0))
        statuses = {d.status for d in self.datas}
        if statuses != {LiveFeed.LIVE}:
            if self.book.last_day is not None and today == self.book.last_day:
                self._send_pending()
            return
        dates = {d.datetime.date(0) for d in self.datas if len(d) and d._name in self._delivered_today()}
        if dates != {today.date()}:
            self.mixed_days += 1  # the hub's barrier makes this impossible; never trade on it
            self.journal.event("mixed_dates", f"feeds on {sorted(map(str, dates))}: no trading", today)
            return
        self._trade(today)

    def _delivered_today(self) -> set[str]:
        hub = self.datas[0].p.hub
        return set(hub.current.bars) if hub.current is not None else set()

    def _send_pending(self) -> None:
        """The orders the journal sent on the last finished day: the broker lost them with the process."""
        feeds = {d._name: d for d in self.datas}
        self.lstm.current_weights()  # reads every position, as the rebalance that sent them did
        for order in self.book.pending:
            send = self.buy if order["size"] > 0 else self.sell
            send(data=feeds[order["symbol"]], size=abs(order["size"]), client_id=order["client_id"])

    def _bars_since(self, today: pd.Timestamp) -> int:
        """Released trading days after the last rebalance, up to today (only an ``N``-bar rule reads it)."""
        if self.last_rebalance is None or not isinstance(self.rule, int):
            return 0
        days = self.p.days()
        return int(((days > pd.Timestamp(self.last_rebalance)) & (days <= today)).sum())

    def _trade(self, today: pd.Timestamp) -> None:
        if self.first_day is not None and today.date() < self.first_day:
            return
        due = rebalance_due(self.last_rebalance, today.date(), self._bars_since(today), self.rule)
        orders: list[dict[str, Any]] = []
        exits: list[dict[str, Any]] = []
        record = None
        if due:
            orders, record = self._rebalance(today)
        else:
            if self.lstm.train and self.lstm.lstm_active and not self.lstm.service.backend.inline:
                self.lstm.clock.set(today)
                self.lstm.service.tick()  # background work between rebalances (never blocks the bar)
            orders, exits = self._exit(today)
        positions = {d._name: (p.size, p.price) for d in self.datas if (p := self.getposition(d)).size}
        day = DayRecord(
            today,
            self.broker.getcash(),
            self.broker.getvalue(),
            positions,
            self._fills,
            self._closed,
            orders,
            record,
            self.lstm.service.plan(),
            exits,
            self.lstm.controls.watch.state() if self.lstm.config.lstm.exits.enabled else None,
        )
        self.journal.commit_day(day)
        book = {"cash": day.cash, "value": day.value, "positions": {s: list(p) for s, p in positions.items()}}
        self.p.deliver(today, orders, day.fills, book)
        self._fills, self._closed = [], []
        if due:
            self.last_rebalance = today.date()
        self.live_days += 1
        if self.p.on_day is not None:
            self.p.on_day(
                {
                    "date": today,
                    "value": day.value,
                    "cash": day.cash,
                    "positions": len(positions),
                    "orders": len(orders),
                    "exits": len(exits),
                    "exited": [e["symbol"] for e in exits],
                    "fills": len(day.fills),
                    "rebalanced": due,
                    "targets": record["targets"] if record else None,
                    "models": record["models"] if record else None,
                    "training": self.lstm.service.queue_summary(),
                }
            )

    def _rebalance(self, today: pd.Timestamp) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Decide and send the orders, each with its client id; returns them and the decision's record."""
        decision = self.lstm.decide()
        sent = self.lstm.apply(
            decision.targets, order_info=lambda s: {"client_id": client_id(self.p.run_id, today, s)}
        )
        orders = [
            {
                "client_id": order.info["client_id"],
                "symbol": order.data._name,
                "size": order.created.size,
                "target": decision.targets.get(order.data._name, 0.0),
                "reason": "rebalance",
            }
            for order in sent
        ]
        return orders, decision_record(decision, self._models(decision), self.p.take_trainings())

    def _exit(self, today: pd.Timestamp) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Between rebalances: send the forecast exits due today (``lstm.exits``), each with its client id;
        returns the orders and the exits as journal rows."""
        candidates = {c["symbol"]: c for c in self.lstm.exit_candidates()}
        sent = self.lstm.exit(
            list(candidates.values()), order_info=lambda s: {"client_id": client_id(self.p.run_id, today, s)}
        )
        weights = self.lstm.current_weights() if sent else {}  # read only on a day that exits
        orders, exits = [], []
        for order in sent:
            symbol = order.data._name
            candidate = candidates[symbol]
            orders.append(
                {
                    "client_id": order.info["client_id"],
                    "symbol": symbol,
                    "size": order.created.size,
                    "target": weights.get(symbol, 0.0) * candidate["keep"],
                    "reason": "exit",
                }
            )
            exits.append(dict(candidate, client_id=order.info["client_id"]))
        return orders, exits

    def _models(self, decision: Any) -> dict[str, dict[str, Any]]:
        """The model behind each forecast of ``decision``: version, sha256, training date, age, status."""
        models = {}
        forecasts = self.lstm.service.forecasts
        for symbol, forecast in decision.forecasts.items():
            record = forecasts.resolve_model(symbol, decision.when)
            if record is None:
                continue
            models[symbol] = {
                "model": record.label,
                "sha256": record.metadata["sha256"],
                "trained_at": record.metadata["trained_at"],
                "age_days": round((decision.when - record.trained_at) / pd.Timedelta(days=1), 1),
                "status": forecast["status"],
            }
        return models
