"""Portfolio-manager speed: batched forecasts against one call per symbol, and the LSTM's cost per selection.

Run: ``python benchmarks/bench_portfolio.py [--repeat 20] [--json]``. Real bundled data (24 symbols),
models trained once before timing (default model config: AAPL and MSFT of their own, the universal
model for the other 22, as of 2015-12-31); the managers answer as of 2016-03-31. Every timed run
clears the prediction cache, so each forecast is computed, not looked up.

Ratios are against baselines run in this process:
- ``analyse 24 symbols``: a loop of ``get_lstm_prediction`` calls (one onnxruntime call per symbol)
  against ``analyze_symbols_with_lstm`` (one call per model version);
- ``select_portfolio``: the LSTM-enhanced manager against the technical base manager.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile

from bench_inference import median_seconds

from lstm_plugin import (
    Config,
    LSTMEnhancedPortfolioManager,
    ManualClock,
    ModelRegistry,
    ModelTrainer,
    PortfolioManager,
    bundled_source,
)
from lstm_plugin.core.config import validate_config

TRAINED_AT, AS_OF = "2015-12-31", "2016-03-31"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config: Config = validate_config({"lstm_service": {"enable_monitoring": False}}, "bench")
    source = bundled_source()
    with tempfile.TemporaryDirectory() as folder:
        registry = ModelRegistry(folder)
        trainer = ModelTrainer(config, source, registry, progress=False)
        for symbol in ("AAPL", "MSFT"):
            trainer.train_specific(symbol, as_of=TRAINED_AT)
        trainer.train_universal(as_of=TRAINED_AT)

        clock = ManualClock(AS_OF)
        enhanced = LSTMEnhancedPortfolioManager(
            config=config, source=source, registry=registry, clock=clock, backend="sync"
        )
        base = PortfolioManager(config=config, source=source, clock=clock)
        integration = enhanced.lstm_integration
        symbols = enhanced.universe

        def one_by_one() -> None:
            for symbol in symbols:
                integration.get_lstm_prediction(symbol, force_refresh=True)

        def batched() -> None:
            integration.analyze_symbols_with_lstm(symbols, force_refresh=True)

        def select_enhanced() -> None:
            integration.forecasts.clear_cache()
            enhanced.select_portfolio()

        runs_before = integration.forecasts.runner.run_count
        batched()
        calls_per_batch = integration.forecasts.runner.run_count - runs_before
        loop_s, batch_s = median_seconds(one_by_one, args.repeat), median_seconds(batched, args.repeat)
        base_s, enhanced_s = (
            median_seconds(base.select_portfolio, args.repeat),
            median_seconds(select_enhanced, args.repeat),
        )
        stats_s = median_seconds(enhanced.get_portfolio_stats, args.repeat)
        enhanced.close()

    figures = {
        "symbols": len(symbols),
        "onnx_calls_per_batch": calls_per_batch,
        "forecast_loop_ms": loop_s * 1e3,
        "forecast_batch_ms": batch_s * 1e3,
        "batch_speedup": loop_s / batch_s,
        "select_base_ms": base_s * 1e3,
        "select_lstm_ms": enhanced_s * 1e3,
        "select_lstm_over_base": enhanced_s / base_s,
        "portfolio_stats_ms": stats_s * 1e3,
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(
        f"forecasts for {len(symbols)} symbols: loop {loop_s * 1e3:.1f} ms ({len(symbols)} onnxruntime "
        f"calls), "
        f"batched {batch_s * 1e3:.1f} ms ({calls_per_batch} calls): {loop_s / batch_s:.2f}x faster"
    )
    print(
        f"select_portfolio: technical {base_s * 1e3:.1f} ms, LSTM-enhanced {enhanced_s * 1e3:.1f} ms "
        f"({enhanced_s / base_s:.2f}x the technical run)"
    )
    print(f"get_portfolio_stats with lstm_insights: {stats_s * 1e3:.1f} ms")


if __name__ == "__main__":
    main()
