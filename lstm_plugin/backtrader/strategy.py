"""``LSTMRebalanceStrategy``: rebalance on a schedule through the LSTM-enhanced selection."""

from __future__ import annotations

from typing import Any

import backtrader as bt
import pandas as pd

from lstm_plugin.backtrader.feeds import preloaded_calendar
from lstm_plugin.backtrader.progress import WalkForwardProgress
from lstm_plugin.backtrader.signals import LSTMSignals
from lstm_plugin.core.config import BacktestSection, Config, load_config
from lstm_plugin.portfolio.rebalancing import check_rule, rebalance_dates, rebalance_due

__all__ = ["EqualWeightBuyHold", "LSTMRebalanceStrategy"]


def set_costs(broker: Any, costs: BacktestSection) -> None:
    """Commission (share of traded value) and slippage (share of price, against the trade, at the open
    too)."""
    broker.setcommission(commission=costs.commission)
    broker.set_slippage_perc(costs.slippage, slip_open=True, slip_limit=True, slip_match=True, slip_out=False)


class LSTMRebalanceStrategy(bt.Strategy):
    """Walk-forward LSTM portfolio: at each rebalance bar, train (one pass), select, trade.

    Models and scores read each feed's whole file or frame, rows before its ``fromdate`` included: they
    are the past of the first bar (the first rebalance trains on them); nothing after a bar is read at
    it (docs/backtrader.md). Orders are market orders sent at the rebalance bar's close and filled at
    the next bar's open (never cheat-on-close); reductions are sent before increases. A symbol whose
    feed starts late joins once it has ``portfolio.min_history_bars`` bars; one whose feed stops is no
    longer scanned and is not traded. ``self.lstm`` is the
    :class:`~lstm_plugin.backtrader.signals.LSTMSignals` behind it; add
    :class:`~lstm_plugin.backtrader.analyzer.LSTMForecastAnalyzer` to measure it.
    """

    params = (
        ("config", None),  # Config, path to lstm_config.json, or None for the defaults
        ("registry", None),  # ModelRegistry or folder; None: the config's registry.path
        ("source", None),  # DataSource with the feeds' history; None: read the feeds' CSV files / DataFrames
        ("use_lstm", True),  # False: the same selection with lstm.weight = 0 (technical only)
        ("train", True),  # train models inside the run (walk-forward); False: use registered ones only
        ("rebalance", None),  # 'monthly', 'weekly' or every N bars; None: the config's backtest.rebalance
        ("num_symbols", None),  # positions; None: the config's portfolio.num_symbols
        ("start", None),  # first date to trade (YYYY-MM-DD); earlier bars are history only
        ("apply_costs", True),  # set the broker's commission and slippage from the config's backtest section
        ("plugins", ()),  # extra plugin objects (hooks)
        ("progress", True),  # a bar over the rebalances on stderr while a backtest runs (docs/backtrader.md)
        (
            "backend",
            None,
        ),  # where a rebalance's trainings run: sync, local, ray; None: the config's (docs/cli.md)
    )

    def __init__(self) -> None:
        self.lstm = LSTMSignals(
            self,
            config=self.p.config,
            registry=self.p.registry,
            source=self.p.source,
            use_lstm=self.p.use_lstm,
            train=self.p.train,
            num_symbols=self.p.num_symbols,
            plugins=self.p.plugins,
            backend=self.p.backend,
            **self._signals_options(),
        )
        self.rule = check_rule(
            self.p.rebalance or self.lstm.config.backtest.rebalance
        )  # a bad rule fails here, not mid-run
        self.first_day = None if self.p.start is None else pd.Timestamp(self.p.start).date()
        self.last_rebalance = None
        self.bars_since = 0
        self.decisions = 0
        self.progress: WalkForwardProgress | None = None

    def _signals_options(self) -> dict[str, Any]:
        """Extra :class:`~lstm_plugin.backtrader.signals.LSTMSignals` arguments for subclasses (a paper run's
        background training)."""
        return {}

    def start(self) -> None:
        if self.p.apply_costs:
            set_costs(self.broker, self.lstm.config.backtest)
        calendar = preloaded_calendar(self.datas)
        if calendar is not None:  # a backtest: its rebalance days are known now
            if self.first_day is not None:
                calendar = calendar[calendar >= pd.Timestamp(self.first_day)]
            dates = rebalance_dates(calendar, self.rule)
            self.lstm.prefetch(dates)
            if self.p.progress and self.lstm.lstm_active:
                self.progress = WalkForwardProgress(len(dates), show=True)
                self.lstm.plugins.register(self.progress, name="lstm_plugin.walk_forward_progress")

    def prenext(self) -> None:
        self.next()  # trade the feeds that have started while others have not

    def next(self) -> None:
        today = self.datetime.date(0)
        self.bars_since += 1
        if self.first_day is not None and today < self.first_day:
            return
        if rebalance_due(self.last_rebalance, today, self.bars_since, self.rule):
            decision = self.lstm.decide()
            self.lstm.apply(decision.targets)
            self.last_rebalance, self.bars_since = today, 0
            self.decisions += 1
        else:  # between rebalances: lstm.exits (docs/exits-and-risk.md)
            self.lstm.exit(self.lstm.exit_candidates())
        self.lstm.observe()  # every bar: the served models' live record (docs/forecast-evidence.md)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.close()
        self.lstm.close()


class EqualWeightBuyHold(bt.Strategy):
    """The benchmark: equal weights bought once, on the first bar at or after ``start``, then held.

    Symbols without a bar that day are skipped; the same costs and cash buffer as the LSTM strategy.
    """

    params = (
        ("config", None),  # Config or path: only the backtest section (costs, cash buffer) is read
        ("start", None),  # the day to buy (YYYY-MM-DD); None: the first bar
        ("apply_costs", True),  # set commission and slippage from the config's backtest section
    )

    def __init__(self) -> None:
        config = self.p.config if isinstance(self.p.config, Config) else load_config(self.p.config)
        self.costs = config.backtest
        self.first_day = None if self.p.start is None else pd.Timestamp(self.p.start).date()
        self.bought = False

    def start(self) -> None:
        if self.p.apply_costs:
            set_costs(self.broker, self.costs)

    def prenext(self) -> None:
        self.next()

    def next(self) -> None:
        today = self.datetime.date(0)
        if self.bought or (self.first_day is not None and today < self.first_day):
            return
        live = [d for d in self.datas if len(d) and d.datetime.date(0) == today]
        for data in live:
            self.order_target_percent(
                data=data, target=(1.0 - self.costs.cash_buffer) / len(live), reason="buy_and_hold"
            )
        self.bought = bool(live)
