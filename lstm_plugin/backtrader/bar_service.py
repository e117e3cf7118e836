"""The training service a walk-forward and a paper run both run on, built in one place.

:class:`~lstm_plugin.backtrader.signals.LSTMSignals` and
:class:`~lstm_plugin.backtrader.live.session.PaperSession` each own one: the feeds are the universe,
the clock is a :class:`~lstm_plugin.core.clock.ManualClock` moved to each bar, and forecasts go
through a :class:`~lstm_plugin.serving.tape.ForecastTape`, so a replay decides as the backtest did.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import partial
from typing import Any

from lstm_plugin.core.clock import ManualClock
from lstm_plugin.core.config import Config
from lstm_plugin.core.data import DataSource
from lstm_plugin.serving.registry import ModelRegistry
from lstm_plugin.serving.tape import ForecastTape
from lstm_plugin.training.backends import Backend
from lstm_plugin.training.service import TrainingService

__all__ = ["bar_clock_service", "signals_config"]


def signals_config(base: Config, symbols: list[str], use_lstm: bool = True) -> Config:
    """The config the helper and its training service run on: the feeds as the universe, no
    monitoring snapshot (the service runs on the bar clock: a snapshot would describe a past moment,
    and writing it after every pass costs a file write per rebalance), ``lstm.weight = 0`` without the
    LSTM."""
    updates: dict[str, Any] = {
        "data": base.data.model_copy(update={"symbols": list(symbols)}),
        "lstm_service": base.lstm_service.model_copy(update={"enable_monitoring": False}),
    }
    if not use_lstm:
        updates["lstm"] = base.lstm.model_copy(update={"weight": 0.0})
    return base.model_copy(update=updates)


def bar_clock_service(
    config: Config,
    source: DataSource,
    registry: ModelRegistry,
    universe: Sequence[str],
    *,
    backend: str | Backend | None,
    plugins: Iterable[Any] = (),
    progress: bool = False,
    growing: bool = False,
) -> TrainingService:
    """A :class:`~lstm_plugin.training.service.TrainingService` on the bar clock over ``universe`` (in the
    order of the feeds), its config from :func:`signals_config`; ``growing``: the source gains bars as the
    run goes (a paper run's store), so the forecast tape re-reads them."""
    return TrainingService(
        signals_config(config, list(universe)),
        source,
        registry,
        clock=ManualClock("1970-01-01"),
        backend=backend,
        plugins=plugins,
        universe=universe,
        progress=progress,
        forecaster=partial(ForecastTape, growing=growing),
    )
