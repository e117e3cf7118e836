"""The adaptive LSTM weight: the formula by hand, evidence only from known outcomes, and a real run."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_plugin.portfolio.earned_weight import ServedForecasts, TrailingEvidence, adaptive_weight

from .backtrader_runs import (  # noqa: F401 - csv_dir and frames are fixtures
    bt_config,
    csv_dir,
    frames,
    run,
)

DAYS = pd.bdate_range("2015-01-02", periods=300)
SYMBOLS = [f"S{i}" for i in range(8)]


def test_the_weight_by_hand():
    assert adaptive_weight([], 0.3, window=12, shrinkage=12, full_ic=0.1) == (0.0, None, 0)
    weight, shrunk, n = adaptive_weight([0.2, 0.1, -0.05, 0.3], 0.3, window=3, shrinkage=2, full_ic=0.1)
    assert n == 3 and shrunk == pytest.approx((0.1 - 0.05 + 0.3) / 5)
    assert weight == pytest.approx(min(0.3, 0.3 * shrunk / 0.1))
    assert adaptive_weight([-0.2, 0.1], 0.3, window=12, shrinkage=0, full_ic=0.1)[0] == 0.0  # IC <= 0
    assert adaptive_weight([0.9] * 50, 0.3, window=12, shrinkage=12, full_ic=0.1)[0] == 0.3  # the cap


def synthetic(seed: int = 0) -> dict[str, pd.Series]:
    rng = np.random.default_rng(seed)
    return {s: pd.Series(100 * np.exp(np.cumsum(rng.normal(0, 0.02, len(DAYS)))), DAYS) for s in SYMBOLS}


def replay(closes: dict[str, pd.Series], forecast, horizon: int = 5) -> list[float]:
    """A rebalance every 10 bars: the weight from outcomes known then, then that rebalance's forecasts."""
    evidence, weights = TrailingEvidence(), []
    for t in range(0, len(DAYS) - horizon, 10):
        when = DAYS[t]
        ics = evidence.rank_ics(lambda s, when=when: closes[s].loc[:when], horizon, window=12)
        weights.append(adaptive_weight(ics, 0.3, window=12, shrinkage=12, full_ic=0.1)[0])
        evidence.add(ServedForecasts(when, {s: forecast(s, t) for s in SYMBOLS}))
    return weights


def test_good_forecasts_earn_the_weight_and_noise_does_not():
    closes = synthetic()
    rng = np.random.default_rng(1)

    def good(symbol: str, t: int) -> float:  # the next five bars' return, with a little noise
        c = closes[symbol]
        return float(np.log(c.iloc[t + 5] / c.iloc[t])) + rng.normal(0, 0.005)

    earned = replay(closes, good)
    assert earned[0] == 0.0  # no evidence yet: no influence
    assert earned[1] > 0 and all(b >= a for a, b in zip(earned[1:12], earned[2:13]))  # rises with evidence
    assert earned[-1] == pytest.approx(0.3)
    noise = replay(closes, lambda s, t: rng.normal())
    assert np.mean(noise) < 0.1 and noise.count(0.0) >= len(noise) // 3


def test_only_outcomes_known_at_the_rebalance_count():
    closes = synthetic(2)
    evidence = TrailingEvidence()
    evidence.add(ServedForecasts(DAYS[100], {s: float(i) for i, s in enumerate(SYMBOLS)}))
    assert evidence.rank_ics(lambda s: closes[s].loc[: DAYS[104]], 5, 12) == []  # bar 105 not there yet
    known = evidence.rank_ics(lambda s: closes[s].loc[: DAYS[105]], 5, 12)
    later = {s: c.where(c.index <= DAYS[105], c * 3) for s, c in closes.items()}
    assert len(known) == 1 and evidence.rank_ics(lambda s: later[s].loc[: DAYS[200]], 5, 12) == known


@pytest.mark.slow
def test_an_adaptive_run_records_its_weight_and_gives_no_influence_without_evidence(frames, tmp_path):
    config = bt_config(lstm={"weight_mode": "adaptive"})
    short = {s: f.loc[:"2006-12-29"] for s, f in frames.items()}
    _, analysis, _ = run(short, tmp_path / "models", config=config)
    weights = analysis["weights"]
    assert analysis["weight_mode"] == "adaptive" and len(weights) == analysis["n_rebalances"]
    assert weights[0]["weight"] == 0.0 and weights[0]["evidence"] == 0
    for w in weights:
        assert 0.0 <= w["weight"] <= 0.3
        if w["trailing_rank_ic"] is None or w["trailing_rank_ic"] <= 0:
            assert w["weight"] == 0.0
