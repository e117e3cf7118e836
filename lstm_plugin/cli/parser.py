"""The ``lstm-plugin`` argument parser: every command's options and help (docs/cli.md)."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from lstm_plugin.cli.args import UsageError
from lstm_plugin.cli.paper import add_paper_parser
from lstm_plugin.core.data import DEFAULT_END, DEFAULT_START
from lstm_plugin.core.version import __version__
from lstm_plugin.training.backends import BACKENDS
from lstm_plugin.training.policy import CATEGORIES

__all__ = ["Parser", "build_parser", "common_options"]


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        raise UsageError(message)


def common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="PATH", help="config JSON (default: built-in defaults)")
    parser.add_argument(
        "--data",
        metavar="DIR",
        help="folder of SYMBOL.csv files (default: config data.path, else the bundled data)",
    )
    parser.add_argument(
        "--models", metavar="DIR", help="model registry folder (default: config registry.path, 'lstm_models')"
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object on stdout and nothing else"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars")
    parser.add_argument("--verbose", "-v", action="store_true", help="log what happens (stderr)")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lstm-plugin", description="LSTM forecasts for Backtrader: train, serve, inspect.")
    parser.add_argument("--version", action="version", version=f"lstm-plugin {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=Parser)

    subparsers = [*_add_model_commands(commands), _add_backtest(commands)]
    add_paper_parser(commands, common_options)
    commands.add_parser("schema", help="print the config JSON Schema (config/schema.json)")
    for sub in subparsers:
        common_options(sub)
    return parser


def _add_model_commands(commands: Any) -> list[argparse.ArgumentParser]:
    """``train``, ``predict``, ``status`` and ``service``."""
    train = commands.add_parser("train", help="train, export to ONNX and register models")
    train.add_argument("symbols", nargs="*", metavar="SYMBOL")
    train.add_argument(
        "--as-of", metavar="YYYY-MM-DD", help="train on bars up to this date, stamped with it (default: now)"
    )
    train.add_argument(
        "--universal",
        action="store_true",
        help="train the pooled model over SYMBOLs (default: the whole universe)",
    )
    train.add_argument(
        "--force", action="store_true", help="retrain even when an identical training is registered"
    )
    train.add_argument(
        "--backend",
        choices=BACKENDS,
        help="sync: here, in order; local: worker processes; ray: Ray tasks "
        "(default: config lstm_service.backend, 'local')",
    )

    predict = commands.add_parser("predict", help="forecast from registered ONNX models")
    predict.add_argument("symbols", nargs="+", metavar="SYMBOL")
    predict.add_argument(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="forecast as of this date: bars and models up to it (default: now)",
    )

    status = commands.add_parser("status", help="model status per symbol")
    status.add_argument("symbols", nargs="*", metavar="SYMBOL")
    status.add_argument("--as-of", metavar="YYYY-MM-DD", help="status as of this date (default: now)")

    service = commands.add_parser(
        "service", help="the training service: its last snapshot and the training plan"
    )
    service.add_argument(
        "symbols", nargs="*", metavar="SYMBOL", help="symbols to plan (default: the whole universe)"
    )
    service.add_argument(
        "--category",
        choices=list(CATEGORIES),
        help="category of SYMBOLs (default: on_demand; scanning for the universe)",
    )
    service.add_argument("--as-of", metavar="YYYY-MM-DD", help="plan as of this date (default: now)")

    return [train, predict, status, service]


def _add_backtest(commands: Any) -> argparse.ArgumentParser:
    backtest = commands.add_parser(
        "backtest", help="walk-forward backtest: LSTM vs technical vs buy-and-hold, with a report"
    )
    backtest.add_argument(
        "--symbols",
        metavar="A,B,...",
        help="comma-separated symbols (default: config data.symbols, else every one)",
    )
    backtest.add_argument(
        "--start", metavar="YYYY-MM-DD", help=f"first trading day (default: {DEFAULT_START})"
    )
    backtest.add_argument("--end", metavar="YYYY-MM-DD", help=f"last trading day (default: {DEFAULT_END})")
    backtest.add_argument(
        "--out", metavar="DIR", default="lstm_report", help="report folder (default: ./lstm_report)"
    )
    backtest.add_argument("--no-lstm", action="store_true", help="only the technical and buy-and-hold runs")
    backtest.add_argument(
        "--baselines",
        metavar="A,B|none",
        help="baselines measured beside the LSTM: momentum_12_1, reversal_1m, ridge, or none "
        "(default: config backtest.baselines, all three)",
    )

    return backtest
