"""What a warm start saves: the cold main job's training seconds with ``model.warm_start`` against without.

Run: ``python benchmarks/bench_warm_start.py [--start D] [--end D] [--json]``. In one process, on the
bundled data with the default config (24 symbols, monthly rebalances): the main job cold into an empty
registry with cold starts (the baseline), then cold into another empty registry with warm starts
(``warm_start_epochs`` 1, its default). It prints the seconds the trainings took (the sum over the
walk-forward's training jobs) and the wall time of each run, their ratio (target: warm ≤ 0.5× cold),
and the paired difference of the daily rank IC at the holding horizon (21 bars), warm − cold, with its
95% interval (target: the interval contains 0 or lies above it) — each run's rank IC with its interval
too.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time

import pandas as pd

from lstm_plugin import bundled_source, load_config
from lstm_plugin.backtrader.backtest import run_main_job
from lstm_plugin.backtrader.research import daily_rank_ic, paired_difference
from lstm_plugin.core.config import Config
from lstm_plugin.core.data import DataSource
from lstm_plugin.core.statistics import estimate_mean

HOLDING = 21


def _run(config: Config, source: DataSource, start: str, end: str) -> tuple[float, float, int, pd.Series]:
    """One cold main job into an empty registry: its wall time, its trainings' seconds and count, and the
    LSTM's rank IC on each day at the holding period."""
    with tempfile.TemporaryDirectory() as registry:
        started = time.perf_counter()
        result = run_main_job(config, source, registry, start=start, end=end, progress=False)
        wall = time.perf_counter() - started
    forecast = result.forecast or {}
    events = forecast["training"]["events"]
    training = sum(e["seconds"] or 0.0 for e in events)
    return wall, training, len(events), daily_rank_ic(forecast, HOLDING)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", default="2018-01-02")
    parser.add_argument("--end", default="2021-04-21")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    cold, source = load_config(), bundled_source()
    warm = cold.model_copy(update={"model": cold.model.model_copy(update={"warm_start": True})})
    runs = {
        name: _run(config, source, args.start, args.end) for name, config in (("cold", cold), ("warm", warm))
    }
    ics = {name: run[3] for name, run in runs.items()}
    both = pd.concat(ics, axis=1, sort=True).dropna()
    estimates = {name: estimate_mean(both[name].to_numpy(), overlap=HOLDING) for name in ics}
    difference = paired_difference(ics["warm"], ics["cold"], HOLDING)
    figures = {
        name: {"wall_seconds": round(run[0], 1), "training_seconds": round(run[1], 1), "trainings": run[2]}
        for name, run in runs.items()
    }
    figures["training_ratio"] = round(runs["warm"][1] / runs["cold"][1], 3)
    figures["rank_ic"] = {name: estimates[name] for name in ics}
    figures["rank_ic_difference"] = difference
    if args.json:
        print(json.dumps(figures))
        return
    print(f"cold main job, {args.start} .. {args.end}, {len(source.symbols())} symbols, default config")
    for name in ("cold", "warm"):
        f, e = figures[name], estimates[name]
        print(
            f"  {name} starts: {f['trainings']} trainings, {f['training_seconds']:6.1f} s of training, "
            f"{f['wall_seconds']:6.1f} s in all; daily rank IC at {HOLDING} bars {_interval(e)}"
        )
    print(f"  training seconds, warm / cold: {figures['training_ratio']:.2f}x  (target <= 0.5x)")
    print(f"  rank IC, warm - cold (paired by day): {_interval(difference)}  (target: holds 0 or above)")


def _interval(estimate: dict) -> str:
    if estimate["value"] is None:
        return "n/a"
    return f"{estimate['value']:+.4f} [{estimate['low']:+.4f}, {estimate['high']:+.4f}]"


if __name__ == "__main__":
    main()
