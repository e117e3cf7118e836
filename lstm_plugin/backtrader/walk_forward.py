"""What a backtest and a pretraining share: the run's inputs, its strategies and a Cerebro on its feeds.

``lstm-plugin pretrain`` is the backtest's ``lstm`` walk-forward without the rest, so both build
their runs here, and a change to one is a change to the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import backtrader as bt
import pandas as pd

from lstm_plugin.core.config import Config
from lstm_plugin.core.data import DataSource, validate_symbol
from lstm_plugin.core.errors import DataError

__all__ = ["RunInputs", "StrategyRun", "new_cerebro", "run_inputs", "run_strategy", "strategy_runs"]

#: ``(name, strategy class, parameters)`` of one strategy of a backtest
StrategyRun = tuple[str, type, dict[str, Any]]


@dataclass(frozen=True)
class RunInputs:
    """A backtest's inputs, checked: the config with the run's symbols as its universe, the symbols,
    their full bars, the trading calendar and the traded span."""

    config: Config
    symbols: list[str]
    frames: dict[str, pd.DataFrame]
    calendar: pd.DatetimeIndex
    begin: pd.Timestamp
    finish: pd.Timestamp

    def cerebro(self) -> bt.Cerebro:
        """A Cerebro on the traded span of every symbol, with the config's cash."""
        return new_cerebro(self.frames, self.begin, self.finish, self.config.backtest.cash)


def run_inputs(
    config: Config,
    source: DataSource,
    symbols: list[str] | None,
    start: str | pd.Timestamp,
    end: str | pd.Timestamp,
) -> RunInputs:
    """The run's :class:`RunInputs` (the config gets the run's symbols as its universe); or the one-line
    error that stops it before anything runs (:class:`ValueError` for bad dates or symbols,
    :class:`~lstm_plugin.core.errors.DataError` for data)."""
    begin, finish = pd.Timestamp(start), pd.Timestamp(end)
    if finish <= begin:
        raise ValueError(f"--end › must be after --start (got: {finish:%Y-%m-%d} <= {begin:%Y-%m-%d})")
    chosen = [validate_symbol(s) for s in (symbols or config.data.symbols or source.symbols())]
    if len(set(chosen)) < len(chosen):
        twice = ", ".join(sorted({s for s in chosen if chosen.count(s) > 1}))
        raise ValueError(f"--symbols › listed twice: {twice}")
    frames = {symbol: source.load(symbol) for symbol in chosen}
    trading = {s: f.loc[begin:finish] for s, f in frames.items()}
    empty = [s for s, f in trading.items() if f.empty]
    if empty:
        raise DataError(
            f"{source.name} › no bars between {begin:%Y-%m-%d} and {finish:%Y-%m-%d} for {', '.join(empty)}"
        )
    calendar = pd.DatetimeIndex(sorted(set().union(*(f.index for f in trading.values()))))
    config = config.model_copy(update={"data": config.data.model_copy(update={"symbols": chosen})})
    return RunInputs(config, chosen, frames, calendar, begin, finish)


def new_cerebro(
    frames: dict[str, pd.DataFrame], start: pd.Timestamp, end: pd.Timestamp, cash: float
) -> bt.Cerebro:
    cerebro = bt.Cerebro(stdstats=False)
    for symbol, frame in frames.items():
        # the feed gets only the traded span: the history before it reaches scores and models through
        # the data source, and a feed that skips years of rows one by one costs most of a warm run
        traded = frame.loc[start:end]
        cerebro.adddata(
            bt.feeds.PandasData(dataname=traded, fromdate=start.to_pydatetime(), todate=end.to_pydatetime()),
            name=symbol,
        )
    cerebro.broker.setcash(cash)
    return cerebro


def strategy_runs(
    config: Config,
    source: DataSource,
    registry_path: str | Path,
    begin: pd.Timestamp,
    lstm: bool,
    progress: bool = False,
) -> list[StrategyRun]:
    """``(name, strategy class, parameters)`` of each strategy to run, in order (``progress``: the LSTM run
    shows its bar over the rebalances)."""
    from lstm_plugin.backtrader import EqualWeightBuyHold, LSTMRebalanceStrategy

    shared = {
        "config": config,
        "registry": str(registry_path),
        "start": begin.date().isoformat(),
        "source": source,
        "progress": False,
    }
    runs: list[StrategyRun] = []
    if lstm:
        runs.append(("lstm", LSTMRebalanceStrategy, dict(shared, progress=progress)))
    runs.append(("technical", LSTMRebalanceStrategy, dict(shared, use_lstm=False)))
    runs.append(("buy_hold", EqualWeightBuyHold, {"config": config, "start": begin.date().isoformat()}))
    return runs


def run_strategy(
    cerebro: bt.Cerebro,
    strategy: type,
    params: dict[str, Any],
    begin: pd.Timestamp,
    config: Config,
    measure: bool = False,
) -> Any:
    """One strategy with the recorder (and, with ``measure``, the forecast analyzer of the LSTM run)."""
    from lstm_plugin.backtrader import LSTMForecastAnalyzer, PortfolioRecorder

    if measure:
        settings = config.backtest
        cerebro.addanalyzer(
            LSTMForecastAnalyzer,
            _name="forecast",
            daily=settings.daily_evaluation,
            baselines=tuple(settings.baselines),
        )
    cerebro.addstrategy(strategy, **params)
    cerebro.addanalyzer(PortfolioRecorder, _name="portfolio", start=begin.date().isoformat())
    return cerebro.run()[0]
