"""The original design's integration test module: the LSTM-enhanced portfolio manager end to end.

Covers five verification points — initialisation, predictions obtained, predictions
integrated into the analysis, training requested for the relevant symbols, statistics with LSTM
insights — and the acceptance rules of the score blend. Also runs on its own::

    python -m tests.test_lstm_portfolio_integration        # extra arguments go to pytest

It needs the test extra (``pip install -e ".[test]"``), as every test module does.
"""

from __future__ import annotations

import json
import sys

try:
    import pytest
except ModuleNotFoundError:  # run on its own without the test extra: say what is missing, in one line
    if __name__ == "__main__":
        sys.exit('lstm-plugin: the tests need the test extra: pip install -e ".[test]"')
    raise

from lstm_plugin import (
    ConfigError,
    LSTMEnhancedPortfolioManager,
)
from lstm_plugin.portfolio.technical import recommendation

from .portfolio_managers import LSTM_KEYS, QUIET, REPO, T, empty_pm, enhanced, pm, runs  # noqa: F401 - fixtures among them


# ---------------------------------------------------------------------- the five verification points
def test_initialisation_from_a_config_file(tmp_path, trained, source):
    raw = json.loads((REPO / "config" / "lstm_config.json").read_text())
    raw["registry"]["path"] = str(tmp_path / "models")
    path = tmp_path / "lstm_config.json"
    path.write_text(json.dumps(raw))
    manager = LSTMEnhancedPortfolioManager(config_path=path)
    assert (
        manager.config.lstm.weight == 0.3
        and manager.config.lstm_service.schedule_priority.portfolio_symbols == 20
    )
    assert manager.lstm_integration.enabled and manager.lstm_active
    assert manager.registry.root == tmp_path / "models" and manager.current_portfolio == {}
    assert manager.lstm_integration._service is None  # no workers until the LSTM is first used
    assert len(manager.universe) == 24
    raw["lstm"]["weight"] = 1.7
    path.write_text(json.dumps(raw))
    with pytest.raises(
        ConfigError, match=r"^lstm_config.json › lstm.weight › must be between 0 and 1 \(got: 1.7\)$"
    ):
        LSTMEnhancedPortfolioManager(config_path=path)


def test_predictions_are_obtained(pm):
    integration = pm.lstm_integration
    own = integration.get_lstm_prediction("AAPL")
    assert (
        own["status"] == "success"
        and own["model_type"] == "specific"
        and own["as_of"] == "2016-03-31T00:00:00"
    )
    pooled = integration.get_lstm_prediction("KO")
    assert pooled["status"] == "success" and pooled["model_type"] == "universal"
    assert integration.get_lstm_prediction("AAPL")["cached"] is True
    assert integration.get_lstm_prediction("AAPL", force_refresh=True)["cached"] is False
    earlier = integration.get_lstm_prediction("AAPL", as_of="2016-01-29")
    assert (
        earlier["as_of"] == "2016-01-29T00:00:00" and earlier["price_change_pct"] != own["price_change_pct"]
    )
    batch = integration.analyze_symbols_with_lstm(["AAPL", "KO", "../x"])
    assert (
        batch["AAPL"]["predicted_direction"] == own["predicted_direction"]
        and batch["../x"]["status"] == "error"
    )


def test_predictions_are_integrated_into_the_analysis(pm):
    weight = pm.config.lstm.weight
    analyses = pm.analyze_symbols(pm.universe)
    moved = 0
    for symbol, analysis in analyses.items():
        lstm = analysis["lstm"]
        assert set(lstm) >= LSTM_KEYS and lstm["status"] == "success" and lstm["used"]
        assert lstm["model_type"] == ("specific" if symbol in ("AAPL", "MSFT") else "universal")
        raw = analysis["technical_score"] + 100 * weight * lstm["signal"]
        assert analysis["score"] == pytest.approx(min(100, max(0, raw)))
        assert lstm["contribution"] == pytest.approx(analysis["score"] - analysis["technical_score"])
        assert analysis["recommendation"] == recommendation(analysis["score"])
        moved += lstm["contribution"] != 0
    assert moved >= len(analyses) - 1
    single = pm.analyze_symbol("AAPL")
    assert single["score"] == analyses["AAPL"]["score"] and single["lstm"] == analyses["AAPL"]["lstm"]


