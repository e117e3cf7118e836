"""The ``lstm-plugin`` command: train, predict, status, schema.

Exit status: 0 success; 2 a bad argument, config, symbol or data file (one line on stderr, no
traceback); 1 anything unexpected. With ``--json`` stdout carries one JSON object and nothing
else; progress and warnings go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from . import __version__
from .clock import Clock, ManualClock, SystemClock, as_timestamp
from .config import Config, config_schema, load_config
from .data import DataSource, open_source, validate_symbol
from .errors import LSTMPluginError
from .forecast import ForecastService
from .plugins import get_plugin_manager
from .registry import ModelRegistry

logger = logging.getLogger("lstm_plugin")

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE = 0, 1, 2


class UsageError(LSTMPluginError):
    """A bad command-line argument."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        raise UsageError(message)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="config JSON (default: built-in defaults)")
    parser.add_argument("--data", metavar="DIR", help="folder of SYMBOL.csv files (default: config data.path, else the bundled data)")
    parser.add_argument("--models", metavar="DIR", help="model registry folder (default: config registry.path, 'lstm_models')")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout and nothing else")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.add_argument("--verbose", "-v", action="store_true", help="log what happens (stderr)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="lstm-plugin", description="LSTM forecasts for Backtrader: train, serve, inspect.")
    parser.add_argument("--version", action="version", version=f"lstm-plugin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = commands.add_parser("train", help="train, export to ONNX and register models")
    train.add_argument("symbols", nargs="*", metavar="SYMBOL")
    train.add_argument("--as-of", metavar="YYYY-MM-DD", help="train on bars up to this date, stamped with it (default: now)")
    train.add_argument("--universal", action="store_true", help="train the pooled model over SYMBOLs (default: the whole universe)")
    train.add_argument("--force", action="store_true", help="retrain even when an identical training is registered")

    predict = commands.add_parser("predict", help="forecast from registered ONNX models")
    predict.add_argument("symbols", nargs="+", metavar="SYMBOL")
    predict.add_argument("--as-of", metavar="YYYY-MM-DD", help="forecast as of this date: bars and models up to it (default: now)")

    status = commands.add_parser("status", help="model status per symbol")
    status.add_argument("symbols", nargs="*", metavar="SYMBOL")
    status.add_argument("--as-of", metavar="YYYY-MM-DD", help="status as of this date (default: now)")

    commands.add_parser("schema", help="print the config JSON Schema (config/schema.json)")
    for sub in (train, predict, status):
        _common(sub)
    return parser


def _date(value: str | None) -> Any:
    if value is None:
        return None
    try:
        return as_timestamp(value)
    except (ValueError, TypeError):
        raise UsageError(f"--as-of › must be a date like 2015-12-31 (got: {value})") from None


class _Context:
    def __init__(self, args: argparse.Namespace) -> None:
        self.config: Config = load_config(args.config)
        self.source: DataSource = open_source(args.data or self.config.data.path)
        self.registry = ModelRegistry(args.models or self.config.registry.path, self.config.registry.keep_versions)
        self.plugins = get_plugin_manager(self.config.plugins)
        as_of = _date(getattr(args, "as_of", None))
        self.as_of = as_of
        self.clock: Clock = ManualClock(as_of) if as_of is not None else SystemClock()

    def symbols(self, given: Sequence[str]) -> list[str]:
        symbols = [validate_symbol(s) for s in given]
        unknown = [s for s in symbols if s not in self.source.symbols()]
        if unknown:
            raise UsageError(f"unknown symbol {', '.join(unknown)} in {self.source.name}")
        return symbols

    def forecasts(self) -> ForecastService:
        return ForecastService(self.config, self.registry, self.source, self.clock, plugins=self.plugins)


def _pct(value: Any, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from .trainer import ModelTrainer

    ctx = _Context(args)
    if ctx.config.model.torch_threads:
        import torch

        torch.set_num_threads(ctx.config.model.torch_threads)
    trainer = ModelTrainer(ctx.config, ctx.source, ctx.registry, ctx.plugins, ctx.clock, progress=not args.quiet)
    results: dict[str, Any] = {}
    if args.universal:
        outcome = trainer.train_universal(ctx.symbols(args.symbols) or None, ctx.as_of, force=args.force)
        results["universal"] = outcome.summary() | {"symbols": outcome.record.metadata.get("symbols")}
    else:
        if not args.symbols:
            raise UsageError("train › name at least one SYMBOL (or use --universal)")
        for symbol in ctx.symbols(args.symbols):
            results[symbol] = trainer.train_specific(symbol, ctx.as_of, force=args.force).summary()
    if not args.json:
        rows = [["model", "status", "version", "trained_at", "reliability", "quality", "ic", "epochs", "seconds"]]
        for name, r in results.items():
            m = r["metrics"]
            rows.append([
                name, r["status"], f"v{r['model_version']}", r["trained_at"][:10], _pct(m.get("reliability"), 3),
                _pct(m.get("quality"), 3), _pct(m.get("ic"), 3), str(m.get("epochs_run", "-")), _pct(r["seconds"], 1),
            ])
        print(_table(rows))
        print(f"registry: {ctx.registry.root}")
    return results


def cmd_predict(args: argparse.Namespace) -> dict[str, Any]:
    ctx = _Context(args)
    symbols = ctx.symbols(args.symbols)
    results = ctx.forecasts().predict_many(symbols)
    for prediction in results.values():
        if prediction["status"] != "success":
            logger.warning("%s: %s (%s)", prediction["symbol"], prediction["status"], prediction["message"])
    if not args.json:
        rows = [["symbol", "status", "direction", "confidence", "change_%", "model", "version", "reliability", "as_of"]]
        for s, p in results.items():
            rows.append([
                s, p["status"], p["predicted_direction"], _pct(p["confidence"]), f"{p['price_change_pct']:+.2f}",
                p["model_type"] or "-", f"v{p['model_version']}" if p["model_version"] else "-",
                _pct(p["reliability"], 3), (p["as_of"] or "-")[:10],
            ])
        print(_table(rows))
    return results


def cmd_status(args: argparse.Namespace) -> dict[str, Any]:
    ctx = _Context(args)
    symbols = [validate_symbol(s) for s in args.symbols] or sorted(
        set(ctx.registry.symbols("specific")) | set(ctx.config.data.symbols or ctx.source.symbols())
    )
    forecasts = ctx.forecasts()
    results = {s: forecasts.get_model_status(s) for s in symbols}
    if not args.json:
        rows = [["symbol", "status", "version", "trained_at", "age_days", "reliability", "quality", "served_by"]]
        for s, st in results.items():
            rows.append([
                s, st["status"], f"v{st['model_version']}" if st["model_version"] else "-", (st["trained_at"] or "-")[:10],
                _pct(st["age_days"], 1), _pct(st["reliability"], 3), _pct(st["quality"], 3), st["served_by"] or "-",
            ])
        print(_table(rows))
    return results


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "status": cmd_status}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
        if args.command == "schema":
            print(json.dumps(config_schema(), indent=2))
            return EXIT_OK
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="lstm-plugin: %(levelname)s: %(message)s",
            stream=sys.stderr,
        )
        result = COMMANDS[args.command](args)
        if args.json:
            print(json.dumps(result, indent=2, default=str))
        return EXIT_OK
    except LSTMPluginError as exc:
        print(f"lstm-plugin: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lstm-plugin: interrupted", file=sys.stderr)
        return 130
    except Exception:  # anything else is a bug: keep the traceback for the report
        import traceback

        traceback.print_exc()
        print("lstm-plugin: unexpected error (see the traceback above); please report it", file=sys.stderr)
        return EXIT_UNEXPECTED


if __name__ == "__main__":
    raise SystemExit(main())
