"""What `--variants` costs: the warm main job with four variants against the plain job, and one variant's run
against the plain LSTM run.

Run: ``python benchmarks/bench_variants.py [--models DIR] [--repeat N] [--json]``. In one process, on the
bundled data with the default config and span: the job runs once to fill the registry (skipped in effect
when ``--models`` already holds its models), then, warm, alternately without variants and with
``base,exits,risk,vol,exits+risk`` (``base`` is the plain run itself, so four more runs), ``--repeat``
times each; the best time of each is kept. Target: each variant costs at most the warm LSTM run it
repeats (≤ 1.2× of it; it trains nothing and skips the forecast evidence). Both jobs must give the same
plain runs: the variants only add.
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

VARIANTS = "base,exits,risk,vol,exits+risk"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, help="a registry to reuse (default: a new temporary one)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    config, source = load_config(), bundled_source()
    with tempfile.TemporaryDirectory() as scratch:
        registry = args.models or Path(scratch)
        run_main_job(config, source, registry, progress=False)  # fills the registry
        best = {"plain": float("inf"), "variants": float("inf")}
        results = {}
        for _ in range(args.repeat):
            for name, variants in (("plain", None), ("variants", VARIANTS)):
                started = time.perf_counter()
                results[name] = run_main_job(config, source, registry, progress=False, variants=variants)
                best[name] = min(best[name], time.perf_counter() - started)
    plain, with_variants = results["plain"], results["variants"]
    assert plain.metrics == with_variants.metrics, "the variants must not change the plain runs"
    summaries = with_variants.variants or {}
    ran = {n: s["seconds"] for n, s in summaries.items() if s["seconds"] > 0}
    lstm_seconds = with_variants.seconds["lstm"]
    figures = {
        "plain_seconds": best["plain"],
        "variants_seconds": best["variants"],
        "ratio": best["variants"] / best["plain"],
        "lstm_run_seconds": lstm_seconds,
        "variant_seconds": ran,
        "variant_over_lstm_run": {n: s / lstm_seconds for n, s in ran.items()},
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"warm main job, plain: {figures['plain_seconds']:.1f} s")
    print(
        f"warm main job, --variants {VARIANTS}: {figures['variants_seconds']:.1f} s ({figures['ratio']:.2f}×)"
    )
    print(f"the warm lstm run: {lstm_seconds:.1f} s; each variant's run against it:")
    for name, ratio in figures["variant_over_lstm_run"].items():
        print(f"  {name:12s} {ran[name]:6.1f} s  {ratio:.2f}×")


if __name__ == "__main__":
    main()
