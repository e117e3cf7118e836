"""The research helpers and notebook: settings merged like config files, rows read from real summaries."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstm_plugin.backtrader.research import SETTINGS, trading_in, with_changes
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
