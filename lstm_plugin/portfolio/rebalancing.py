"""When to rebalance and in what order to trade: pure functions the Backtrader classes call."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def check_rule(rule: Any) -> str | int:
    """``rule`` if it is a rebalancing rule (``monthly``, ``weekly`` or a number of bars ≥ 1), else
    ``ValueError``."""
    if rule in ("monthly", "weekly") or (isinstance(rule, int) and not isinstance(rule, bool) and rule >= 1):
        return rule
    raise ValueError(f"rebalance › must be 'monthly', 'weekly' or a number of bars (got: {rule!r})")


def rebalance_due(last: dt.date | None, today: dt.date, bars_since: int, rule: str | int) -> bool:
    """``monthly``: the first bar of a month; ``weekly``: the first bar of an ISO week; ``N``: every
    N bars. The first bar the strategy sees always rebalances."""
    if last is None:
        return True
    if rule == "monthly":
        return (today.year, today.month) != (last.year, last.month)
    if rule == "weekly":
        return today.isocalendar()[:2] != last.isocalendar()[:2]
    bars = check_rule(rule)
    return isinstance(bars, int) and bars_since >= bars


def rebalance_dates(calendar: pd.DatetimeIndex, rule: str | int) -> list[pd.Timestamp]:
    """The bars of ``calendar`` on which ``rule`` rebalances (the strategy's own rule, ahead of time)."""
    dates, last, since = [], None, 0
    for day in calendar:
        since += 1
        if rebalance_due(last, day.date(), since, rule):
            dates.append(day)
            last, since = day.date(), 0
    return dates


def order_sequence(current: Mapping[str, float], targets: Mapping[str, float]) -> list[tuple[str, float]]:
    """``(symbol, target weight)`` to trade: every reduction first (biggest first), then every
    increase (biggest first), so sales free the cash the purchases need. Unchanged weights are skipped."""
    symbols = set(current) | set(targets)
    moves = {s: targets.get(s, 0.0) - current.get(s, 0.0) for s in symbols}
    sells = sorted((s for s in symbols if moves[s] < -1e-9), key=lambda s: (moves[s], s))
    buys = sorted((s for s in symbols if moves[s] > 1e-9), key=lambda s: (-moves[s], s))
    return [(s, targets.get(s, 0.0)) for s in sells + buys]


def valid_targets(tradable: Iterable[str]) -> Any:
    """A check for target weights returned by plugins: known symbols, finite weights ≥ 0, sum ≤ 1."""
    allowed = set(tradable)

    def check(targets: Any) -> bool:
        if not isinstance(targets, Mapping):
            return False
        weights = list(targets.values())
        return (
            all(isinstance(s, str) and s in allowed for s in targets)
            and all(
                isinstance(w, (int, float)) and not isinstance(w, bool) and math.isfinite(w) and w >= 0
                for w in weights
            )
            and sum(weights) <= 1 + 1e-9
        )

    return check
