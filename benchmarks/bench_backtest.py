"""The main job's speed and memory on this machine: cold, warm, LSTM against technical, peak memory.

Run: ``python benchmarks/bench_backtest.py [--json]``. In one process, on the bundled data with
the default config and span (what ``lstm-plugin backtest`` runs with no arguments):

1. the cold run: an empty registry, so every model is trained inside the run (target ≤ 5 min), on
   the default ``local`` backend (each rebalance's trainings on one worker per core);
2. the same cold run with ``--backend sync`` (one training after another): the local run must be
   ≥ 1.7× faster and give the same figures, orders and models;
3. the warm rerun: the same job again, every model reused (target ≤ 60 s);
4. on warm models, the LSTM run's time over the technical run's, both inside the warm job (target ≤ 1.5×);
5. the peak resident memory of the process (target ≤ 2 GiB; the whole tree: ``bench_memory.py``);
6. where the cold and the warm lstm run's seconds went, by phase (``BacktestResult.phases``).
"""

from __future__ import annotations

import argparse
import json
import logging
import resource
import tempfile
import time

from lstm_plugin import bundled_source, load_config
from lstm_plugin.backtrader.backtest import run_main_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    config, source = load_config(), bundled_source()
    timings = {}
    with tempfile.TemporaryDirectory() as registry, tempfile.TemporaryDirectory() as serial:
        for name, folder, backend in (("cold", registry, "local"), ("warm", registry, "local"),
                                      ("cold_sync", serial, "sync")):  # fmt: skip
            chosen = config.model_copy(
                update={"backtest": config.backtest.model_copy(update={"backend": backend})}
            )
            started = time.perf_counter()
            result = run_main_job(chosen, source, folder, progress=False)
            timings[name] = {
                "seconds": time.perf_counter() - started,
                "runs": result.seconds,
                "phases": result.phases,
                "summary": result.summary(),
                "orders": result.orders,
            }
    cold, warm, serial_run = timings["cold"], timings["warm"], timings["cold_sync"]
    assert warm["summary"]["forecast"]["trained"] == 0, "the warm run must reuse every model"
    assert warm["summary"]["lstm"] == cold["summary"]["lstm"], "the warm run must give the same result"
    for key in ("lstm", "technical", "buy_hold", "forecast"):
        assert serial_run["summary"][key] == cold["summary"][key], f"sync and local differ in {key}"
    assert serial_run["orders"] == cold["orders"], "sync and local must send the same orders"
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # Linux: kilobytes
    figures = {
        "cold_seconds": cold["seconds"],
        "cold_sync_seconds": serial_run["seconds"],
        "local_over_sync": serial_run["seconds"] / cold["seconds"],
        "warm_seconds": warm["seconds"],
        "warm_speedup": cold["seconds"] / warm["seconds"],
        "lstm_over_technical": warm["runs"]["lstm"] / warm["runs"]["technical"],
        "peak_gib": peak_gib,
        "trained": cold["summary"]["forecast"]["trained"],
        "reused": warm["summary"]["forecast"]["reused"],
        "cold_runs": cold["runs"],
        "warm_runs": warm["runs"],
        "cold_phases": cold["phases"],
        "warm_phases": warm["phases"],
    }
    if args.json:
        print(json.dumps(figures))
        return
    settings = cold["summary"]["settings"]
    print(
        f"lstm-plugin backtest, defaults: {len(settings['symbols'])} symbols, {settings['start']} .. "
        f"{settings['end']}, "
        f"{settings['rebalance']} rebalances"
    )
    print(
        f"  cold run, local (trains {figures['trained']}): {cold['seconds']:6.1f} s   (target <= 300 s)   "
        + ", ".join(f"{k} {v:.1f} s" for k, v in cold["runs"].items())
    )
    print(
        f"  cold run, --backend sync:           {serial_run['seconds']:6.1f} s   "
        f"local is {figures['local_over_sync']:.2f}x faster (target >= 1.7x), same figures and orders"
    )
    print(
        f"  warm rerun (reuses {figures['reused']}):        {warm['seconds']:6.1f} s   (target <= 60 s)    "
        + ", ".join(f"{k} {v:.1f} s" for k, v in warm["runs"].items())
    )
    print(f"  warm rerun speed-up:                {figures['warm_speedup']:6.1f}x")
    print(f"  LSTM run / technical run, warm:     {figures['lstm_over_technical']:6.2f}x  (target <= 1.5x)")
    print(f"  peak memory:                        {peak_gib:6.2f} GiB (target <= 2 GiB)")
    for name in ("cold", "warm"):
        print(f"  the {name} lstm run by phase (seconds):")
        print("    " + phase_line(timings[name]["phases"]))


#: the phases printed, in order, with what each one is
PHASES = (
    ("wall", "the lstm run"),
    ("training", "fitting in workers, summed over them"),
    ("plan", "what is due"),
    ("prepare", "jobs' bars, identical-training checks"),
    ("wait", "for the workers"),
    ("publish", "register, verify, stage; while waiting"),
    ("forecasts", "serving"),
    ("evaluation", "the analyzer after the run"),
    ("strategy", "the rest: Backtrader, selection"),
)


def phase_line(phases: dict[str, float]) -> str:
    return "\n    ".join(f"{name:10s} {phases.get(name, 0.0):7.2f}   {what}" for name, what in PHASES)


if __name__ == "__main__":
    main()
