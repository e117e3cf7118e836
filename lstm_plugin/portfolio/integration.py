"""``LSTMIntegration``: the bridge between a portfolio manager and the LSTM system (docs/portfolio.md).

It requests prioritised training from the :class:`~lstm_plugin.training.service.TrainingService`, serves
cached forecasts from the service's :class:`~lstm_plugin.serving.forecast.ForecastService` (one
onnxruntime call per model version for a batch), blends forecasts into scores
(:mod:`lstm_plugin.portfolio.scoring`) and plans training. The service, and with it any worker pool or Ray
cluster, is only created when first needed, so a disabled integration costs nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

from lstm_plugin.core.clock import Clock, default_clock
from lstm_plugin.core.config import Config
from lstm_plugin.core.data import DataSource, validate_symbol
from lstm_plugin.core.errors import LSTMPluginError
from lstm_plugin.portfolio.scoring import integrate_score, lstm_entry
from lstm_plugin.serving.forecast import ForecastService, empty_prediction
from lstm_plugin.serving.registry import ModelRegistry
from lstm_plugin.serving.results import ModelStatusReport, Prediction
from lstm_plugin.training.planning import PlanEntry
from lstm_plugin.training.queue import RequestDetail
from lstm_plugin.training.service import RequestResult, TrainingService

logger = logging.getLogger(__name__)

__all__ = ["LSTMIntegration"]


class LSTMIntegration:
    """Training requests, forecasts and score integration for one config, registry and clock.

    ``enabled`` mirrors ``lstm.enabled``: when false nothing is trained or predicted and every
    forecast has ``status: 'disabled'``. ``service`` may be given to share a running service
    (and its clock); otherwise one is made from ``backend`` (default ``lstm_service.backend``).
    """

    def __init__(
        self,
        config: Config,
        source: DataSource,
        registry: ModelRegistry,
        *,
        clock: Clock | None = None,
        service: TrainingService | None = None,
        backend: str | None = None,
        plugins: Iterable[Any] = (),
    ) -> None:
        self.config = config
        self.source = source
        self.registry = registry
        self.clock = service.clock if service is not None else (clock or default_clock(source))
        self._service = service
        self._backend = backend
        self._plugins = tuple(plugins)
        #: the weight forecasts blend at, when set (an earned, adaptive weight); ``None``: ``lstm.weight``
        self.blend_weight: float | None = None

    @property
    def enabled(self) -> bool:
        return self.config.lstm.enabled

    @property
    def active(self) -> bool:
        """Forecasts can move scores: ``lstm.enabled`` and ``lstm.weight > 0``."""
        return self.config.lstm.enabled and self.config.lstm.weight > 0

    @property
    def weight(self) -> float:
        """The weight forecasts blend at now: :attr:`blend_weight` if set, else ``lstm.weight``; 0 when
        not :attr:`active`."""
        if not self.active:
            return 0.0
        return self.config.lstm.weight if self.blend_weight is None else self.blend_weight

    @property
    def service(self) -> TrainingService:
        """The training service, created on first use."""
        if self._service is None:
            self._service = TrainingService(
                self.config,
                self.source,
                self.registry,
                clock=self.clock,
                backend=self._backend,
                plugins=self._plugins,
            )
        return self._service

    @property
    def forecasts(self) -> ForecastService:
        return self.service.forecasts

    # ------------------------------------------------------------------ training
    def request_model_training(
        self,
        symbols: Sequence[str],
        priority_override: Mapping[str, float] | None = None,
        *,
        category: str = "on_demand",
        force: bool = False,
        if_due: bool = True,
    ) -> RequestResult:
        """Queue trainings (the original API): ``{'requested', 'already_training', 'rejected', 'up_to_date',
        'details'}``.

        The model's status is checked first: with ``if_due`` (the default) a symbol
        whose newest training is younger than ``lstm.force_retrain_days`` is ``up_to_date`` and not
        queued. Priorities follow the rules of docs/training-service.md for ``category`` (``portfolio``,
        ``on_demand``,
        ``watchlist``, ``scanning``) and the position in ``symbols``; ``priority_override[symbol]``
        replaces base + position. Nothing is queued when the integration is disabled.
        """
        if not self.enabled:
            details: dict[str, RequestDetail] = {
                str(s): {"status": "disabled", "reason": "lstm.enabled is false"} for s in symbols
            }
            return {"requested": 0, "already_training": 0, "rejected": 0, "up_to_date": 0, "details": details}
        return self.service.request_model_training(
            symbols, priority_override, category=category, force=force, if_due=if_due
        )

    def create_training_schedule(
        self,
        portfolio: Sequence[str] = (),
        watchlist: Sequence[str] = (),
        scanning: Sequence[str] = (),
        on_demand: Sequence[str] = (),
        priority_override: Mapping[str, float] | None = None,
    ) -> list[PlanEntry]:
        """The ordered training plan with each priority's reasons; queues nothing."""
        return self.service.create_training_schedule(
            portfolio, watchlist, scanning, on_demand, priority_override
        )

    def update(self, wait: bool = False, timeout: float | None = None) -> dict[str, Any] | None:
        """One training pass (up to ``lstm.max_training_models`` trainings), then optionally wait for them."""
        if not self.enabled:
            return None
        result = self.service.update()
        if wait:
            self.service.wait(timeout)
        return result

    def get_model_status(self, symbol: str) -> ModelStatusReport:
        return self.forecasts.get_model_status(symbol)

    # ------------------------------------------------------------------ forecasts
    def get_lstm_prediction(
        self, symbol: str, data: pd.DataFrame | None = None, force_refresh: bool = False, as_of: Any = None
    ) -> Prediction:
        """One forecast dict (keys in the README, *Python*), cached for ``lstm.prediction_cache_ttl`` clock
        seconds."""
        frames = None if data is None else {symbol: data}
        return next(iter(self.analyze_symbols_with_lstm([symbol], frames, force_refresh, as_of).values()))

    def analyze_symbols_with_lstm(
        self,
        symbols: Iterable[str],
        data: Mapping[str, pd.DataFrame] | None = None,
        force_refresh: bool = False,
        as_of: Any = None,
    ) -> dict[str, Prediction]:
        """``{symbol: forecast}`` with one onnxruntime call per model version in use."""
        symbols = list(symbols)
        if not self.enabled:
            return {
                validate_or_raw(s): empty_prediction(validate_or_raw(s), "disabled", "lstm.enabled is false")
                for s in symbols
            }
        return self.forecasts.predict_many(symbols, data, force_refresh, as_of)

    # ------------------------------------------------------------------ scores
    def integrate_score(self, technical_score: float, prediction: Mapping[str, Any]) -> dict[str, Any]:
        """The ``analysis['lstm']`` entry for a forecast, with ``score`` (the combined score) and
        ``contribution`` (combined − technical); see :mod:`lstm_plugin.portfolio.scoring` for the formula."""
        entry = lstm_entry(prediction, self.config.lstm)
        score = integrate_score(technical_score, entry["signal"], self.weight)
        entry["contribution"] = score - technical_score
        entry["score"] = score
        return entry

    def close(self, timeout: float | None = None) -> None:
        """Shut the training service down (if one was started)."""
        if self._service is not None:
            self._service.shutdown(timeout)


def validate_or_raw(symbol: str) -> str:
    """The canonical symbol, or the text given when it is not a valid one (forecasts report it)."""
    try:
        return validate_symbol(symbol)
    except LSTMPluginError:
        return str(symbol)
