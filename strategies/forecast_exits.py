"""A monthly LSTM portfolio with two exits between rebalances: a classic trailing stop, and the forecast exit.

Written the way a Backtrader user writes a strategy: ``LSTMSignals.decide()`` and ``apply()`` rebalance
on the first bar of each month; on the other bars a holding is sold when its price falls ``trail`` below
its highest close since it was bought, or when ``exit_candidates()`` says its model has turned against it
(``lstm.exits``: here its forecast's cross-sectional z below ``--exit-z`` for ``--exit-bars`` bars in a
row). Each exit is counted by why it fired (docs/exits-and-risk.md).

    python strategies/forecast_exits.py --data my_csvs --symbols ABT,AMD,DIS,KO --start 2008-01-01 \
        --end 2010-12-31
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from collections import Counter

import backtrader as bt

from lstm_plugin import ConfigError, load_config
from lstm_plugin.backtrader import LSTMSignals
from lstm_plugin.core.config import validate_config

try:  # run as a script or imported from the strategies folder
    from lstm_rebalance import add_feeds
except ImportError:  # pragma: no cover
    from strategies.lstm_rebalance import add_feeds


class ForecastExits(bt.Strategy):
    params = (
        ("trail", 0.15),  # trailing stop: sell at this fall from the highest close since the buy
        ("config", None),  # lstm_config.json path or Config (lstm.exits.enabled for forecast exits)
        ("registry", "lstm_models"),  # model registry folder
        ("start", None),  # first date to trade
    )

    def __init__(self) -> None:
        self.lstm = LSTMSignals(self, config=self.p.config, registry=self.p.registry)
        self.start_day = None if self.p.start is None else dt.date.fromisoformat(self.p.start)
        self.month: int | None = None
        self.peaks: dict[str, float] = {}
        self.exits: Counter[str] = Counter()
        self.filled = 0

    def notify_order(self, order: bt.Order) -> None:
        self.filled += order.status == order.Completed

    def next(self) -> None:
        today = self.datetime.date(0)
        if self.start_day and today < self.start_day:
            return
        if today.month != self.month:  # the first bar of a month: rebalance, every stop starts afresh
            self.lstm.apply(self.lstm.decide().targets)
            self.month, self.peaks = today.month, {}
        else:
            self.trailing_stops()
            candidates = self.lstm.exit_candidates()
            self.exits.update("forecast" for _ in self.lstm.exit(candidates))
        self.lstm.observe()

    def trailing_stops(self) -> None:
        for symbol, data in self.lstm.feeds.items():
            if not self.getposition(data).size or not len(data):
                continue
            peak = self.peaks[symbol] = max(self.peaks.get(symbol, 0.0), data.close[0])
            if data.close[0] < peak * (1.0 - self.p.trail):
                self.close(data=data)
                self.exits["trailing stop"] += 1

    def stop(self) -> None:
        self.lstm.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder of SYMBOL.csv files (default: the bundled data)")
    parser.add_argument("--symbols", default="")
    parser.add_argument("--start", default="2012-01-01")
    parser.add_argument("--end", default="2014-12-31")
    parser.add_argument("--config")
    parser.add_argument("--models", default="lstm_models")
    parser.add_argument("--trail", type=float, default=0.15)
    parser.add_argument("--exit-z", type=float, default=-1.0)
    parser.add_argument("--exit-bars", type=int, default=2)
    args = parser.parse_args()
    raw = load_config(args.config).model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["lstm"]["exits"].update(enabled=True, min_z=args.exit_z, bars=args.exit_bars)
    try:
        config = validate_config(raw, "--exit-z/--exit-bars")
    except ConfigError as exc:
        parser.error(str(exc))
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    cerebro = bt.Cerebro()
    add_feeds(
        cerebro,
        args.data,
        symbols,
        dt.datetime.fromisoformat(args.start),
        dt.datetime.fromisoformat(args.end),
    )
    cerebro.broker.setcash(config.backtest.cash)
    cerebro.broker.setcommission(commission=config.backtest.commission)
    cerebro.addstrategy(
        ForecastExits, config=config, registry=args.models, start=args.start, trail=args.trail
    )
    strategy = cerebro.run()[0]
    value = round(cerebro.broker.getvalue(), 2)
    print(
        json.dumps({"final_value": value, "orders": strategy.filled, "exits": dict(strategy.exits)}, indent=2)
    )


if __name__ == "__main__":
    main()
