"""A classic moving-average crossover, with the LSTM-enhanced selection deciding what to hold.

Written the way a Backtrader user writes a strategy; the LSTM comes in through one helper,
``LSTMSignals``: ``decide()`` gives target weights as of the current bar, ``apply()`` trades them.
Here a symbol is held only while its fast average is above its slow one *and* the selection wants
it; the portfolio is re-decided whenever any crossover happens (at most once a week).

    python strategies/crossover_with_lstm.py --data my_csvs --symbols ABT,AMD,DIS,KO --start 2008-01-01 --end
    2010-12-31
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

import backtrader as bt

from lstm_plugin import load_config
from lstm_plugin.backtrader import LSTMForecastAnalyzer, LSTMSignals

try:  # run as a script or imported from the strategies folder
    from lstm_rebalance import add_feeds
except ImportError:  # pragma: no cover
    from strategies.lstm_rebalance import add_feeds


class CrossoverWithLSTM(bt.Strategy):
    params = (
        ("fast", 20),  # fast moving average, bars
        ("slow", 50),  # slow moving average, bars
        ("config", None),  # lstm_config.json path or Config
        ("registry", "lstm_models"),  # model registry folder
        ("start", None),  # first date to trade
    )

    def __init__(self) -> None:
        self.crossovers = {
            data: bt.indicators.CrossOver(
                bt.indicators.SMA(data.close, period=self.p.fast),
                bt.indicators.SMA(data.close, period=self.p.slow),
            )
            for data in self.datas
        }
        self.trend_up = {
            data: bt.indicators.SMA(data.close, period=self.p.fast)
            > bt.indicators.SMA(data.close, period=self.p.slow)
            for data in self.datas
        }
        self.lstm = LSTMSignals(self, config=self.p.config, registry=self.p.registry)
        self.start_day = None if self.p.start is None else dt.date.fromisoformat(self.p.start)
        self.last_decision: dt.date | None = None

    def next(self) -> None:
        today = self.datetime.date(0)
        if self.start_day and today < self.start_day:
            return
        crossed = any(cross[0] != 0 for cross in self.crossovers.values())
        week_passed = self.last_decision is None or (today - self.last_decision).days >= 7
        if not (crossed and week_passed):
            return
        decision = self.lstm.decide()
        held = {s: w for s, w in decision.targets.items() if self.trend_up[self.lstm.feeds[s]][0]}
        self.lstm.apply(held)
        self.last_decision = today

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
    args = parser.parse_args()
    config = load_config(args.config)
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
    cerebro.addstrategy(CrossoverWithLSTM, config=config, registry=args.models, start=args.start)
    cerebro.addanalyzer(LSTMForecastAnalyzer, _name="lstm")
    strategy = cerebro.run()[0]
    analysis = strategy.analyzers.lstm.get_analysis()
    print(
        json.dumps(
            {
                "final_value": round(cerebro.broker.getvalue(), 2),
                "decisions": analysis["n_rebalances"],
                "orders": len(analysis["orders"]),
                "hit_rate": analysis["hit_rate"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
