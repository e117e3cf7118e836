"""The forecast study: each setting of ``lstm_plugin.backtrader.research.SETTINGS`` on a development period,
then the chosen one and the default, once, on a confirmation period (docs/forecast-evidence.md, *Choosing*).

Run: ``python research/forecast_study.py --period dev|confirm [--settings "NAME;..."] [--data DIR]
[--symbols A,B] [--out DIR] [--json]``. On the bundled data (or ``--data``, e.g. ``datasets/sp500_2021``:
404 S&P 500 stocks, datasets/README.md) with the default config, walk-forward, every setting into
its own empty registry under ``--out``, each training on one torch thread (so two studies can run
side by side on two cores). Prints one row per setting with 95 % intervals. Periods:
development 2005-01-03 .. 2014-12-31, confirmation 2015-01-02 .. 2021-04-21.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from lstm_plugin import bundled_source, load_config, open_source
from lstm_plugin.backtrader.research import SETTINGS, compare_settings, trading_in, with_changes

PERIODS = {"dev": ("2005-01-03", "2014-12-31"), "confirm": ("2015-01-02", "2021-04-21")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--period", choices=sorted(PERIODS), required=True)
    parser.add_argument("--settings", help="names separated by semicolons (default: all)")
    parser.add_argument("--data", help="a folder of SYMBOL.csv(.gz) files (default: the bundled data)")
    parser.add_argument("--symbols", help="comma-separated symbols (default: every one in the data)")
    parser.add_argument("--out", type=Path, default=Path("study_models"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    names = [n.strip() for n in args.settings.split(";")] if args.settings else list(SETTINGS)
    start, end = PERIODS[args.period]
    started = time.perf_counter()
    base = with_changes(load_config(), {"model": {"torch_threads": 1}})
    source = open_source(args.data) if args.data else bundled_source()
    symbols = args.symbols.split(",") if args.symbols else trading_in(source, start, end)
    table = compare_settings(
        base, {n: SETTINGS[n] for n in names}, source, args.out / args.period, start, end, symbols
    )
    if args.json:
        print(json.dumps({"period": args.period, "start": start, "end": end, "rows": table.to_dict("index")}))
        return
    print(f"{args.period}: {start} .. {end}, {time.perf_counter() - started:.0f} s")
    print(table.round(3).to_string())


if __name__ == "__main__":
    main()
