"""The research helpers and notebook: settings merged like config files, rows read from real summaries."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_plugin import bundled_source
from lstm_plugin.backtrader.research import (
    SETTINGS,
    compare_settings,
    daily_rank_ic,
    paired_difference,
    trading_in,
    with_changes,
)
from lstm_plugin.core.config import load_config
from lstm_plugin.core.data import open_source
from lstm_plugin.core.errors import ConfigError

from .conftest import run_notebook


def test_settings_are_merged_section_by_section_and_validated():
    base = load_config()
    ensemble = with_changes(base, SETTINGS["excess, holding period, ensemble"])
    assert ensemble.model.target == "excess" and ensemble.model.horizon == 21  # monthly holding period
    assert len(ensemble.model.ensemble) == 2 and ensemble.model.window == base.model.window
    assert with_changes(base, {}) == base
    with pytest.raises(ConfigError, match="settings"):
        with_changes(base, {"model": {"target": "alpha"}})


def test_a_study_takes_the_symbols_that_trade_in_its_period():
    """The S&P 500 folder lists 17 stocks after 2014: the development period cannot forecast them."""
    folder = Path(__file__).resolve().parents[1] / "datasets" / "sp500_2021"
    source = open_source(str(folder))
    development = trading_in(source, "2005-01-03", "2014-12-31")
    assert "PYPL" not in development and "AAPL" in development  # PayPal listed in July 2015
    assert len(development) == 387 and len(trading_in(source, "2015-01-02", "2021-04-21")) == 404


@pytest.mark.slow
def test_the_research_notebook_compares_every_setting(tmp_path):
    outputs = run_notebook("forecast_research.ipynb", tmp_path, timeout=900)
    text = "".join(o.get("text", "") for o in outputs)
    for name in SETTINGS:
        assert name in text
    assert "rank_ic_holding_low" in text
    assert "image/png" in outputs[-1].get("data", {})  # the last cell draws


def test_the_daily_rank_ic_reads_a_main_jobs_forecasts_and_outcomes():
    days = pd.bdate_range("2020-01-01", periods=3)
    daily = pd.DataFrame(
        [(d, s, float(i)) for d in days for i, s in enumerate("ABCD")], columns=["date", "symbol", "lstm"]
    )
    outcomes = daily.rename(columns={"lstm": "realized_21"})
    outcomes.loc[outcomes["date"] == days[1], "realized_21"] *= -1  # the second day ranks them backwards
    ic = daily_rank_ic({"daily": daily, "daily_outcomes": outcomes}, 21)
    assert ic.tolist() == pytest.approx([1.0, -1.0, 1.0])


def test_the_difference_is_paired_by_day_so_a_shared_day_effect_cancels():
    """Two settings that share every day's noise and differ by 0.01 a day: paired, the interval is 0.01
    exactly; a difference of means would carry the noise. Days one of them lacks are left out."""
    days = pd.bdate_range("2020-01-01", periods=250)
    noise = pd.Series(np.random.default_rng(0).normal(0, 0.1, len(days)), index=days)
    first, better = noise, (noise + 0.01).iloc[::-1]  # the same days in another order
    estimate = paired_difference(better, first.drop(days[:50]), overlap=5)
    assert (estimate["value"], estimate["low"], estimate["high"]) == pytest.approx((0.01, 0.01, 0.01))
    assert estimate["n"] == 200


@pytest.mark.slow
def test_each_setting_is_paired_by_day_with_the_first(tmp_path):
    """The same setting twice, in two empty registries: the same forecasts, a difference of exactly 0."""
    small = {
        "model": {"window": 10, "hidden_size": 8, "epochs": 4, "lookback_years": 3.0, "min_samples": 200},
        "portfolio": {"num_symbols": 2, "max_weight": 0.5},
        "plugins": {"load_entry_points": False},
    }
    table = compare_settings(
        with_changes(load_config(), small),
        {"first": {}, "again": {}},
        bundled_source(),
        tmp_path,
        "2016-01-04",
        "2016-09-30",
        ["AAPL", "MSFT", "KO", "XOM"],
    )
    assert pd.isna(table.loc["first", "minus_first"])
    again = table.loc["again"]
    assert (again.minus_first, again.minus_first_low, again.minus_first_high) == (0.0, 0.0, 0.0)
    assert again.rank_ic_holding == table.loc["first", "rank_ic_holding"]
