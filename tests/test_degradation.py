"""Retrain on degradation: live figures on known outcomes only, the rule by hand, the service acting on it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_plugin import ManualClock, ModelRegistry
from lstm_plugin.model.metrics import spearman
from lstm_plugin.serving.live_scores import LiveScores, degradation
from lstm_plugin.training.service import TrainingService

from .conftest import tiny_config

DAYS = pd.bdate_range("2016-01-04", periods=40)


def served(symbol: str, day: pd.Timestamp, score: float, version: int = 1, horizon: int = 2) -> dict:
    """A successful forecast as the forecast service returns it."""
    up = 0.5 + score / 2
    return {
        "symbol": symbol,
        "status": "success",
        "model_type": "specific",
        "model_version": version,
        "probabilities": {"down": 1 - up, "neutral": 0.0, "up": up},
        "expected_log_return": score / 100,
        "horizon": horizon,
        "as_of": day.isoformat(),
    }


def test_live_figures_count_only_known_outcomes_and_each_forecast_once():
    close = pd.Series(100.0 + np.arange(len(DAYS)) % 3, index=DAYS)  # 100, 101, 102, 100, ...
    book = LiveScores()
    forecasts = [served("AAA", day, 0.2 if i % 2 else -0.4) for i, day in enumerate(DAYS[:10])]
    book.record(forecasts, lambda p: p["symbol"])
    book.record(forecasts[:3], lambda p: p["symbol"])  # asked again: the same forecasts
    test = {"reliability": 0.6, "ic": 0.1}
    early = book.score(("specific", "AAA", 1), lambda s: close.loc[: DAYS[5]], test)
    assert early["n"] == 4  # forecasts at bars 0..3 have their bar + 2 by bar 5
    late = book.score(("specific", "AAA", 1), lambda s: close.loc[: DAYS[20]], test)
    realised = [close.iloc[i + 2] / close.iloc[i] - 1 for i in range(10)]
    scores = [f["probabilities"]["up"] - f["probabilities"]["down"] for f in forecasts]
    hits = [np.sign(a) == np.sign(b) for a, b in zip(scores, realised) if a and b]
    assert late["n"] == 10 and late["hit_rate"] == pytest.approx(np.mean(hits))
    assert late["ic"] == pytest.approx(
        spearman(np.array([f["expected_log_return"] for f in forecasts]), np.array(realised))
    )
    assert (late["test_hit_rate"], late["test_ic"]) == (0.6, 0.1)
    assert book.score(("specific", "AAA", 2), lambda s: close, test) is None  # never served


def test_the_degradation_rule_by_hand():
    live = {"n": 50, "hit_rate": 0.42, "ic": 0.05, "test_hit_rate": 0.58, "test_ic": 0.08}
    assert degradation(live, 0.1, 60) is None  # too few outcomes yet
    reason = degradation(live, 0.1, 40)
    assert reason == "degraded over 50 known outcomes: live hit rate 0.420 < test 0.580 - 0.1"
    assert degradation(dict(live, hit_rate=0.5), 0.1, 40) is None  # within the margin
    both = degradation(dict(live, ic=-0.1), 0.1, 40)
    assert "hit rate" in both and "live IC -0.100 < test 0.080" in both
    assert degradation(None, 0.1, 1) is None


@pytest.mark.slow
def test_a_degraded_model_is_retrained_with_its_reason_and_shown_in_status(source, tmp_path):
    config = tiny_config(
        lstm_service={
            "universal": {"enabled": False},
            "retraining": {"degradation_min_outcomes": 20, "force_retrain_age_days": 365},
        },
    )
    with TrainingService(
        config,
        source,
        ModelRegistry(tmp_path / "models", config.registry.keep_versions),
        clock=ManualClock("2015-12-31"),
        backend="sync",
    ) as svc:
        svc.request_model_training(["AAPL"])
        svc.update()
        model = svc.forecasts.resolve_model("AAPL")
        days = source.load("AAPL").loc["2016-01-04":"2016-03-31"].index
        close = source.load("AAPL")["close"]
        wrong = []
        for day in days[:30]:  # forecasts that called every move wrongly
            later = close.iloc[close.index.get_loc(day) + model.metadata["horizon"]] / close.loc[day] - 1
            wrong.append(
                dict(served("AAPL", day, -0.5 * np.sign(later), model.version, model.metadata["horizon"]))
            )
        svc.forecasts.live.record(wrong, lambda p: p["symbol"])
        svc.clock.set(days[-1])
        status = svc.forecasts.get_model_status("AAPL")
        assert status["live"]["n"] == 30 and status["live"]["hit_rate"] == 0.0
        assert status["degraded"].startswith("degraded over 30 known outcomes: live hit rate 0.000")
        assert svc.snapshot()["degraded"] == {"AAPL": status["degraded"]}
        svc.update()
        done = svc.snapshot()["done"]
        assert len(done) == 2, done
        assert any(reason.startswith("degraded over 30") for reason in done[-1]["reasons"])
        newest = svc.registry.resolve("specific", "AAPL", svc.clock.now(), candidates=True)
        assert newest.version == model.version + 1 and newest.trained_at == days[-1]
