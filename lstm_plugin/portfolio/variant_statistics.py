"""Figures of strategy variants run on the same days, and their paired differences with 95 % intervals.

Each variant is reduced to three daily series over the same days: its return, its traded value and its
costs (commission plus slippage), each as a share of the portfolio's value at the previous close. The
paired moving-block bootstrap resamples the same blocks of days for both variants, so what the two
share (the market) cancels in the difference (docs/exits-and-risk.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from lstm_plugin.core.statistics import TRADING_DAYS, Estimate, paired_block_bootstrap_interval, sharpe_ratio
from lstm_plugin.portfolio.performance import MIN_INTERVAL_DAYS, daily_returns

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


@dataclass(frozen=True)
class DaySeries:
    """One variant's days: returns, traded value and costs, each over the previous close's value."""

    returns: np.ndarray
    traded: np.ndarray
    costs: np.ndarray


class VariantFigures(TypedDict):
    """A variant's figures: annualised Sharpe, max drawdown, one-way turnover per year, and the costs
    paid per year as a share of the portfolio's value (``costs_paid``: the total, in cash)."""

    sharpe: float | None
    max_drawdown: float | None
    turnover: float | None
    costs: float | None
    costs_paid: float


def fill_cost(fill: Mapping[str, Any], slippage: float) -> float:
    """What one fill cost: its commission and the slippage in its price (a buy paid ``(1 + s)`` times the
    price, a sell got ``(1 − s)`` times it)."""
    value = abs(float(fill["value"]))
    slipped = value * slippage / (1.0 + slippage) if fill["size"] > 0 else value * slippage / (1.0 - slippage)
    return float(fill["commission"]) + slipped


def day_series(
    equity: pd.Series, initial: float, fills: Iterable[Mapping[str, Any]], slippage: float
) -> DaySeries:
    """A variant's :class:`DaySeries` from its equity curve (one value per day's close) and its fills."""
    days = pd.DatetimeIndex(equity.index)
    previous = np.concatenate([[initial], equity.to_numpy(dtype="float64")[:-1]])
    traded, costs = np.zeros(len(days)), np.zeros(len(days))
    for fill in fills:
        at = days.searchsorted(pd.Timestamp(fill["date"]))
        if at < len(days) and days[at] == pd.Timestamp(fill["date"]):
            traded[at] += abs(float(fill["value"]))
            costs[at] += fill_cost(fill, slippage)
    return DaySeries(daily_returns(equity, initial), traded / previous, costs / previous)


def _max_drawdown(rows: np.ndarray) -> np.ndarray:
    """The max drawdown of the path each row of daily returns compounds to (from a first peak of 1)."""
    values = np.cumprod(1.0 + rows, axis=-1)
    peaks = np.maximum.accumulate(np.maximum(values, 1.0), axis=-1)
    result: np.ndarray = (1.0 - values / peaks).max(axis=-1)
    return result


def _yearly(rows: np.ndarray) -> np.ndarray:
    result: np.ndarray = rows.mean(axis=-1) * TRADING_DAYS
    return result


def _turnover(rows: np.ndarray) -> np.ndarray:
    return _yearly(rows) / 2.0  # one-way: a round trip trades the value twice


#: statistic name: (the series it reads, the statistic over rows of that series)
_MEASURES: dict[str, tuple[str, Callable[[np.ndarray], np.ndarray]]] = {
    "sharpe": ("returns", sharpe_ratio),
    "max_drawdown": ("returns", _max_drawdown),
    "turnover": ("traded", _turnover),
    "costs": ("costs", _yearly),
}
#: the figures each variant is given, and compared on
STATISTICS = tuple(_MEASURES)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


def variant_figures(series: DaySeries, costs_paid: float) -> VariantFigures:
    """The figures of one variant (see :class:`VariantFigures`)."""
    values: dict[str, float | None] = {}
    for name, (kind, statistic) in _MEASURES.items():
        days = getattr(series, kind)
        values[name] = _finite(float(statistic(days[None, :])[0])) if days.size >= 2 else None
    return {
        "sharpe": values["sharpe"],
        "max_drawdown": values["max_drawdown"],
        "turnover": values["turnover"],
        "costs": values["costs"],
        "costs_paid": costs_paid,
    }


def paired_differences(variant: DaySeries, base: DaySeries, *, seed: int = 0) -> dict[str, Estimate]:
    """``statistic(variant) − statistic(base)`` for each of :data:`STATISTICS`, with its paired
    moving-block bootstrap 95 % interval (none under ``MIN_INTERVAL_DAYS`` days)."""
    differences: dict[str, Estimate] = {}
    for name, (kind, statistic) in _MEASURES.items():
        a, b = getattr(variant, kind), getattr(base, kind)
        value = float(statistic(a[None, :])[0] - statistic(b[None, :])[0]) if a.size >= 2 else math.nan
        low, high = (
            paired_block_bootstrap_interval(a, b, statistic, seed=seed)
            if a.size >= MIN_INTERVAL_DAYS
            else (None, None)
        )
        differences[name] = {"value": _finite(value), "low": low, "high": high, "t": None, "n": int(a.size)}
    return differences
