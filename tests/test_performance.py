"""Strategy metrics against values computed by hand on a small series."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from lstm_plugin.portfolio.performance import drawdown_series, performance_metrics


def curve(values: list[float], start: str = "2020-01-01", freq: str = "D") -> pd.Series:
    return pd.Series(values, index=pd.date_range(start, periods=len(values), freq=freq))


def test_metrics_by_hand():
    # 100 -> 110 -> 99 -> 108.9 -> 119.79 over 4 calendar days after the first bar; starting cash 100
    values = curve([110.0, 99.0, 108.9, 119.79])
    m = performance_metrics(values, 100.0, fill_values=[50.0, -30.0])
    returns = [0.10, -0.10, 0.10, 0.10]
    mean = sum(returns) / 4  # 0.05
    std = math.sqrt(sum((r - mean) ** 2 for r in returns) / 3)  # 0.1
    years = 3 / 365.25
    assert m["final_value"] == pytest.approx(119.79)
    assert m["total_return"] == pytest.approx(0.1979)
    assert m["cagr"] == pytest.approx(1.1979 ** (1 / years) - 1)
    assert m["volatility"] == pytest.approx(std * math.sqrt(252))
    assert m["sharpe"] == pytest.approx(mean / std * math.sqrt(252))
    downside = math.sqrt(0.01 / 4)  # one negative return of -0.1
    assert m["sortino"] == pytest.approx(mean / downside * math.sqrt(252))
    assert m["max_drawdown"] == pytest.approx(0.1)  # 110 -> 99
    assert m["calmar"] == pytest.approx(m["cagr"] / 0.1)
    mean_value = (110 + 99 + 108.9 + 119.79) / 4
    assert m["turnover"] == pytest.approx(80.0 / (2 * mean_value) / years)


def test_drawdown_counts_the_starting_cash_as_a_peak():
    dd = drawdown_series(curve([95.0, 90.0, 120.0, 60.0]), 100.0)
    assert list(dd) == pytest.approx([0.05, 0.10, 0.0, 0.5])


def test_degenerate_curves():
    flat = performance_metrics(curve([100.0, 100.0, 100.0]), 100.0)
    assert (
        flat["sharpe"] is None
        and flat["sortino"] is None
        and flat["max_drawdown"] == 0.0
        and flat["calmar"] is None
    )
    assert flat["cagr"] == pytest.approx(0.0) and flat["turnover"] == 0.0
    single = performance_metrics(curve([105.0]), 100.0)
    assert (
        single["cagr"] is None
        and single["turnover"] is None
        and single["total_return"] == pytest.approx(0.05)
    )
    with pytest.raises(ValueError, match="empty"):
        performance_metrics(curve([]), 100.0)
