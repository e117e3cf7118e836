"""LSTMEnhancedPortfolioManager acceptance: the original examples, weight and thresholds, plugins, honesty."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lstm_plugin import (
    FrameSource,
    LSTMEnhancedPortfolioManager,
    ManualClock,
    PortfolioManager,
)
from lstm_plugin.portfolio.allocation import confidence_tilt
from lstm_plugin.portfolio.scoring import forecast_edge

from .conftest import tiny_config
from .portfolio_managers import LSTM_KEYS, QUIET, REPO, T, empty_pm, enhanced, pm, runs  # noqa: F401 - fixtures among them
from .sample_plugins import BadScoreAdjuster, FavourSymbol

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
def test_the_original_examples_run_as_written(tmp_path, trained, monkeypatch, capsys):
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
