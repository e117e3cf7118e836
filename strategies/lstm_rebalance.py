"""A runnable LSTM-rebalanced portfolio: copy this file and edit it.

    python strategies/lstm_rebalance.py                                  # bundled data, 2012-2014
    python strategies/lstm_rebalance.py --data my_csvs --symbols ABT,AMD,DIS --start 2008-01-01 --end
    2010-12-31

Feeds are Backtrader's own (``YahooFinanceCSVData`` for a folder of CSV files, ``PandasData`` for
the bundled set); the strategy reads the same files for its models and scores, cut at each bar.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import backtrader as bt

from lstm_plugin import bundled_source, load_config
from lstm_plugin.backtrader import LSTMForecastAnalyzer, LSTMRebalanceStrategy


def add_feeds(
    cerebro: bt.Cerebro, data: str | None, symbols: list[str], start: dt.datetime, end: dt.datetime
) -> None:
    history = start - dt.timedelta(
        days=550
    )  # a year and a half of bars before trading starts, for the scores
    if data:
        for symbol in symbols:
            feed = bt.feeds.YahooFinanceCSVData(
                dataname=str(Path(data) / f"{symbol}.csv"), fromdate=history, todate=end, adjclose=True
            )
            cerebro.adddata(feed, name=symbol)
        return
    source = bundled_source()
    for symbol in symbols or source.symbols():
        cerebro.adddata(
            bt.feeds.PandasData(dataname=source.load(symbol), fromdate=history, todate=end), name=symbol
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="folder of SYMBOL.csv files (default: the bundled data)")
    parser.add_argument("--symbols", default="", help="comma-separated symbols (default: every bundled one)")
    parser.add_argument("--start", default="2012-01-01")
    parser.add_argument("--end", default="2014-12-31")
    parser.add_argument("--config", help="lstm_config.json (default: built-in defaults)")
    parser.add_argument("--models", default="lstm_models", help="model registry folder")
    parser.add_argument("--no-lstm", action="store_true", help="technical selection only (weight 0)")
    args = parser.parse_args()

    config = load_config(args.config)
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    if args.data and not symbols:
        symbols = sorted(p.name.split(".")[0].upper() for p in Path(args.data).glob("*.csv"))
    start, end = dt.datetime.fromisoformat(args.start), dt.datetime.fromisoformat(args.end)

    cerebro = bt.Cerebro()
    add_feeds(cerebro, args.data, symbols, start, end)
    cerebro.broker.setcash(config.backtest.cash)
    cerebro.addstrategy(
        LSTMRebalanceStrategy,
        config=config,
        registry=args.models,
        start=args.start,
        use_lstm=not args.no_lstm,
    )
    cerebro.addanalyzer(LSTMForecastAnalyzer, _name="lstm")
    cerebro.addanalyzer(bt.analyzers.Returns, _name="returns")
    strategy = cerebro.run()[0]

    forecasts = strategy.analyzers.lstm.get_analysis()
    summary = {
        "final_value": round(cerebro.broker.getvalue(), 2),
        "rebalances": forecasts["n_rebalances"],
        "hit_rate": forecasts["hit_rate"],
        "ic": forecasts["ic"]["mean"],
        "rank_ic": forecasts["rank_ic"]["mean"],
        "model_usage": forecasts["model_usage"],
        "trained": forecasts["training"]["trained"],
        "reused": forecasts["training"]["reused"],
        "orders": len(forecasts["orders"]),
    }
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
