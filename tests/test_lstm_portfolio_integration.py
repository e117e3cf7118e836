"""The original design's integration test module: the LSTM-enhanced portfolio manager end to end.

Covers five verification points — initialisation, predictions obtained, predictions
integrated into the analysis, training requested for the relevant symbols, statistics with LSTM
insights — and the acceptance rules of the score blend. Also runs on its own::

    python -m tests.test_lstm_portfolio_integration        # extra arguments go to pytest
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_plugin import (
    ConfigError,
    FrameSource,
    LSTMEnhancedPortfolioManager,
    ManualClock,
    ModelRegistry,
    PortfolioManager,
)
from lstm_plugin.portfolio.allocation import confidence_tilt
from lstm_plugin.portfolio.scoring import forecast_edge
from lstm_plugin.portfolio.technical import recommendation

from .conftest import tiny_config
from .sample_plugins import BadScoreAdjuster, FavourSymbol

T = "2016-03-31"
REPO = Path(__file__).resolve().parents[1]
LSTM_KEYS = {
    "direction",
    "confidence",
    "contribution",
    "model_type",
    "reliability",
    "used",
    "reason",
    "signal",
    "trust",
}
QUIET = {"enable_monitoring": False}  # the shared registry stays untouched


def enhanced(registry, source, when=T, plugins=(), **sections) -> LSTMEnhancedPortfolioManager:
    sections.setdefault("lstm_service", {}).update(QUIET)
    return LSTMEnhancedPortfolioManager(
        config=tiny_config(**sections),
        source=source,
        registry=registry,
        clock=ManualClock(when),
        backend="sync",
        plugins=plugins,
    )


@pytest.fixture
def pm(trained, source):
    manager = enhanced(trained["registry"], source)
    yield manager
    manager.close()


@pytest.fixture
def empty_pm(tmp_path, source):
    manager = enhanced(
        ModelRegistry(tmp_path / "empty"),
        source,
        lstm={"max_training_models": 1},  # one training per pass: a test sees which comes first
        lstm_service={"universal": {"enabled": False}},
    )
    yield manager
    manager.close()


def runs(manager: LSTMEnhancedPortfolioManager) -> int:
    return manager.lstm_integration.forecasts.runner.run_count


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


# ---------------------------------------------------------------------- acceptance
SEED_ANALYSIS = """
# Inicializar el gestor de portafolio mejorado con LSTM
portfolio_manager = LSTMEnhancedPortfolioManager(config_path='config/lstm_config.json')

# Analizar un símbolo
analysis = portfolio_manager.analyze_symbol('AAPL')

# Verificar contribución LSTM
if 'lstm' in analysis:
    lstm_info = analysis['lstm']
    print(f"Dirección LSTM: {lstm_info['direction']}")
    print(f"Confianza: {lstm_info['confidence']:.2f}")
    print(f"Contribución a puntuación: {lstm_info['contribution']:.2f}")

# Verificar puntuación y recomendación finales
print(f"Puntuación final: {analysis['score']}")
print(f"Recomendación: {analysis['recommendation']}")
"""

SEED_STATS = """
# Obtener estadísticas de portafolio
stats = portfolio_manager.get_portfolio_stats()

# Verificar insights LSTM
if 'lstm_insights' in stats:
    insights = stats['lstm_insights']

    # Mostrar perspectiva general del portafolio
    print(f"Perspectiva LSTM del portafolio: {insights['portfolio_outlook']:.2f}%")

    # Mostrar predicciones individuales
    for symbol, pred in insights['predictions'].items():
        allocation = portfolio_manager.current_portfolio.get(symbol, 0) * 100
        print(f"{symbol} ({allocation:.1f}%): {pred['direction']}, "
              f"{pred['confidence']:.2f} confianza, {pred['price_change_pct']:.2f}% cambio")
