"""``LSTMEnhancedPortfolioManager``: the base manager with LSTM forecasts blended into its scores.

The workflow, on one clock:

1. **scan** — the base scan; the candidates are requested for training at ``scanning`` priority;
2. **analyse** — the technical analysis of every symbol, then one batched forecast for all of them
   (one onnxruntime call per model version), blended into the score by :mod:`lstm_plugin.portfolio.scoring`,
   then the ``lstm_adjust_score`` hook; ``analysis['lstm']`` says what the forecast was and why it
   did or did not count;
3. **select** — the base selection on the combined scores (optionally confidence-sized); the chosen
   symbols are requested for training at ``portfolio`` priority;
4. **report** — :meth:`get_portfolio_stats` adds ``lstm_insights``.

While the LSTM is off (``lstm.enabled`` false or ``lstm.weight`` 0) nothing is predicted or
trained and scores and portfolios are exactly the base manager's. Requests only queue training:
:meth:`update_models` (or the service itself) runs it.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.core.clock import Clock
from lstm_plugin.core.config import Config
from lstm_plugin.core.data import DataSource, validate_symbol
from lstm_plugin.portfolio.allocation import confidence_tilt
from lstm_plugin.portfolio.integration import LSTMIntegration
from lstm_plugin.portfolio.manager import PortfolioManager
from lstm_plugin.portfolio.results import Analysis
from lstm_plugin.portfolio.scoring import forecast_trust
from lstm_plugin.portfolio.technical import recommendation
from lstm_plugin.serving.forecast import empty_prediction
from lstm_plugin.serving.registry import ModelRegistry
from lstm_plugin.training.service import TrainingService

logger = logging.getLogger(__name__)

__all__ = ["LSTMEnhancedPortfolioManager"]


class LSTMEnhancedPortfolioManager(PortfolioManager):
    """:class:`~lstm_plugin.portfolio.manager.PortfolioManager` plus LSTM forecasts (see the module
    docstring).

    ``registry`` defaults to ``registry.path`` of the config; ``service`` shares a running
    :class:`~lstm_plugin.training.service.TrainingService` (and its clock); ``backend`` picks the backend of
    the service made otherwise; ``plugins`` are extra plugin objects for training and scoring.
    Use it as a context manager, or call :meth:`close`, to stop the training workers.
    """

    def __init__(
        self,
        config_path: str | Path | None = None,
        *,
        config: Config | None = None,
        source: DataSource | None = None,
        registry: ModelRegistry | None = None,
        clock: Clock | None = None,
        service: TrainingService | None = None,
        backend: str | None = None,
        plugins: Iterable[Any] = (),
    ) -> None:
        if service is not None:
            config, source, registry, clock = (
                config or service.config,
                source or service.source,
                service.registry,
                service.clock,
            )
        super().__init__(config_path, config=config, source=source, clock=clock)
        self.registry = registry or ModelRegistry(
            self.config.registry.path, self.config.registry.keep_versions
        )
        self.lstm_integration = LSTMIntegration(
            self.config,
            self.source,
            self.registry,
            clock=self.clock,
            service=service,
            backend=backend,
            plugins=plugins,
        )

    @property
    def lstm_active(self) -> bool:
        return self.lstm_integration.active

    # ------------------------------------------------------------------ workflow
    def scan_market(self, as_of: Any = None) -> list[str]:
        """The base scan; the candidates are requested for training at ``scanning`` priority."""
        candidates = super().scan_market(as_of)
        if self.lstm_active and candidates:
            self.lstm_integration.request_model_training(candidates, category="scanning")
        return candidates

    def analyze_symbols(
        self, symbols: Iterable[str], data: Mapping[str, pd.DataFrame] | None = None, as_of: Any = None
    ) -> dict[str, Analysis]:
        """Technical analyses with the LSTM blended in; one batched forecast for all the symbols."""
        when = self.as_of(as_of)
        data = {validate_symbol(s): frame for s, frame in (data or {}).items()} or None
        analyses = super().analyze_symbols(symbols, data, when)
        if not self.lstm_active:
            reason = "lstm.enabled is false" if not self.config.lstm.enabled else "lstm.weight is 0"
            for symbol, analysis in analyses.items():
                analysis["lstm"] = self.lstm_integration.integrate_score(
                    analysis["technical_score"], empty_prediction(symbol, "disabled", reason)
                )
            return analyses
        ready = [symbol for symbol, analysis in analyses.items() if analysis["status"] == "ok"]
        predictions = (
            self.lstm_integration.analyze_symbols_with_lstm(ready, data, as_of=when) if ready else {}
        )
        for symbol, analysis in analyses.items():
            prediction = predictions.get(symbol) or empty_prediction(
                symbol, "skipped", f"no technical analysis: {analysis['message']}"
            )
            self._blend(symbol, analysis, prediction)
        return analyses

    def _blend(self, symbol: str, analysis: Analysis, prediction: Mapping[str, Any]) -> None:
        entry = self.lstm_integration.integrate_score(analysis["technical_score"], prediction)
        score = entry.pop("score")
        analysis["lstm"] = entry
        adjustments: list[dict[str, Any]] = []
        if analysis["status"] == "ok":
            for plugin, amount in self.lstm_integration.service.plugins.call_each(
                "lstm_adjust_score", symbol=symbol, score=score, analysis=analysis
            ):
                if (
                    isinstance(amount, (int, float))
                    and not isinstance(amount, bool)
                    and math.isfinite(amount)
                ):
                    adjustments.append({"plugin": plugin, "amount": float(amount)})
                else:
                    logger.warning("plugin %r returned %r from lstm_adjust_score; ignored", plugin, amount)
            if adjustments:
                score = min(100.0, max(0.0, score + sum(a["amount"] for a in adjustments)))
            analysis["score"] = score
            analysis["recommendation"] = recommendation(score)
        analysis["score_adjustments"] = adjustments

    def select_portfolio(self, num_symbols: int | None = None, as_of: Any = None) -> dict[str, float]:
        """The base selection on combined scores; the chosen symbols are requested for training at
        ``portfolio`` priority."""
        portfolio = super().select_portfolio(num_symbols, as_of)
        if self.lstm_active and portfolio:
            self.lstm_integration.request_model_training(list(portfolio), category="portfolio")
        return portfolio

    def _size_positions(
        self, weights: dict[str, float], analyses: Mapping[str, Analysis]
    ) -> dict[str, float]:
        """Confidence-aware sizing (``portfolio.confidence_sizing``), see
        :func:`lstm_plugin.portfolio.allocation.confidence_tilt`."""
        settings = self.config.portfolio
        if not (settings.confidence_sizing and self.lstm_integration.weight > 0 and weights):
            return weights  # an adaptive weight of 0 leaves the LSTM no say in the sizes either
        signals = {s: analyses[s]["lstm"]["signal"] for s in weights}
        return confidence_tilt(weights, signals, settings.full_size_edge, settings.max_weight)

    # ------------------------------------------------------------------ statistics
    def get_portfolio_stats(self, as_of: Any = None) -> dict[str, Any]:
        """The base statistics plus ``lstm_insights`` while the LSTM is on and a portfolio is held:

        - ``predictions``: ``{symbol: {direction, confidence, price_change_pct, model_type,
          model_version, reliability, trust}}`` for the positions with a successful forecast;
        - ``portfolio_outlook``: Σ wᵢ·cᵢ·Δᵢ / Σ wᵢ·cᵢ over them (w allocation, c confidence,
          Δ predicted change in %), 0 when none has a forecast;
        - ``symbols_with_predictions``, ``coverage`` (share of the invested weight with a
          forecast), ``unavailable`` (``{symbol: reason}``) and ``timestamp`` (the clock's time).
        """
        stats = super().get_portfolio_stats(as_of)
        if not self.lstm_active or not self.current_portfolio:
            return stats
        when = self.as_of(as_of)
        weights = self.current_portfolio
        forecasts = self.lstm_integration.analyze_symbols_with_lstm(list(weights), as_of=when)
        predictions, unavailable = {}, {}
        for symbol, forecast in forecasts.items():
            if forecast["status"] != "success":
                unavailable[symbol] = f"{forecast['status']}: {forecast['message']}"
                continue
            trust, _ = forecast_trust(forecast["reliability"], forecast["quality"], self.config.lstm)
            predictions[symbol] = {
                "direction": forecast["predicted_direction"],
                "confidence": forecast["confidence"],
                "price_change_pct": forecast["price_change_pct"],
                "model_type": forecast["model_type"],
                "model_version": forecast["model_version"],
                "reliability": forecast["reliability"],
                "trust": trust,
            }
        stats["lstm_insights"] = {
            "predictions": predictions,
            "portfolio_outlook": portfolio_outlook(weights, predictions),
            "symbols_with_predictions": len(predictions),
            "coverage": sum(weights[s] for s in predictions) / sum(weights.values()),
            "unavailable": unavailable,
            "timestamp": when.isoformat(),
        }
        return stats

    # ------------------------------------------------------------------ training
    def update_models(self, wait: bool = True, timeout: float | None = None) -> dict[str, Any] | None:
        """One training pass of the service (up to ``lstm.max_training_models`` trainings, best
        priority first); with ``wait`` it returns once they have finished."""
        return self.lstm_integration.update(wait, timeout) if self.lstm_active else None

    def close(self, timeout: float | None = None) -> None:
        self.lstm_integration.close(timeout)

    def __enter__(self) -> LSTMEnhancedPortfolioManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(0 if exc[0] is not None else None)


def portfolio_outlook(weights: Mapping[str, float], predictions: Mapping[str, Mapping[str, Any]]) -> float:
    """Σ wᵢ·cᵢ·Δᵢ / Σ wᵢ·cᵢ (the allocation × confidence weighted mean, docs/portfolio.md), 0 when the weights
    sum to 0."""
    total = sum(weights.get(s, 0.0) * p["confidence"] for s, p in predictions.items())
    if total <= 0:
        return 0.0
    return (
        sum(weights.get(s, 0.0) * p["confidence"] * p["price_change_pct"] for s, p in predictions.items())
        / total
    )
