"""What the forecast evidence costs: the warm main job with daily evaluation and baselines against without.

Run: ``python benchmarks/bench_evidence.py [--models DIR] [--repeat N] [--json]``. In one process, on
the bundled data with the default config and span: the job runs once to fill the registry (skipped
in effect when ``--models`` already holds its models), then, warm, alternately without the evidence
(``backtest.daily_evaluation`` false, no baselines) and with it (the default: every bar forecast and
measured, with the three baselines), ``--repeat`` times each; the best time of each is kept.
Target: with / without ≤ 1.3×. Both must trade identically: the evidence only watches.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

from lstm_plugin import bundled_source, load_config
from lstm_plugin.backtrader.backtest import run_main_job


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="a registry to reuse (default: a new temporary one)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    with_evidence, source = load_config(), bundled_source()
    without = with_evidence.model_copy(
        update={
            "backtest": with_evidence.backtest.model_copy(update={"daily_evaluation": False, "baselines": []})
        }
    )
    with tempfile.TemporaryDirectory() as scratch:
        registry = args.models or Path(scratch)
        run_main_job(without, source, registry, progress=False)  # fills the registry
        best = {"without": float("inf"), "with": float("inf")}
        results = {}
        for _ in range(args.repeat):
            for name, config in (("without", without), ("with", with_evidence)):
                started = time.perf_counter()
                results[name] = run_main_job(config, source, registry, progress=False)
                best[name] = min(best[name], time.perf_counter() - started)
    assert results["with"].orders == results["without"].orders, "the evidence must not change the trades"
    assert results["with"].metrics == results["without"].metrics
    evidence = results["with"].summary()["forecast"]["evidence"]
    figures = {
        "without_seconds": best["without"],
        "with_seconds": best["with"],
        "ratio": best["with"] / best["without"],
        "daily_rows": len(results["with"].forecast["daily"]),
        "forecasters": list(evidence["forecasters"]),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"warm main job without the evidence: {figures['without_seconds']:.1f} s")
    print(
        f"warm main job with daily evaluation and {len(figures['forecasters']) - 1} baselines: "
        f"{figures['with_seconds']:.1f} s ({figures['daily_rows']} daily forecasts measured)"
    )
    print(f"with / without: {figures['ratio']:.2f}x (target <= 1.3x)")


if __name__ == "__main__":
    main()
