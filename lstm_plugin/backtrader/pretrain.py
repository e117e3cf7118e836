"""``lstm-plugin pretrain``: train every model a backtest will train, so the backtest runs warm.

Which specific models a walk-forward trains on a rebalance day depends on what it selected the
month before (portfolio symbols train first), and that depends on the models: the plan exists only
as the walk-forward unfolds. So pretraining *is* the walk-forward of the ``lstm`` strategy — the
same strategy, feeds, trainings and order of priority as ``lstm-plugin backtest`` — without the
other strategies, the evidence or a report. Each rebalance's trainings run at once on the chosen
backend, and the universal model's, whose dates are known in advance, run ahead on idle workers
(docs/training-service.md). The backtest that follows reuses every model: the same bytes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.backtrader.walk_forward import run_inputs, strategy_runs
from lstm_plugin.core.config import Config, training_backend
from lstm_plugin.core.data import DEFAULT_END, DEFAULT_START, DataSource

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def pretrain(
    config: Config,
    source: DataSource,
    registry_path: str | Path,
    symbols: list[str] | None = None,
    start: str | pd.Timestamp = DEFAULT_START,
    end: str | pd.Timestamp = DEFAULT_END,
    progress: bool = True,
) -> dict[str, Any]:
    """Run the backtest's ``lstm`` walk-forward for its trainings only (``progress``: its bar on stderr);
    what it trained, reused and kept as candidates, and how long it took. Raises what
    :func:`~lstm_plugin.backtrader.backtest.run_main_job` raises on bad input, before anything runs."""
    inputs = run_inputs(config, source, symbols, start, end)
    config, calendar = inputs.config, inputs.calendar
    runs = strategy_runs(config, source, registry_path, inputs.begin, lstm=True, progress=progress)
    name, strategy_class, params = runs[0]
    assert name == "lstm"  # the main job's own lstm run: same strategy, same parameters
    cerebro = inputs.cerebro()
    cerebro.addstrategy(strategy_class, **params)
    started = time.perf_counter()
    strategy = cerebro.run()[0]
    signals = strategy.lstm
    return {
        "symbols": inputs.symbols,
        "start": f"{calendar[0]:%Y-%m-%d}",
        "end": f"{calendar[-1]:%Y-%m-%d}",
        "backend": training_backend(config, walk_forward=True),
        "rebalances": strategy.decisions,
        "trained": signals.counts["trained"],
        "promoted": signals.counts["promoted"],
        "shelved": signals.counts["shelved"],
        "reused": signals.counts["reused"],
        "failed": signals.counts["failed"],
        "failures": [
            f"{row['symbol']} @ {row['date'][:10]}: {row['error']}"
            for row in signals.trainings
            if row.get("error")
        ],
        "seconds": round(time.perf_counter() - started, 1),
        "registry": str(registry_path),
    }
