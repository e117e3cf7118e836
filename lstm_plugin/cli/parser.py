"""The ``lstm-plugin`` argument parser: every command's options and help (docs/cli.md)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, NoReturn

from lstm_plugin.cli.args import UsageError
from lstm_plugin.core.names import BACKENDS, CATEGORY_NAMES, DEFAULT_END, DEFAULT_START
from lstm_plugin.core.version import __version__

#: a paper run's state folder, by default
DEFAULT_STATE = "lstm_paper"

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


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

    subparsers = [
        *_add_model_commands(commands),
        _add_tune(commands),
        _add_backtest(commands),
        _add_pretrain(commands),
        _add_dashboard(commands),
    ]
    add_paper_parser(commands, common_options)
    commands.add_parser("schema", help="print the config JSON Schema (config/schema.json)")
    for sub in subparsers:
        common_options(sub)
    return parser


def _add_model_commands(commands: Any) -> list[argparse.ArgumentParser]:
    """``train`` and ``predict``, then :func:`_add_inspection_commands`."""
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
        "(default: config lstm_service.backend, 'local'; docs/cli.md, Backends)",
    )

    predict = commands.add_parser("predict", help="forecast from registered ONNX models")
    predict.add_argument("symbols", nargs="+", metavar="SYMBOL")
    predict.add_argument(
        "--as-of",
        metavar="YYYY-MM-DD",
        help="forecast as of this date: bars and models up to it (default: now)",
    )

    return [train, predict, *_add_inspection_commands(commands)]


def _add_inspection_commands(commands: Any) -> list[argparse.ArgumentParser]:
    """``status``, ``service`` and ``promote``."""
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
        choices=list(CATEGORY_NAMES),
        help="category of SYMBOLs (default: on_demand; scanning for the universe)",
    )
    service.add_argument("--as-of", metavar="YYYY-MM-DD", help="plan as of this date (default: now)")

    promote = commands.add_parser(
        "promote", help="serve a shelved candidate model by hand, or discard a version"
    )
    promote.add_argument("symbol", nargs="?", metavar="SYMBOL")
    promote.add_argument(
        "--version", type=int, metavar="N", help="the version to act on (default: the newest candidate)"
    )
    promote.add_argument("--universal", action="store_true", help="the pooled universal model")
    promote.add_argument(
        "--discard", action="store_true", help="set the version aside: never served nor offered again"
    )
    promote.add_argument(
        "--force", action="store_true", help="serve a version that was discarded (by hand) again"
    )
    return [status, service, promote]


def _add_dashboard(commands: Any) -> argparse.ArgumentParser:
    dashboard = commands.add_parser(
        "dashboard", help="a local web page of every model, the training queue, paper runs and reports"
    )
    dashboard.add_argument(
        "--state",
        action="append",
        metavar="DIR",
        help=f"a paper state folder (repeat; default: ./{DEFAULT_STATE})",
    )
    dashboard.add_argument(
        "--reports", action="append", metavar="DIR", help="a report folder (repeat; default: those under .)"
    )
    dashboard.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    dashboard.add_argument("--port", type=int, default=8050, help="port to listen on (default: 8050)")
    dashboard.add_argument("--open", action="store_true", help="open the page in the default browser")
    dashboard.add_argument(
        "--token-file",
        metavar="PATH",
        help="file holding the token every request must carry (else $LSTM_PLUGIN_DASHBOARD_TOKEN); "
        "required off loopback",
    )
    return dashboard


def _add_tune(commands: Any) -> argparse.ArgumentParser:
    tune = commands.add_parser(
        "tune",
        help="search each model's settings (Optuna TPE, walk-forward folds); trainings from --as-of use "
        "the best",
    )
    tune.add_argument("symbols", nargs="*", metavar="SYMBOL")
    tune.add_argument("--universal", action="store_true", help="tune the pooled universal model")
    tune.add_argument("--as-of", metavar="YYYY-MM-DD", help="the tuning date: bars up to it only (required)")
    tune.add_argument(
        "--trials", type=int, metavar="N", help="finished trials the study holds (default: tuning.trials)"
    )
    tune.add_argument(
        "--timeout", type=float, metavar="S", help="propose no trial after S seconds (default: no limit)"
    )
    tune.add_argument(
        "--backend",
        choices=BACKENDS,
        help="where trials run: sync, local worker processes, ray tasks; the same trials on each "
        "(default: config lstm_service.backend, 'local')",
    )
    tune.add_argument(
        "--restart", action="store_true", help="replace the study of this model and date, if one exists"
    )
    return tune


def _span_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--symbols",
        metavar="A,B,...",
        help="comma-separated symbols (default: config data.symbols, else every one)",
    )
    parser.add_argument("--start", metavar="YYYY-MM-DD", help=f"first trading day (default: {DEFAULT_START})")
    parser.add_argument("--end", metavar="YYYY-MM-DD", help=f"last trading day (default: {DEFAULT_END})")


def _add_pretrain(commands: Any) -> argparse.ArgumentParser:
    pretrain = commands.add_parser(
        "pretrain",
        help="train every model a backtest of this span will train (its walk-forward, in parallel), so "
        "the backtest runs warm",
    )
    _span_options(pretrain)
    pretrain.add_argument(
        "--backend",
        choices=BACKENDS,
        help="local worker processes, ray tasks (lstm_service.ray.address for a cluster) or sync "
        "(default: config backtest.backend, else lstm_service.backend, 'local'; docs/cli.md, Backends)",
    )
    return pretrain


def _add_backtest(commands: Any) -> argparse.ArgumentParser:
    backtest = commands.add_parser(
        "backtest", help="walk-forward backtest: LSTM vs technical vs buy-and-hold, with a report"
    )
    _span_options(backtest)
    backtest.add_argument(
        "--out", metavar="DIR", default="lstm_report", help="report folder (default: ./lstm_report)"
    )
    backtest.add_argument("--no-lstm", action="store_true", help="only the technical and buy-and-hold runs")
    backtest.add_argument(
        "--baselines",
        metavar="A,B|none",
        help="baselines measured beside the LSTM: momentum_12_1, reversal_1m, ridge, a plugin's, or none "
        "(default: config backtest.baselines, all three)",
    )
    backtest.add_argument(
        "--variants",
        metavar="V,W",
        help="also run these variants of the lstm strategy on the same models and compare each with base "
        "(paired differences with 95%% intervals): base, exits, risk, vol, or parts joined by +, e.g. "
        "base,exits,risk,exits+risk (docs/exits-and-risk.md)",
    )
    backtest.add_argument(
        "--backend",
        choices=BACKENDS,
        help="where each rebalance's trainings run, all at once: local worker processes, ray tasks, or "
        "sync, one after another here; the same models and orders on each "
        "(default: config backtest.backend, else lstm_service.backend, 'local'; docs/cli.md, Backends)",
    )
    return backtest


def add_paper_parser(
    commands: Any, common: Callable[[argparse.ArgumentParser], None]
) -> argparse.ArgumentParser:
    paper = commands.add_parser(
        "paper", help="live-paper run: replay or watch a folder, paper broker, journal, resume"
    )
    paper.add_argument(
        "action", nargs="?", choices=["run", "status"], default="run", help="run (default) or status"
    )
    paper.add_argument(
        "--state",
        metavar="DIR",
        default=DEFAULT_STATE,
        help=f"state folder: journal, bars, heartbeat (default: ./{DEFAULT_STATE})",
    )
    paper.add_argument(
        "--replay-from", metavar="YYYY-MM-DD", help="replay the data from this day (default: its last year)"
    )
    paper.add_argument(
        "--until", metavar="YYYY-MM-DD", help="last day of the replay (default: the end of the data)"
    )
    paper.add_argument(
        "--speed",
        type=float,
        default=0.0,
        metavar="N",
        help="replayed days per second (0: as fast as they are taken, each day's trainings finishing first)",
    )
    paper.add_argument(
        "--watch", metavar="DIR", help="trade the rows appended to DIR/SYMBOL.csv instead of a replay"
    )
    paper.add_argument(
        "--source",
        metavar="NAME",
        help="a bar source from a plugin (hook lstm_bar_source) instead of a replay",
    )
    paper.add_argument(
        "--poll",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="how often --watch looks at the files (default: 5)",
    )
    paper.add_argument(
        "--symbols",
        metavar="A,B,...",
        help="comma-separated symbols (default: config data.symbols, else every one)",
    )
    paper.add_argument(
        "--backend",
        choices=BACKENDS,
        help="where trainings run (default: config lstm_service.backend, 'local')",
    )
    paper.add_argument(
        "--accept-state", action="store_true", help="continue although the book disagrees with the fills"
    )
    common(paper)
    return paper
