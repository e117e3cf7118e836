"""Walk-forward backtest: a cold run that trains its models, then the same run reusing every one.

Run: ``python benchmarks/bench_walkforward.py [--symbols 10] [--start 2012-01-01] [--end 2014-12-31]
[--json]``.
Bundled data through Backtrader ``PandasData`` feeds, the default config (models trained inside
the run on a ``sync`` service, monthly rebalances), a fresh registry for the cold run. The ratio
is the cold run's time over the warm run's, both in this process; a third run with the LSTM off
(``weight = 0``, no training, no forecasts) gives the cost of the technical selection alone.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
import time
from typing import Any

import backtrader as bt

from lstm_plugin import bundled_source, load_config
from lstm_plugin.backtrader import LSTMForecastAnalyzer, LSTMRebalanceStrategy


def backtest(
    symbols: list[str], start: str, end: str, registry: str, use_lstm: bool = True
) -> dict[str, Any]:
    source = bundled_source()
    begin, finish = dt.datetime.fromisoformat(start), dt.datetime.fromisoformat(end)
    cerebro = bt.Cerebro(stdstats=False)
    for symbol in symbols:
        cerebro.adddata(
            bt.feeds.PandasData(
                dataname=source.load(symbol), fromdate=begin - dt.timedelta(days=550), todate=finish
            ),
            name=symbol,
        )
    config = load_config()
    cerebro.broker.setcash(config.backtest.cash)
    cerebro.addstrategy(
        LSTMRebalanceStrategy, config=config, registry=registry, start=start, use_lstm=use_lstm
    )
    cerebro.addanalyzer(LSTMForecastAnalyzer, _name="lstm")
    started = time.perf_counter()
    strategy = cerebro.run()[0]
    seconds = time.perf_counter() - started
    analysis = strategy.analyzers.lstm.get_analysis()
    training = analysis["training"]
    return {
        "seconds": seconds,
        "final_value": cerebro.broker.getvalue(),
        "rebalances": analysis["n_rebalances"],
        "forecasts": analysis["n_predictions"],
        "trained": training["trained"],
        "reused": training["reused"],
        "orders": len(analysis["orders"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--symbols", type=int, default=10)
    parser.add_argument("--start", default="2012-01-01")
    parser.add_argument("--end", default="2014-12-31")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    symbols = bundled_source().symbols()[: args.symbols]
    with tempfile.TemporaryDirectory() as registry:
        cold = backtest(symbols, args.start, args.end, registry)
        warm = backtest(symbols, args.start, args.end, registry)
        technical = backtest(symbols, args.start, args.end, registry, use_lstm=False)
    assert warm["trained"] == 0 and warm["final_value"] == cold["final_value"], (
        "the warm run must reuse everything"
    )
    figures = {
        "cold": cold,
        "warm": warm,
        "technical": technical,
        "warm_speedup": cold["seconds"] / warm["seconds"],
        "lstm_over_technical": warm["seconds"] / technical["seconds"],
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"{len(symbols)} symbols, {args.start}..{args.end}, monthly rebalances, default config:")
    print("  run                 seconds  trained  reused  forecasts  orders  final value")
    for name, run in (("cold (trains)", cold), ("warm (reuses)", warm), ("technical only", technical)):
        print(
            f"  {name:18s} {run['seconds']:8.1f} {run['trained']:8d} {run['reused']:7d} "
            f"{run['forecasts']:10d} {run['orders']:7d} {run['final_value']:12,.0f}"
        )
    print(f"warm rerun: {figures['warm_speedup']:.1f}x faster than the cold run (target >= 5x)")
    print(f"LSTM run on warm models: {figures['lstm_over_technical']:.2f}x the technical-only run")


if __name__ == "__main__":
    main()
