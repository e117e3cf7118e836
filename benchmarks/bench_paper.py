"""A paper run's per-day latency, bar released to orders sent, against the backtest's per-rebalance time.

Run: ``python benchmarks/bench_paper.py [--json] [--start 2020-07-01] [--end 2021-04-21]``. In one
process, on the 24 bundled symbols with the default config (trainings inline, ``sync``):

1. a cold backtest over the span fills a registry (every model it needs, trained walk-forward);
2. the same backtest again on those warm models: the baseline is the time of each rebalance in its
   LSTM run (``LSTMSignals.decide`` + ``apply``: training pass, scan, forecasts, selection, orders);
3. a paper replay of the same span on a copy of the warm registry: per LIVE day, the time from the
   hub releasing the day (appending it to the bar store, then to the feeds) to the day's orders
   being sent and its journal transaction committed (the heartbeat file is written after).

Targets: a rebalance day costs at most 2x a backtest rebalance; a day without a rebalance < 50 ms.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from lstm_plugin import bundled_source, load_config
from lstm_plugin.backtrader.backtest import run_main_job
from lstm_plugin.backtrader.live import BarStore, PaperSession, ReplaySource
from lstm_plugin.backtrader.signals import LSTMSignals


def timed_rebalances() -> list[float]:
    """Wrap ``LSTMSignals.decide``/``apply`` so every rebalance's time is recorded (both runs share them)."""
    spent: list[float] = []
    decide, apply = LSTMSignals.decide, LSTMSignals.apply

    def timed_decide(self: LSTMSignals) -> Any:
        self._bench_started = time.perf_counter()  # type: ignore[attr-defined]
        return decide(self)

    def timed_apply(self: LSTMSignals, *args: Any, **kwargs: Any) -> Any:
        orders = apply(self, *args, **kwargs)
        spent.append(time.perf_counter() - self._bench_started)  # type: ignore[attr-defined]
        return orders

    LSTMSignals.decide, LSTMSignals.apply = timed_decide, timed_apply  # type: ignore[method-assign]
    return spent


def paper_latencies(
    config: Any, registry: Path, state: Path, start: str, end: str
) -> tuple[list[float], list[float]]:
    """(rebalance days, other days): seconds from the hub releasing a LIVE day to its commit."""
    released: dict[str, float] = {}
    append = BarStore.append_day

    def timed_append(self: BarStore, day: Any, *args: Any) -> None:
        released[f"{day:%Y-%m-%d}"] = (
            time.perf_counter()
        )  # the hub has a complete day: it stores, then hands it out
        append(self, day, *args)

    BarStore.append_day = timed_append  # type: ignore[method-assign]
    rebalance_days: list[float] = []
    other_days: list[float] = []

    def on_day(day: dict[str, Any]) -> None:
        spent = time.perf_counter() - released[f"{day['date']:%Y-%m-%d}"]
        (rebalance_days if day["rebalanced"] else other_days).append(spent)

    source = bundled_source()
    replay = ReplaySource(source, source.symbols(), start, end, speed=0)
    with PaperSession(
        state, replay, config=config, registry=registry, backend="sync", on_day=on_day
    ) as session:
        session.run()
    BarStore.append_day = append  # type: ignore[method-assign]
    return rebalance_days, other_days


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--start", default="2020-07-01")
    parser.add_argument("--end", default="2021-04-21")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    config = load_config()
    config = config.model_copy(
        update={"lstm_service": config.lstm_service.model_copy(update={"backend": "sync"})}
    )
    source = bundled_source()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        started = time.perf_counter()
        run_main_job(config, source, root / "models", None, args.start, args.end, progress=False)
        cold_seconds = time.perf_counter() - started
        spent = timed_rebalances()
        warm = run_main_job(config, source, root / "models", None, args.start, args.end, progress=False)
        assert warm.summary()["forecast"]["trained"] == 0, "the warm backtest must reuse every model"
        backtest = list(spent)  # the lstm run's rebalances (the technical run's come after them)
        backtest = backtest[: warm.summary()["forecast"]["rebalances"]]
        spent.clear()
        shutil.copytree(root / "models", root / "paper_models")
        rebalance_days, other_days = paper_latencies(
            config, root / "paper_models", root / "state", args.start, args.end
        )
    baseline = statistics.median(backtest)
    figures = {
        "symbols": len(source.symbols()),
        "start": args.start,
        "end": args.end,
        "cold_backtest_seconds": cold_seconds,
        "backtest_rebalances": len(backtest),
        "backtest_rebalance_median_s": baseline,
        "paper_rebalance_days": len(rebalance_days),
        "paper_rebalance_median_s": statistics.median(rebalance_days),
        "paper_rebalance_max_s": max(rebalance_days),
        "rebalance_over_backtest": statistics.median(rebalance_days) / baseline,
        "backtest_first_rebalance_s": backtest[0],
        "paper_first_rebalance_s": rebalance_days[0],
        "paper_other_days": len(other_days),
        "paper_other_median_ms": statistics.median(other_days) * 1000,
        "paper_other_p95_ms": sorted(other_days)[int(0.95 * (len(other_days) - 1))] * 1000,
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"paper run, {figures['symbols']} symbols, {args.start} .. {args.end}, default config, warm models "
        f"(cold backtest to fill the registry: {cold_seconds:.0f} s)"
    )
    print(f"  backtest rebalance (baseline), median of {len(backtest)}: {baseline * 1000:8.1f} ms   1.00x")
    print(
        f"  paper rebalance day, median of {len(rebalance_days)}:      "
        f"{figures['paper_rebalance_median_s'] * 1000:8.1f} ms   "
        f"{figures['rebalance_over_backtest']:.2f}x  (target <= 2x)"
    )
    print(
        f"  first rebalance (features of every symbol's whole history, every model opened): backtest "
        f"{backtest[0] * 1000:.0f} ms, paper {rebalance_days[0] * 1000:.0f} ms"
    )
    print(
        f"  paper day without a rebalance, median of {len(other_days)}: "
        f"{figures['paper_other_median_ms']:6.1f} ms  "
        f"(target < 50 ms; p95 {figures['paper_other_p95_ms']:.1f} ms)"
    )


if __name__ == "__main__":
    main()
