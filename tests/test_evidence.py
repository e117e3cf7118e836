"""Forecast evidence and baselines: pure functions against hand computations, and causality."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_plugin.core.errors import ConfigError
from lstm_plugin.core.statistics import estimate_mean
from lstm_plugin.model.baselines import momentum_12_1, reversal_1m, walk_forward_ridge
from lstm_plugin.model.metrics import spearman
from lstm_plugin.serving.baselines import baseline_panels, check_baselines
from lstm_plugin.serving.evidence import forecast_evidence, forward_returns, rank_ic_by_date, sign_hit_rate

DAYS = pd.bdate_range("2010-01-04", periods=400)


def random_closes(symbols=8, seed=0, days=DAYS) -> dict[str, pd.Series]:
    rng = np.random.default_rng(seed)
    return {
        f"S{i}": pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.02, len(days)))), index=days)
        for i in range(symbols)
    }


def test_rank_ic_per_date_is_the_spearman_correlation_of_the_names_that_have_both():
    rng = np.random.default_rng(1)
    scores = pd.DataFrame(rng.normal(size=(6, 5)), index=DAYS[:6], columns=list("ABCDE"))
    realized = pd.DataFrame(rng.normal(size=(6, 5)), index=DAYS[:6], columns=list("ABCDE"))
    scores.iloc[1, 0] = np.nan  # a missing score drops that name on that day only
    scores.iloc[2, :] = [1.0, 1.0, 2.0, 2.0, 3.0]  # ties get average ranks
    realized.iloc[3, 2:] = np.nan  # two names left: too few, the day is skipped
    scores.iloc[4, :] = 0.5  # no spread: skipped
    ic = rank_ic_by_date(scores, realized)
    assert list(ic.index) == [DAYS[0], DAYS[1], DAYS[2], DAYS[5]]
    for day in ic.index:
        both = scores.loc[day].notna() & realized.loc[day].notna()
        assert ic[day] == pytest.approx(
            spearman(scores.loc[day][both].values, realized.loc[day][both].values)
        )


def test_sign_hit_rate_and_base_rate_by_hand():
    scores = pd.DataFrame({"A": [0.1, -0.2, 0.0, 0.3], "B": [0.2, 0.1, -0.1, np.nan]}, index=DAYS[:4])
    realized = pd.DataFrame({"A": [0.05, 0.01, 0.2, -0.1], "B": [0.02, 0.03, -0.04, 0.5]}, index=DAYS[:4])
    # calls: A +/+ hit, A -/+ miss, A 0 no call, A +/- miss, B +/+ hit, B +/+ hit, B -/- hit
    hit, base, n = sign_hit_rate(scores, realized)
    assert (hit, n) == (pytest.approx(4 / 6), 6)
    assert base == pytest.approx(4 / 6)  # four of the six outcomes rose


def test_forward_returns_count_each_symbols_own_bars():
    a = pd.Series([1.0, 2.0, 4.0, 8.0], index=DAYS[:4])
    b = pd.Series([10.0, 20.0, 40.0], index=DAYS[[0, 2, 3]])  # no bar on day 1
    out = forward_returns({"A": a, "B": b}, 1)
    assert out["A"].tolist()[:3] == [1.0, 1.0, 1.0] and np.isnan(out["A"].iloc[3])
    assert out.loc[DAYS[0], "B"] == 1.0 and np.isnan(out.loc[DAYS[1], "B"])  # day 0 -> day 2, its next bar


def test_momentum_and_reversal_by_hand():
    close = pd.Series(np.arange(1.0, 301.0), index=DAYS[:300])
    momentum, reversal = momentum_12_1({"A": close}), reversal_1m({"A": close})
    day = 260
    assert momentum["A"].iloc[day] == pytest.approx(close.iloc[day - 21] / close.iloc[day - 252] - 1)
    assert reversal["A"].iloc[day] == pytest.approx(-(close.iloc[day] / close.iloc[day - 21] - 1))
    assert momentum["A"].iloc[:252].isna().all()


def test_the_ridge_learns_a_predictable_target_and_only_from_labels_known_by_each_refit():
    rng = np.random.default_rng(3)
    closes, features = {}, {}
    for i in range(6):
        signal = rng.normal(0, 1, len(DAYS))
        steps = np.roll(0.01 * signal, 1) + rng.normal(0, 0.002, len(DAYS))  # tomorrow follows the signal
        closes[f"S{i}"] = pd.Series(100 * np.exp(np.cumsum(steps)), index=DAYS)
        features[f"S{i}"] = pd.DataFrame({"signal": signal, "noise": rng.normal(size=len(DAYS))}, index=DAYS)
    refits = list(DAYS[200::20])
    panel = walk_forward_ridge(features, closes, refits, horizon=1)
    assert panel.index[0] == refits[0] and panel.notna().all().all()
    ic = rank_ic_by_date(panel, forward_returns(closes, 1))
    assert ic.mean() > 0.8

    cut = DAYS[300]
    changed = {s: c.where(c.index <= cut, c * rng.uniform(0.5, 2.0, len(c))) for s, c in closes.items()}
    again = walk_forward_ridge(features, changed, refits, horizon=1)
    assert again.loc[:cut].equals(panel.loc[:cut])  # prices after the cut change nothing dated before it
    assert not again.loc[cut:].iloc[21:].equals(panel.loc[cut:].iloc[21:])  # the next refits do see them


def test_forecast_evidence_samples_compare_and_label_consistently():
    closes = random_closes()
    realized = forward_returns(closes, 5)
    rng = np.random.default_rng(5)
    good = realized + pd.DataFrame(rng.normal(0, 0.05, realized.shape), realized.index, realized.columns)
    panels = {
        "lstm": good.iloc[:-5],
        "noise": pd.DataFrame(rng.normal(size=realized.shape), realized.index, realized.columns),
    }
    rebalances = list(DAYS[::21])
    evidence = forecast_evidence(panels, closes, {"model": 5, "holding": 21}, rebalances, returns=("lstm",))
    lstm, noise = evidence["forecasters"]["lstm"]["model"], evidence["forecasters"]["noise"]["model"]
    ic = rank_ic_by_date(panels["lstm"], realized)
    assert lstm["daily"] == estimate_mean(ic.to_numpy(), overlap=5)
    assert lstm["rebalance"]["n"] == len(ic[ic.index.isin(rebalances)])
    assert lstm["daily"]["low"] > 0.3 and noise["daily"]["low"] < 0 < noise["daily"]["high"]
    assert lstm["hit_rate"] > lstm["base_rate"] and noise["hit_rate"] is None
    gap = evidence["differences"]["noise"]["model"]["daily"]
    common = ic - rank_ic_by_date(panels["noise"], realized)
    assert gap["value"] == pytest.approx(common.dropna().mean()) and gap["low"] > 0
    assert evidence["horizons"] == {"model": 5, "holding": 21}
    assert forecast_evidence(panels, closes, {"model": 5}, rebalances, reference=None)["differences"] == {}


def test_unknown_baselines_are_refused_in_one_line():
    assert check_baselines(["ridge", "ridge"]) == ("ridge",)
    with pytest.raises(ConfigError, match="unknown: magic"):
        check_baselines(["magic"])
    with pytest.raises(ConfigError, match="unknown"):
        baseline_panels(["magic"], None, [], [], None, None)


def test_an_excess_ridge_ignores_what_every_symbol_shares():
    rng = np.random.default_rng(4)
    closes = random_closes(symbols=5, seed=4)
    features = {s: pd.DataFrame({"x": rng.normal(size=len(DAYS))}, index=DAYS) for s in closes}
    market = pd.Series(np.exp(np.cumsum(rng.normal(0, 0.03, len(DAYS)))), index=DAYS)
    moved = {s: c * market for s, c in closes.items()}
    refits = list(DAYS[200::20])
    plain = walk_forward_ridge(features, closes, refits, 5, excess=True)
    assert np.allclose(walk_forward_ridge(features, moved, refits, 5, excess=True), plain)
    assert not np.allclose(
        walk_forward_ridge(features, moved, refits, 5), walk_forward_ridge(features, closes, refits, 5)
    )
