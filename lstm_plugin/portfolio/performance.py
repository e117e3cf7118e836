"""Strategy performance from a daily equity curve and its fills: pure functions, documented to the formula.

With ``V`` the portfolio value at each bar's close (starting cash ``V0`` before the first bar),
``r`` the daily simple returns of ``V`` (the first against ``V0``), ``years`` = calendar days from
the first to the last bar / 365.25:

- ``final_value`` = last ``V``; ``total_return`` = ``V_last / V0 − 1``;
- ``cagr`` = ``(V_last / V0) ** (1 / years) − 1``;
- ``volatility`` = ``std(r, ddof=1) · √252``;
- ``sharpe`` = ``mean(r) / std(r, ddof=1) · √252`` (risk-free rate 0), with ``sharpe_low`` /
  ``sharpe_high`` its 95 % moving-block bootstrap interval (:mod:`lstm_plugin.core.statistics`),
  ``None`` under :data:`MIN_INTERVAL_DAYS` returns;
- ``sortino`` = ``mean(r) / √mean(min(r, 0)²) · √252`` (downside deviation against 0);
- ``max_drawdown`` = ``max(1 − V / running max of V)`` (a positive fraction; ``V0`` counts as the first peak);
- ``calmar`` = ``cagr / max_drawdown``, both over the whole span;
- ``turnover`` = ``Σ |fill value| / (2 · mean V) / years`` — one-way turnover per year (the first
  purchase counts: a buy-and-hold of 3 years scores about 0.17).

Undefined ratios (no variance, no drawdown, under two bars) are ``None``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from lstm_plugin.core.statistics import (
    TRADING_DAYS,
    Estimate,
    block_bootstrap_interval,
    paired_block_bootstrap_interval,
    sharpe_ratio,
)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: Fewest daily returns a Sharpe interval is given for: a 3-day backtest's resamples gave [-18, 8.8e16].
MIN_INTERVAL_DAYS = 20


def drawdown_series(values: pd.Series, initial: float) -> pd.Series:
    """``1 − V / running max`` at each bar (``initial`` is the first peak)."""
    peaks = np.maximum.accumulate(np.concatenate([[initial], values.to_numpy(dtype="float64")]))[1:]
    return pd.Series(1.0 - values.to_numpy(dtype="float64") / peaks, index=values.index)


def _ratio(numerator: float, denominator: float) -> float | None:
    if not math.isfinite(numerator) or not math.isfinite(denominator) or denominator == 0:
        return None
    return float(numerator / denominator)


def performance_metrics(
    values: pd.Series, initial: float, fill_values: Sequence[float] = ()
) -> dict[str, float | None]:
    """Every figure of the module docstring for an equity curve indexed by date."""
    values = values.astype("float64")
    if values.empty:
        raise ValueError("performance › the equity curve is empty")
    final = float(values.iloc[-1])
    days = (values.index[-1] - values.index[0]).days if len(values) > 1 else 0
    years = days / 365.25
    returns = daily_returns(values, initial)
    std = float(returns.std(ddof=1)) if returns.size > 1 else float("nan")
    mean = float(returns.mean()) if returns.size else float("nan")
    downside = float(math.sqrt(np.mean(np.minimum(returns, 0.0) ** 2))) if returns.size else float("nan")
    growth = final / initial
    cagr = growth ** (1.0 / years) - 1.0 if years > 0 and growth > 0 else None
    max_drawdown = float(drawdown_series(values, initial).max())
    mean_value = float(values.mean())
    return {
        "final_value": final,
        "total_return": growth - 1.0,
        "cagr": cagr,
        "volatility": std * math.sqrt(TRADING_DAYS) if math.isfinite(std) else None,
        "sharpe": None if (ratio := _ratio(mean, std)) is None else ratio * math.sqrt(TRADING_DAYS),
        **_sharpe_interval(returns),
        "sortino": None if (ratio := _ratio(mean, downside)) is None else ratio * math.sqrt(TRADING_DAYS),
        "max_drawdown": max_drawdown,
        "calmar": None if cagr is None else _ratio(cagr, max_drawdown),
        "turnover": _ratio(float(np.sum(np.abs(fill_values))), 2.0 * mean_value * years)
        if years > 0
        else None,
    }


def daily_returns(values: pd.Series, initial: float) -> np.ndarray:
    """Each day's return of an equity curve, the first against the starting cash."""
    curve = np.concatenate([[initial], values.astype("float64").to_numpy()])
    return np.diff(curve) / curve[:-1]


def _sharpe_interval(returns: np.ndarray) -> dict[str, float | None]:
    """The Sharpe ratio's 95 % moving-block bootstrap interval (seeded: the same on every run); ``None``
    bounds under :data:`MIN_INTERVAL_DAYS` returns, where resamples of a few days give absurd ratios."""
    if returns.size < MIN_INTERVAL_DAYS:
        return {"sharpe_low": None, "sharpe_high": None}
    low, high = block_bootstrap_interval(returns, sharpe_ratio)
    return {"sharpe_low": low, "sharpe_high": high}


def sharpe_difference(equity: pd.DataFrame, initial: float, first: str, second: str) -> Estimate:
    """``Sharpe(first) − Sharpe(second)`` with a paired block-bootstrap 95 % interval over the same days."""
    a, b = daily_returns(equity[first], initial), daily_returns(equity[second], initial)
    sharpes = sharpe_ratio(np.vstack([a, b]))
    value = float(sharpes[0] - sharpes[1])
    low, high = (
        paired_block_bootstrap_interval(a, b, sharpe_ratio) if a.size >= MIN_INTERVAL_DAYS else (None, None)
    )
    return {
        "value": value if math.isfinite(value) else None,
        "low": low,
        "high": high,
        "t": None,
        "n": int(a.size),
    }
