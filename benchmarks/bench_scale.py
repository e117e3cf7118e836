"""The warm backtest at 25, 100 and 400 symbols: time and peak memory must grow at most linearly.

Run: ``python benchmarks/bench_scale.py [--sizes 25,100,400] [--json]``. Each size runs in its own
process (so its peak memory is its own) on a synthetic universe generated here: random-walk
OHLCV, 10 years of business days per symbol, seeded. A universal model (pooled over 25 symbols,
a small network) is trained before the clock starts; then the ``lstm`` strategy runs warm — no
training, every symbol forecast on every bar, monthly rebalances over the last 3 years, the
forecast analyzer's daily evaluation on (no baselines). Target: 400 symbols at most 4.5x the time
and the memory of 100.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import pandas as pd

YEARS, TRADED_YEARS, POOLED = 10, 3, 25
SMALL = {
    "model": {"hidden_size": 8, "epochs": 2, "patience": 1, "window": 20},
    "lstm_service": {"universal": {"symbols": None}},
    "backtest": {"baselines": [], "backend": "sync"},
    "plugins": {"load_entry_points": False},
}


def universe(size: int, seed: int = 7) -> dict[str, pd.DataFrame]:
    """``size`` symbols of seeded random-walk daily bars (positive prices, plausible volumes)."""
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2011-01-03", periods=252 * YEARS)
    frames = {}
    for i in range(size):
        returns = rng.normal(0.0003, 0.018, len(dates))
        close = 50.0 * np.exp(np.cumsum(returns))
        spread = np.abs(rng.normal(0, 0.006, len(dates)))
        open_ = close * np.exp(rng.normal(0, 0.004, len(dates)))
        frames[f"S{i:04d}"] = pd.DataFrame(
            {
                "open": open_,
                "high": np.maximum(open_, close) * (1 + spread),
                "low": np.minimum(open_, close) * (1 - spread),
                "close": close,
                "volume": rng.integers(200_000, 5_000_000, len(dates)).astype(float),
            },
            index=pd.DatetimeIndex(dates, name="date"),
        )
    return frames


def run_one(size: int) -> dict[str, float]:
    """In this process: train the pooled model, then time the warm walk-forward over ``size`` symbols."""
    import backtrader as bt

    from lstm_plugin import FrameSource, ModelRegistry, ModelTrainer
    from lstm_plugin.backtrader import LSTMForecastAnalyzer, LSTMRebalanceStrategy
    from lstm_plugin.core.config import validate_config

    frames = universe(size)
    source = FrameSource(frames)
    dates = next(iter(frames.values())).index
    start = dates[-252 * TRADED_YEARS]
    config = validate_config(SMALL, "bench_scale")
    with tempfile.TemporaryDirectory() as folder:
        registry = ModelRegistry(folder)
        ModelTrainer(config, source, registry, progress=False).train_universal(
            sorted(frames)[:POOLED], as_of=start - pd.Timedelta(days=1)
        )
        cerebro = bt.Cerebro(stdstats=False)
        for symbol, frame in frames.items():
            cerebro.adddata(bt.feeds.PandasData(dataname=frame.loc[start:]), name=symbol)
        cerebro.broker.setcash(1_000_000.0)
        cerebro.addstrategy(
            LSTMRebalanceStrategy, config=config, registry=registry, source=source, train=False
        )
        cerebro.addanalyzer(LSTMForecastAnalyzer, _name="forecast", daily=True, baselines=())
        started = time.perf_counter()
        result = cerebro.run()[0]
        seconds = time.perf_counter() - started
    evidence = result.analyzers.forecast.get_analysis()
    return {
        "symbols": size,
        "seconds": seconds,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "forecasts": len(evidence["daily"]),
        "rebalances": evidence["n_rebalances"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="25,100,400", help="universe sizes, comma-separated")
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # a child process: one size
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    runs = []
    for size in (int(s) for s in args.sizes.split(",")):
        done = subprocess.run(
            [sys.executable, __file__, "--one", str(size)], capture_output=True, text=True, check=True
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    by_size = {run["symbols"]: run for run in runs}
    ratios = {}
    if 100 in by_size and 400 in by_size:
        ratios = {
            "time_400_over_100": by_size[400]["seconds"] / by_size[100]["seconds"],
            "memory_400_over_100": by_size[400]["peak_mib"] / by_size[100]["peak_mib"],
        }
    if args.json:
        print(json.dumps({"runs": runs, **ratios}, indent=2))
        return
    print(f"warm walk-forward, {TRADED_YEARS} traded years of {YEARS}, synthetic random walks:")
    print(f"  {'symbols':>8}{'seconds':>10}{'peak MiB':>10}{'forecasts':>11}{'s / 1k forecasts':>18}")
    for run in runs:
        per = run["seconds"] / max(1, run["forecasts"]) * 1000
        print(
            f"  {run['symbols']:>8}{run['seconds']:>10.1f}{run['peak_mib']:>10.0f}"
            f"{run['forecasts']:>11}{per:>18.3f}"
        )
    if ratios:
        print(
            f"  400 / 100 symbols: time {ratios['time_400_over_100']:.2f}x, memory "
            f"{ratios['memory_400_over_100']:.2f}x (target <= 4.5x each)"
        )


if __name__ == "__main__":
    main()