def test_training_is_requested_for_the_relevant_symbols(empty_pm):
    portfolio = empty_pm.select_portfolio(num_symbols=4)
    scanned = empty_pm.scan_market()  # same scan, same order; requests again (kept once)
    queue = {job["symbol"]: job for job in empty_pm.lstm_integration.service.snapshot()["queue"]}
    assert set(queue) == set(scanned)
    for position, symbol in enumerate(portfolio):
        assert queue[symbol]["category"] == "portfolio"
        assert (
            queue[symbol]["priority"] == 20 - 20 + 5 * position
        )  # priority rules: portfolio, no model, position
    for symbol in set(scanned) - set(portfolio):
        position = scanned.index(symbol)
        assert queue[symbol]["category"] == "scanning"
        assert queue[symbol]["priority"] == 60 - 20 + min(30, 5 * position)
    first = next(iter(portfolio))
    empty_pm.update_models()
    assert empty_pm.lstm_integration.get_model_status(first)["status"] == "ready"
    assert empty_pm.lstm_integration.get_lstm_prediction(first)["model_type"] == "specific"
    assert empty_pm.lstm_integration.service.snapshot()["counts"]["trained"] == 1


def test_plans_overrides_and_a_disabled_integration(empty_pm, trained, source):
    integration = empty_pm.lstm_integration
    plan = integration.create_training_schedule(portfolio=["KO"], scanning=["AAPL", "XOM"], watchlist=["PG"])
    assert [(e["symbol"], e["priority"]) for e in plan] == [("KO", 0), ("PG", 20), ("AAPL", 40), ("XOM", 45)]
    assert integration.service.snapshot()["queue"] == []  # a plan queues nothing
    result = integration.request_model_training(["KO", "PG", "NOPE"], {"PG": -50}, category="watchlist")
    assert (
        result["requested"] == 2
        and result["rejected"] == 1
        and "not in bundled data" in result["details"]["NOPE"]["error"]
    )
    assert result["details"]["PG"]["priority"] == -50 - 20 and result["details"]["KO"]["priority"] == 40 - 20
    off = enhanced(trained["registry"], source, lstm={"enabled": False}).lstm_integration
    assert off.request_model_training(["KO"])["details"]["KO"]["status"] == "disabled"
    assert off.get_lstm_prediction("KO")["status"] == "disabled" and off._service is None


def test_frames_given_by_the_caller_feed_both_analyses(pm, source):
    frame = source.load("KO").loc[:"2016-01-29"].reset_index()
    analysis = pm.analyze_symbols(["KO"], {"ko": frame})["KO"]
    assert analysis["as_of"] == "2016-01-29T00:00:00" and analysis["lstm"]["as_of"] == "2016-01-29T00:00:00"


def test_statistics_carry_lstm_insights(pm):
    weights = pm.select_portfolio(num_symbols=5)
    stats = pm.get_portfolio_stats()
    insights = stats["lstm_insights"]
    assert set(insights) >= {"predictions", "portfolio_outlook", "symbols_with_predictions", "timestamp"}
    assert insights["timestamp"] == "2016-03-31T00:00:00" and insights["symbols_with_predictions"] == len(
        weights
    )
    assert insights["coverage"] == pytest.approx(1.0) and insights["unavailable"] == {}
    predictions = insights["predictions"]
    numerator = sum(weights[s] * p["confidence"] * p["price_change_pct"] for s, p in predictions.items())
    denominator = sum(weights[s] * p["confidence"] for s, p in predictions.items())
    assert insights["portfolio_outlook"] == pytest.approx(numerator / denominator)
    assert stats["weights"] == weights


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, *sys.argv[1:]]))
