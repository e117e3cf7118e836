"""Forecast exits and forecast risk inside Backtrader: the thin layer between ``LSTMSignals`` and the pure
rules of :mod:`lstm_plugin.portfolio.forecast_exits` and :mod:`lstm_plugin.portfolio.forecast_risk`.

It reads only what the plain strategy has at the bar: the forecasts :meth:`LSTMSignals.observe` and
:meth:`LSTMSignals.decide` are served (data up to the bar, models trained by it), the served models'
live record as of the bar, and closes up to the bar (docs/exits-and-risk.md).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

from lstm_plugin.core.config import Config
from lstm_plugin.core.data import DataSource
from lstm_plugin.portfolio.forecast_exits import ExitCandidate, ExitRule, ExitWatch
from lstm_plugin.portfolio.forecast_risk import RiskInputs, RiskReport, size_book
from lstm_plugin.serving.results import Prediction
from lstm_plugin.training.service import TrainingService

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class Signals(Protocol):
    """What the controls read of an :class:`~lstm_plugin.backtrader.signals.LSTMSignals`."""

    config: Config
    feeds: dict[str, Any]
    strategy: Any
    source: DataSource
    service: TrainingService

    @property
    def lstm_active(self) -> bool: ...

    def observe(self) -> dict[str, Prediction]: ...

    def tradable(self) -> list[str]: ...


class ForecastControls:
    """The exit watch and the book sizing of one :class:`~lstm_plugin.backtrader.signals.LSTMSignals`."""

    def __init__(self, signals: Signals) -> None:
        self.signals = signals
        self.exits = signals.config.lstm.exits
        self.risk = signals.config.lstm.risk
        self.watch = ExitWatch(ExitRule.from_settings(self.exits))
        self.exposures: list[float] = []  # the gross exposure each rebalance was sized to (risk on)

    # ------------------------------------------------------------------ exits
    def exit_candidates(self) -> list[ExitCandidate]:
        """The holdings to exit at the next open (none with ``lstm.exits`` off or without forecasts)."""
        signals = self.signals
        if not (self.exits.enabled and signals.lstm_active):
            return []
        forecasts = signals.observe()  # one per tradable symbol, failures included
        position = signals.strategy.getposition
        held = [s for s in forecasts if position(signals.feeds[s]).size > 0]
        return self.watch.update(forecasts, held)

    def exit(
        self, candidates: list[ExitCandidate], order_info: Callable[[str], dict[str, Any]] | None = None
    ) -> list[Any]:
        """Send each candidate's sell (to ``keep`` of its shares, rounded down) as a market order for the
        next open; the order carries the exit's reason, forecast and model version. Returns the orders."""
        orders = []
        strategy = self.signals.strategy
        for candidate in candidates:
            data = self.signals.feeds[candidate["symbol"]]
            size = strategy.getposition(data).size
            target = math.floor(size * candidate["keep"])
            if target >= size:
                continue
            info = {
                "reason": "exit",
                "exit_reason": candidate["reason"],
                "forecast": candidate["forecast"],
                "model_version": candidate["model_version"],
                **(order_info(candidate["symbol"]) if order_info else {}),
            }
            order = strategy.order_target_size(data=data, target=target, **info)
            if order is not None:
                orders.append(order)
        return orders

    def rebalanced(self) -> None:
        """A rebalance bar: the exit watch starts a new holding period."""
        self.watch.reset()

    # ------------------------------------------------------------------ risk
    def size(
        self, targets: dict[str, float], when: pd.Timestamp, forecasts: Mapping[str, Prediction]
    ) -> tuple[dict[str, float], RiskReport | None]:
        """``targets`` sized by ``lstm.risk`` as of ``when`` (unchanged, with no report, when every part is
        off)."""
        if not self.risk.active:
            return targets, None
        config = self.signals.config
        sized, report = size_book(
            targets,
            self.risk,
            self._inputs(targets, when, forecasts),
            config.portfolio.max_weight,
            config.lstm.reliability_threshold,
        )
        self.exposures.append(report["exposure"])
        return sized, report

    def _inputs(
        self, targets: Mapping[str, float], when: pd.Timestamp, forecasts: Mapping[str, Prediction]
    ) -> RiskInputs:
        served = {
            s: p
            for s, p in forecasts.items()
            if p["status"] == "success" and p["expected_log_return"] is not None
        }
        mean = float(np.mean([p["expected_log_return"] for p in served.values()])) if served else None
        reliability = {s: served[s]["reliability"] for s in targets if s in served}
        hit_rate = {s: self._hit_rate(s, when) for s in targets} if self.risk.reliability_cap else {}
        returns, symbols = None, tuple(sorted(targets))
        if self.risk.volatility_targeting and symbols:
            bars = self.risk.volatility_bars
            closes = pd.DataFrame(
                {s: self.signals.source.load(s, end=when)["close"].iloc[-(bars + 1) :] for s in symbols}
            )
            returns = closes.pct_change(fill_method=None).iloc[1:].to_numpy(dtype="float64")
        return RiskInputs(mean, reliability, hit_rate, returns, symbols)

    def _hit_rate(self, symbol: str, when: pd.Timestamp) -> float | None:
        """The serving model's live hit rate on the outcomes known at ``when``; its test hit rate until
        ``retraining.degradation_min_outcomes`` are known."""
        forecasts = self.signals.service.forecasts
        record = forecasts.resolve_model(symbol, when)
        live, _ = forecasts.live_health(record, when)
        if live is None:
            return None
        needed = self.signals.config.lstm_service.retraining.degradation_min_outcomes
        return live["hit_rate"] if live["n"] >= needed else live["test_hit_rate"]