"""


@pytest.mark.slow
def test_the_seed_examples_run_as_written(tmp_path, trained, monkeypatch, capsys):
    (tmp_path / "config").mkdir()
    shutil.copy(REPO / "config" / "lstm_config.json", tmp_path / "config" / "lstm_config.json")
    shutil.copytree(trained["root"], tmp_path / "lstm_models")  # the config's registry.path, relative to here
    monkeypatch.chdir(tmp_path)
    scope = {"LSTMEnhancedPortfolioManager": LSTMEnhancedPortfolioManager}
    exec(SEED_ANALYSIS, scope)
    manager = scope["portfolio_manager"]
    try:
        printed = capsys.readouterr().out.splitlines()
        lstm = scope["analysis"]["lstm"]
        assert lstm["status"] == "success" and lstm["model_type"] == "specific"
        assert printed[0] == f"Dirección LSTM: {lstm['direction']}" and lstm["direction"] in (
            "up",
            "down",
            "neutral",
        )
        assert printed[1].startswith("Confianza: 0.") and printed[2].startswith("Contribución a puntuación: ")
        assert printed[3].startswith("Puntuación final: ") and 0 <= scope["analysis"]["score"] <= 100
        assert printed[4] in {
            f"Recomendación: {r}" for r in ("strong_buy", "buy", "hold", "sell", "strong_sell")
        }

        weights = manager.select_portfolio()  # no as_of: the bundled sample's clock stands on its last bar
        assert weights and manager.portfolio_as_of == pd.Timestamp("2021-04-21")
        exec(SEED_STATS, scope)
        printed = capsys.readouterr().out.splitlines()
        assert printed[0].startswith("Perspectiva LSTM del portafolio: ") and printed[0].endswith("%")
        assert len(printed) == 1 + len(weights)
        assert all(" confianza, " in line and line.endswith("% cambio") for line in printed[1:])
    finally:
        manager.close()


def test_weight_zero_or_disabled_is_exactly_the_base_manager(trained, source):
    base = PortfolioManager(config=tiny_config(), source=source, clock=ManualClock(T))
    base_scores = {s: a["score"] for s, a in base.analyze_symbols(base.universe).items()}
    base_portfolio = base.select_portfolio()
    for lstm in ({"weight": 0.0}, {"enabled": False}):
        manager = enhanced(trained["registry"], source, lstm=lstm)
        scores = {s: a["score"] for s, a in manager.analyze_symbols(manager.universe).items()}
        assert scores == base_scores
        assert manager.select_portfolio() == base_portfolio and manager.current_portfolio == base_portfolio
        assert all(
            a["lstm"]["contribution"] == 0 and not a["lstm"]["used"] for a in manager.last_analyses.values()
        )
        assert "lstm_insights" not in manager.get_portfolio_stats()
        assert manager.lstm_integration._service is None  # nothing predicted, nothing trained
        manager.close()


def test_influence_never_falls_as_weight_rises(trained, source):
    moves = []
    for weight in (0.0, 0.05, 0.1, 0.3, 0.6, 1.0):
        manager = enhanced(trained["registry"], source, lstm={"weight": weight})
        analyses = manager.analyze_symbols(manager.universe)
        moves.append({s: abs(a["score"] - a["technical_score"]) for s, a in analyses.items()})
        manager.close()
    for symbol in moves[0]:
        series = [m[symbol] for m in moves]
        assert series == sorted(series), symbol
    assert sum(moves[-1].values()) > sum(moves[1].values()) > 0


def test_forecasts_below_the_thresholds(trained, source):
    ignored = enhanced(
        trained["registry"], source, lstm={"reliability_threshold": 0.99, "below_threshold": "ignore"}
    )
    for analysis in ignored.analyze_symbols(ignored.universe).values():
        assert analysis["score"] == analysis["technical_score"] and analysis["lstm"]["contribution"] == 0
        assert not analysis["lstm"]["used"] and "< reliability_threshold 0.99" in analysis["lstm"]["reason"]
    scaled = enhanced(
        trained["registry"], source, lstm={"reliability_threshold": 0.99, "model_quality_threshold": 0.99}
    )
    forecasts = scaled.lstm_integration.analyze_symbols_with_lstm(scaled.universe)
    for symbol, analysis in scaled.analyze_symbols(scaled.universe).items():
        p = forecasts[symbol]
        trust = min(1, p["reliability"] / 0.99) * min(1, p["quality"] / 0.99)
        expected = np.clip(analysis["technical_score"] + 100 * 0.3 * trust * forecast_edge(p), 0, 100)
        assert analysis["score"] == pytest.approx(expected) and analysis["lstm"]["trust"] == pytest.approx(
            trust
        )


def test_an_empty_registry_degrades_gracefully(empty_pm):
    analyses = empty_pm.analyze_symbols(["AAPL", "KO"])
    for analysis in analyses.values():
        assert analysis["status"] == "ok" and analysis["score"] == analysis["technical_score"]
        assert analysis["lstm"]["status"] == "not_available" and analysis["lstm"]["reason"].startswith(
            "not_available: no model for"
        )
    base = PortfolioManager(config=empty_pm.config, source=empty_pm.source, clock=empty_pm.clock)
    assert empty_pm.select_portfolio() == base.select_portfolio()
    insights = empty_pm.get_portfolio_stats()["lstm_insights"]
    assert (
        insights["predictions"] == {} and insights["portfolio_outlook"] == 0.0 and insights["coverage"] == 0.0
    )
    assert set(insights["unavailable"]) == set(empty_pm.current_portfolio)


def test_one_inference_call_per_model_in_use(pm):
    before = runs(pm)
    analyses = pm.analyze_symbols(pm.universe)
    models = {s if a["lstm"]["model_type"] == "specific" else "universal" for s, a in analyses.items()}
    assert len(models) == 3  # AAPL's, MSFT's and the universal one serving 22 symbols
    assert runs(pm) - before == 3
    pm.analyze_symbols(pm.universe)
    assert runs(pm) - before == 3  # served from the cache
    pm.lstm_integration.forecasts.clear_cache()
    pm.select_portfolio()
    assert runs(pm) - before == 6  # one batch for every candidate
    pm.get_portfolio_stats()
    assert runs(pm) - before == 6


def test_confidence_sizing_is_off_by_default_and_tilts_when_on(trained, source):
    plain = enhanced(trained["registry"], source, portfolio={"max_weight": 0.5})
    sized = enhanced(trained["registry"], source, portfolio={"max_weight": 0.5, "confidence_sizing": True})
    assert not plain.config.portfolio.confidence_sizing
    before, after = plain.select_portfolio(), sized.select_portfolio()
    signals = {s: plain.last_analyses[s]["lstm"]["signal"] for s in before}
    assert after == pytest.approx(confidence_tilt(before, signals, 0.2, 0.5))
    assert sum(after.values()) == pytest.approx(sum(before.values()))
    assert after != pytest.approx(before)
    up = max(before, key=signals.get)
    assert after[up] / before[up] >= max(after.get(s, 0) / before[s] for s in before) - 1e-12


def test_plugins_adjust_the_combined_score(trained, source, caplog):
    favour = FavourSymbol("XOM", 12.5)
    manager = enhanced(trained["registry"], source, plugins=[favour, BadScoreAdjuster()])
    analyses = manager.analyze_symbols(["XOM", "KO", "AAPL"])
    xom = analyses["XOM"]
    combined = xom["technical_score"] + xom["lstm"]["contribution"]
    assert xom["score"] == pytest.approx(min(100, combined + 12.5))
    assert [a["amount"] for a in xom["score_adjustments"]] == [12.5]
    assert analyses["AAPL"]["score_adjustments"] == [] and analyses["AAPL"]["score"] == pytest.approx(
        analyses["AAPL"]["technical_score"] + analyses["AAPL"]["lstm"]["contribution"]
    )
    assert "returned 'ten' from lstm_adjust_score; ignored" in caplog.text
    assert "failed in lstm_adjust_score and was skipped" in caplog.text
    off = enhanced(trained["registry"], source, plugins=[FavourSymbol("XOM", 12.5)], lstm={"weight": 0.0})
    assert (
        off.analyze_symbol("XOM")["score"] == xom["technical_score"]
    )  # the technical-only manager stays the base one


def test_future_prices_change_no_analysis_before_them(trained, source):
    frames = {s: source.load(s) for s in ("AAPL", "MSFT", "KO", "XOM", "JNJ", "PG")}
    noisy = {}
    rng = np.random.default_rng(3)
    for symbol, frame in frames.items():
        frame = frame.copy()
        after = frame.index > pd.Timestamp(T)
        factor = rng.uniform(0.7, 1.3, after.sum())
        for column in ("open", "high", "low", "close"):
            frame.loc[after, column] = frame.loc[after, column] * factor
        noisy[symbol] = frame
    honest = enhanced(trained["registry"], FrameSource(frames)).select_portfolio(num_symbols=3)
    perturbed_pm = enhanced(trained["registry"], FrameSource(noisy))
    assert perturbed_pm.select_portfolio(num_symbols=3) == honest
    assert {s: a["lstm"]["signal"] for s, a in perturbed_pm.last_analyses.items()} == {
        s: a["lstm"]["signal"]
        for s, a in enhanced(trained["registry"], FrameSource(frames)).analyze_symbols(list(frames)).items()
    }


@pytest.mark.slow
def test_the_module_runs_on_its_own():
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.test_lstm_portfolio_integration",
            "-q",
            "-p",
            "no:cacheprovider",
            "-k",
            "initialisation",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, *sys.argv[1:]]))
