"""Pure maths of the portfolio managers: technical score, weights, cap, confidence sizing, statistics,
blending."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lstm_plugin.core.config import LSTMSection
from lstm_plugin.portfolio.allocation import (
    allocate,
    cap_weights,
    confidence_scale,
    confidence_tilt,
    portfolio_statistics,
)
from lstm_plugin.portfolio.scoring import forecast_edge, forecast_trust, integrate_score, lstm_entry
from lstm_plugin.portfolio.technical import (
    REQUIRED_BARS,
    annualised_volatility,
    recommendation,
    rsi,
    technical_analysis,
)


def bars_from(close: np.ndarray, start: str = "2010-01-01") -> pd.DataFrame:
    index = pd.bdate_range(start, periods=len(close), name="date")
    return pd.DataFrame(
        {
            "open": close,
            "high": close * 1.01,
            "low": close * 0.99,
            "close": close,
            "volume": np.full(len(close), 1e6),
        },
        index=index,
    )


# ---------------------------------------------------------------------- technical
def test_rsi_matches_a_hand_computation():
    close = np.array([10.0, 11, 10, 12, 11, 13])  # changes +1 -1 +2 -1 +2
    # period 3: first averages over (+1,-1,+2): gain 1, loss 1/3; then -1: gain 2/3, loss 5/9; then +2: gain
    # 10/9, loss 10/27
    gain, loss = 10 / 9, 10 / 27
    assert rsi(close, period=3) == pytest.approx(100 - 100 / (1 + gain / loss))
    assert rsi(np.arange(1.0, 30.0)) == 100.0 and rsi(np.ones(30)) == 50.0
    with pytest.raises(ValueError, match="needs 15 bars"):
        rsi(np.ones(10))


def test_volatility_is_annualised_std_of_log_returns():
    rng = np.random.default_rng(0)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 300)))
    expected = np.diff(np.log(close[-64:])).std(ddof=1) * math.sqrt(252)
    assert annualised_volatility(close) == pytest.approx(expected)


def test_recommendation_bands():
    assert [recommendation(s) for s in (100, 75, 74.9, 60, 59.9, 40, 39.9, 25, 24.9, 0)] == [
        "strong_buy",
        "strong_buy",
        "buy",
        "buy",
        "hold",
        "hold",
        "sell",
        "sell",
        "strong_sell",
        "strong_sell",
    ]


def test_a_calm_uptrend_scores_high_and_a_crash_scores_low():
    up = technical_analysis(
        bars_from(100 * np.exp(np.linspace(0, 0.3, 260) + 0.002 * np.sin(np.arange(260))))
    )
    assert up["components"]["trend"] == 100.0 and up["components"]["volatility"] == 100.0
    assert up["score"] >= 75 and up["recommendation"] == "strong_buy"
    rng = np.random.default_rng(1)
    down = technical_analysis(bars_from(100 * np.exp(np.cumsum(rng.normal(-0.004, 0.04, 260)))))
    assert (
        down["components"]["trend"] == 0.0 and down["score"] < 25 and down["recommendation"] == "strong_sell"
    )


def test_score_reads_only_the_last_required_bars():
    rng = np.random.default_rng(2)
    close = 50 * np.exp(np.cumsum(rng.normal(0, 0.015, 600)))
    full = technical_analysis(bars_from(close))
    altered = close.copy()
    altered[:-REQUIRED_BARS] *= 3.0  # older history changes; the last 201 bars do not
    assert technical_analysis(bars_from(altered))["score"] == full["score"]
    with pytest.raises(ValueError, match="needs 201 bars"):
        technical_analysis(bars_from(close[:200]))


# ---------------------------------------------------------------------- weights
def test_cap_is_applied_by_water_filling():
    weights = cap_weights({"A": 5, "B": 1, "C": 1, "D": 1}, 0.4)
    assert weights == pytest.approx({"A": 0.4, "B": 0.2, "C": 0.2, "D": 0.2})
    assert sum(weights.values()) == pytest.approx(1.0)
    # two rounds: capping A pushes B over the cap too
    weights = cap_weights({"A": 10, "B": 6, "C": 2, "D": 2}, 0.3)
    assert weights == pytest.approx({"A": 0.3, "B": 0.3, "C": 0.2, "D": 0.2})


def test_too_few_positions_for_the_cap_leave_cash():
    assert cap_weights({"A": 3, "B": 1}, 0.25) == pytest.approx({"A": 0.25, "B": 0.25})
    assert cap_weights({}, 0.25) == {} and cap_weights({"A": 0, "B": -1}, 0.5) == {}


def test_weighting_methods():
    scores = {"A": 80.0, "B": 60.0}
    assert allocate(scores, "equal", 1.0) == pytest.approx({"A": 0.5, "B": 0.5})
    assert allocate(scores, "score", 1.0) == pytest.approx({"A": 80 / 140, "B": 60 / 140})
    inverse = allocate(scores, "inverse_volatility", 1.0, {"A": 0.4, "B": 0.2})
    assert inverse == pytest.approx({"A": 1 / 3, "B": 2 / 3})
    with pytest.raises(ValueError, match="weighting"):
        allocate(scores, "kelly", 1.0)


def test_confidence_sizing_tilts_towards_confident_rises():
    assert (
        confidence_scale(0.0, 0.2) == 0.5
        and confidence_scale(0.2, 0.2) == 1.0
        and confidence_scale(-0.5, 0.2) == 0.0
    )
    assert confidence_scale(0.1, 0.2) == pytest.approx(0.75) and confidence_scale(float("nan"), 0.2) == 0.5
    base = {"A": 0.3, "B": 0.3, "C": 0.2}
    assert confidence_tilt(base, {}, 0.2, 0.4) == pytest.approx(base)  # no views: unchanged
    tilted = confidence_tilt(base, {"A": 0.2, "B": -0.2}, 0.2, 1.0)
    assert "B" not in tilted  # confidently down: dropped
    assert sum(tilted.values()) == pytest.approx(0.8)  # invested total kept
    assert tilted["A"] / tilted["C"] == pytest.approx((0.3 * 1.0) / (0.2 * 0.5))
    capped = confidence_tilt(base, {"A": 0.2, "B": -0.2}, 0.2, 0.4)
    assert max(capped.values()) <= 0.4 + 1e-12 and sum(capped.values()) <= 0.8 + 1e-12


def test_portfolio_statistics_by_hand():
    closes = pd.DataFrame({"A": [100.0, 110.0, 99.0, 108.9], "B": [50.0, 50.0, 55.0, 55.0]})
    stats = portfolio_statistics({"A": 0.6, "B": 0.2}, closes)
    ra, rb = np.array([0.1, -0.1, 0.1]), np.array([0.0, 0.1, 0.0])
    w = np.array([0.6, 0.2])
    assert stats["expected_return"] == pytest.approx(252 * (0.6 * ra.mean() + 0.2 * rb.mean()))
    assert stats["volatility"] == pytest.approx(math.sqrt(252 * w @ np.cov(np.vstack([ra, rb])) @ w))
    assert stats["hhi"] == pytest.approx(0.75**2 + 0.25**2) and stats["effective_positions"] == pytest.approx(
        1 / 0.625
    )
    assert stats["cash"] == pytest.approx(0.2) and stats["positions"] == 2 and stats["max_weight"] == 0.6
    empty = portfolio_statistics({}, closes)
    assert empty["positions"] == 0 and empty["cash"] == 1.0 and empty["volatility"] is None


# ---------------------------------------------------------------------- blending
def prediction(
    up: float, down: float, reliability: float = 0.65, quality: float = 0.75, status: str = "success"
) -> dict:
    neutral = 1 - up - down
    best = max((up, "up"), (down, "down"), (neutral, "neutral"))
    return {
        "status": status,
        "message": "" if status == "success" else "no model",
        "probabilities": {"down": down, "neutral": neutral, "up": up},
        "predicted_direction": best[1],
        "confidence": best[0],
        "price_change_pct": 1.5,
        "model_type": "specific",
        "model_version": 1,
        "reliability": reliability,
        "quality": quality,
        "as_of": "2016-03-31",
    }


def test_trust_scales_or_ignores_below_thresholds():
    lstm = LSTMSection(reliability_threshold=0.6, model_quality_threshold=0.7)
    assert forecast_trust(0.65, 0.75, lstm) == (1.0, "")
    trust, why = forecast_trust(0.54, 0.56, lstm)
    assert trust == pytest.approx(0.9 * 0.8) and "reliability 0.540 < reliability_threshold 0.6" in why
    assert forecast_trust(0.54, 0.75, LSTMSection(below_threshold="ignore"))[0] == 0.0
    assert forecast_trust(None, 0.7, lstm) == (0.0, "model has no reliability measure")
    assert forecast_trust(0.6, float("nan"), lstm)[0] == 0.0


def test_the_documented_formula():
    lstm = LSTMSection(weight=0.3)
    entry = lstm_entry(prediction(0.6, 0.1), lstm)
    assert entry["used"] and entry["signal"] == pytest.approx(0.5) and entry["direction"] == "up"
    assert integrate_score(50.0, entry["signal"], 0.3) == pytest.approx(65.0)
    assert integrate_score(90.0, 0.5, 0.3) == 100.0 and integrate_score(5.0, -0.5, 0.3) == 0.0  # clipped
    assert integrate_score(50.0, 1.0, 0.3) == pytest.approx(
        80.0
    )  # a certain, trusted "up" adds 30 points at weight 0.3
    assert forecast_edge(prediction(0.6, 0.1, status="not_available")) == 0.0
    failed = lstm_entry(prediction(0.6, 0.1, status="not_available"), lstm)
    assert not failed["used"] and failed["signal"] == 0.0 and failed["reason"] == "not_available: no model"


def test_weight_zero_is_exact_and_influence_never_falls_with_weight():
    for technical in (3.0, 41.7, 97.5):
        for signal in (-0.9, -0.2, 0.0, 0.3, 1.0):
            assert integrate_score(technical, signal, 0.0) == technical
            moves = [abs(integrate_score(technical, signal, w) - technical) for w in np.linspace(0, 1, 21)]
            assert moves == sorted(moves)
