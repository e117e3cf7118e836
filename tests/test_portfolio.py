"""The technical base manager on real data: scan filters, selection, weights, statistics, as_of and
honesty."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_plugin import FrameSource, ManualClock, PortfolioManager, SymbolError

from .conftest import tiny_config

T = "2016-03-31"
SYMBOLS = ("AAPL", "MSFT", "KO", "XOM", "JNJ", "PG", "INTC", "WMT")


@pytest.fixture(scope="module")
def frames(source):
    return {s: source.load(s) for s in SYMBOLS}


def manager(source, when=T, **portfolio) -> PortfolioManager:
    return PortfolioManager(config=tiny_config(portfolio=portfolio), source=source, clock=ManualClock(when))


def test_scan_ranks_by_technical_score(source):
    pm = manager(source)
    candidates = pm.scan_market()
    assert (
        candidates == [row["symbol"] for row in pm.last_scan]
        and len(candidates) == 24
        and not pm.scan_rejected
    )
    scores = [row["score"] for row in pm.last_scan]
    assert scores == sorted(scores, reverse=True)
    assert all(row["last_bar"] <= "2016-03-31T00:00:00" for row in pm.last_scan)
    capped = PortfolioManager(
        config=tiny_config(lstm={"max_initial_symbols": 5}), source=source, clock=ManualClock(T)
    )
    assert capped.scan_market() == candidates[:5]


def test_scan_leaves_out_new_stopped_and_illiquid_symbols(frames):
    data = dict(frames)
    data["NEW"] = frames["KO"].loc["2015-06-01":]  # ~210 bars by T: too little history
    data["GONE"] = frames["PG"].loc[:"2016-02-29"]  # stopped trading a month ago
    thin = frames["JNJ"].copy()
    thin["volume"] = 1.0
    data["THIN"] = thin
    pm = manager(FrameSource(data))
    candidates = pm.scan_market()
    assert set(candidates) == set(SYMBOLS)
    assert "bars of history (needs 252)" in pm.scan_rejected["NEW"]
    assert pm.scan_rejected["GONE"].startswith("last bar 2016-02-29 is 31 days old")
    assert pm.scan_rejected["THIN"].startswith("dollar volume")


def test_selection_respects_size_score_cap_and_weighting(source):
    pm = manager(source, num_symbols=6, max_weight=0.2)
    weights = pm.select_portfolio()
    assert 0 < len(weights) <= 6 and weights == pm.current_portfolio
    assert sum(weights.values()) == pytest.approx(1.0) and max(weights.values()) <= 0.2 + 1e-12
    analyses = pm.last_analyses
    assert all(
        analyses[s]["score"] >= 60 and analyses[s]["recommendation"] in ("buy", "strong_buy") for s in weights
    )
    chosen_scores = sorted((analyses[s]["score"] for s in weights), reverse=True)
    left_out = [a["score"] for s, a in analyses.items() if s not in weights and a["score"] >= 60]
    assert not left_out or max(left_out) <= chosen_scores[-1]
    assert pm.portfolio_as_of == pd.Timestamp(T)
    equal = manager(source, num_symbols=6, weighting="equal").select_portfolio()
    assert set(equal) == set(weights) and list(equal.values()) == pytest.approx(
        [1 / len(weights)] * len(weights)
    )
    few = manager(source, num_symbols=3, max_weight=0.2).select_portfolio()
    assert len(few) == 3 and sum(few.values()) == pytest.approx(0.6)  # the cap keeps 40 % in cash


def test_nothing_qualifies_means_all_cash(source):
    pm = manager(source, min_score=99.0)
    assert pm.select_portfolio() == {} and pm.current_portfolio == {}
    stats = pm.get_portfolio_stats()
    assert stats["positions"] == 0 and stats["cash"] == 1.0


def test_analysis_of_one_symbol(source, frames):
    pm = manager(source)
    analysis = pm.analyze_symbol("aapl")
    assert (
        analysis["symbol"] == "AAPL"
        and analysis["status"] == "ok"
        and analysis["as_of"] == "2016-03-31T00:00:00"
    )
    assert 0 <= analysis["score"] <= 100 and analysis["score"] == analysis["technical_score"]
    assert set(analysis["components"]) == {"trend", "momentum", "rsi", "volatility"}
    given = pm.analyze_symbol("AAPL", data=frames["AAPL"].reset_index())  # a DataFrame in, cut at as_of
    assert given["score"] == analysis["score"]
    short = pm.analyze_symbol("AAPL", data=frames["AAPL"].loc["2015-11-01":])
    assert (
        short["status"] == "insufficient_data" and short["score"] == 0.0 and "needs 201" in short["message"]
    )
    unknown = pm.analyze_symbol("ZZZZ")
    assert unknown["status"] == "error" and "unknown symbol ZZZZ" in unknown["message"]
    with pytest.raises(SymbolError):
        pm.analyze_symbol("../../etc")


def test_as_of_later_than_the_clock_is_refused(source):
    pm = manager(source)
    with pytest.raises(ValueError, match="after the clock's now"):
        pm.select_portfolio(as_of="2016-04-01")
    assert pm.analyze_symbol("KO", as_of="2015-12-31")["as_of"] == "2015-12-31T00:00:00"


def test_statistics_describe_the_current_portfolio(source):
    pm = manager(source, num_symbols=5)
    weights = pm.select_portfolio()
    stats = pm.get_portfolio_stats()
    assert stats["weights"] == weights and stats["positions"] == len(weights)
    assert stats["as_of"] == stats["portfolio_as_of"] == "2016-03-31T00:00:00"
    assert 0 < stats["volatility"] < 1 and np.isfinite(stats["expected_return"])
    assert (
        stats["effective_positions"] == pytest.approx(1 / stats["hhi"])
        and stats["hhi"] >= 1 / len(weights) - 1e-12
    )


def test_future_prices_change_nothing_before_them(frames):
    honest = manager(FrameSource(frames))
    rng = np.random.default_rng(7)
    noisy = {}
    for symbol, frame in frames.items():
        frame = frame.copy()
        after = frame.index > pd.Timestamp(T)
        frame.loc[after, ["open", "high", "low", "close"]] *= rng.uniform(0.5, 1.5, (after.sum(), 1))
        frame.loc[after, "high"] = frame.loc[after, ["open", "high", "low", "close"]].max(axis=1)
        frame.loc[after, "low"] = frame.loc[after, ["open", "high", "low", "close"]].min(axis=1)
        noisy[symbol] = frame
    perturbed = manager(FrameSource(noisy))
    assert perturbed.scan_market() == honest.scan_market()
    assert perturbed.select_portfolio() == honest.select_portfolio()
    assert perturbed.last_analyses == honest.last_analyses
    assert perturbed.get_portfolio_stats() == honest.get_portfolio_stats()


def test_the_bundled_sample_has_a_clock_that_stops_on_its_last_bar(source, caplog, monkeypatch):
    from lstm_plugin.core import clock as clock_module

    monkeypatch.setattr(clock_module, "_announced", clock_module.threading.Event())
    with caplog.at_level("WARNING", logger="lstm_plugin.core.clock"):
        first, second = (
            PortfolioManager(config=tiny_config(), source=source),
            PortfolioManager(config=tiny_config(), source=source),
        )
    assert first.clock.now() == second.clock.now() == pd.Timestamp("2021-04-21")
    assert caplog.text.count("bundled data ends on 2021-04-21") == 1  # said once
    assert first.select_portfolio()  # the design example's call, as written: a real portfolio


def test_a_users_own_data_is_never_back_dated(frames):
    from lstm_plugin import SystemClock

    assert isinstance(PortfolioManager(config=tiny_config(), source=FrameSource(frames)).clock, SystemClock)


@pytest.mark.slow
def test_a_scan_that_rejects_everything_says_why_and_how_to_fix_it(frames):
    from lstm_plugin import LSTMPluginWarning

    pm = PortfolioManager(config=tiny_config(), source=FrameSource(frames), clock=ManualClock("2026-12-01"))
    with pytest.warns(
        LSTMPluginWarning,
        match=r"rejected every symbol: 8 stale \(newest bar 2021-04-21, 2050 days before 2026-12-01; "
        r"portfolio.max_stale_days is 10\)\. To fix: pass as_of= a date the data covers "
        r"\(as_of='2021-04-21'\)",
    ):
        assert pm.select_portfolio() == {}
    illiquid = PortfolioManager(
        config=tiny_config(portfolio={"min_dollar_volume": 1e15}),
        source=FrameSource(frames),
        clock=ManualClock(T),
    )
    with pytest.warns(
        LSTMPluginWarning, match=r"8 below portfolio.min_dollar_volume .* lower portfolio.min_dollar_volume"
    ):
        illiquid.scan_market()
