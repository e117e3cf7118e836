"""``lstm-plugin tune``: per-model hyperparameter studies on walk-forward folds (docs/tuning.md)."""

from __future__ import annotations

import argparse
from typing import Any

from lstm_plugin.cli.args import UsageError, quiet_training_logs
from lstm_plugin.cli.context import CommandContext
from lstm_plugin.cli.tables import table
from lstm_plugin.core.config import training_backend
from lstm_plugin.core.statuses import ModelType
from lstm_plugin.serving.registry import UNIVERSAL_NAME

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def cmd_tune(args: argparse.Namespace) -> dict[str, Any]:
    from lstm_plugin.training.backends import make_backend
    from lstm_plugin.training.tuning.study import Tuner

    if args.as_of is None:
        raise UsageError("tune › give --as-of DATE: a tuning reads the bars up to that date, no later")
    if args.trials is not None and args.trials < 1:
        raise UsageError(f"--trials › must be at least 1 (got: {args.trials})")
    if args.timeout is not None and not args.timeout > 0:
        raise UsageError(f"--timeout › must be a number of seconds above 0 (got: {args.timeout:g})")
    ctx = CommandContext(args)
    symbols = ctx.symbols(args.symbols)
    if args.universal == bool(symbols):
        raise UsageError("tune › name SYMBOLs, or --universal for the pooled model (not both)")
    targets: list[tuple[ModelType, str]] = (
        [("universal", UNIVERSAL_NAME)] if args.universal else [("specific", s) for s in symbols]
    )
    trials = args.trials or ctx.config.tuning.trials
    quiet_training_logs(args)
    backend = make_backend(training_backend(ctx.config, args.backend), ctx.config)
    results: dict[str, Any] = {}
    try:
        progress = not (args.quiet or args.json)
        tuner = Tuner(ctx.config, ctx.source, ctx.registry, backend, progress, ctx.clock)
        for model_type, name in targets:
            record = tuner.tune(model_type, name, ctx.as_of, trials, args.timeout, args.restart)
            results["universal" if model_type == "universal" else name] = record.provenance()
    finally:
        backend.shutdown(timeout=0)
    if not args.json:
        _print(results, backend.name, str(tuner.path))
    return results


def _print(results: dict[str, Any], backend: str, study_file: str) -> None:
    rows = [["model", "trials", "pruned", "best_ic", "config_ic", "settings"]]
    for name, record in results.items():
        default = record["default_value"]
        rows.append(
            [
                name,
                str(record["trials"]),
                str(record["pruned"]),
                f"{record['best_value']:+.4f}",
                "-" if default is None else f"{default:+.4f}",
                ", ".join(f"{k}={_value(v)}" for k, v in record["parameters"].items()),
            ]
        )
    print(table(rows))
    print(
        "best_ic, config_ic: mean rank IC over the validation folds of the best trial and of the config's "
        "own settings"
    )
    print(f"studies: {study_file}  backend: {backend}; trainings from --as-of on use these settings")


def _value(value: Any) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
