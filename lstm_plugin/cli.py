"""The ``lstm-plugin`` command: train, predict, status, service, backtest, paper, schema.

Exit status: 0 success; 2 a bad argument, config, symbol or data file (one line on stderr, no
traceback); 1 anything unexpected. With ``--json`` stdout carries one JSON object and nothing
else; progress and warnings go to stderr.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from . import __version__, jsonio
from .backends import BACKENDS
from .backtest import DEFAULT_END, DEFAULT_START
from .cli_args import UsageError, date_option, quiet_training_logs, symbol_list
from .clock import Clock, ManualClock, default_clock
from .config import Config, config_schema, load_config
from .data import DataSource, open_source, validate_symbol
from .errors import LSTMPluginError
from .forecast import ForecastService
from .paper_cli import StoppedBySignal, add_paper_parser, cmd_paper
from .plugins import get_plugin_manager
from .policy import CATEGORIES
from .registry import UNIVERSAL_NAME, ModelRegistry

logger = logging.getLogger("lstm_plugin")

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE = 0, 1, 2
EXIT_TERMINATED = 128 + signal.SIGTERM


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
    train.add_argument(
        "--backend", choices=BACKENDS, help="sync: here, in order; local: worker processes; ray: Ray tasks "
        "(default: config lstm_service.backend, 'local')",
    )

    predict = commands.add_parser("predict", help="forecast from registered ONNX models")
    predict.add_argument("symbols", nargs="+", metavar="SYMBOL")
    predict.add_argument("--as-of", metavar="YYYY-MM-DD", help="forecast as of this date: bars and models up to it (default: now)")

    status = commands.add_parser("status", help="model status per symbol")
    status.add_argument("symbols", nargs="*", metavar="SYMBOL")
    status.add_argument("--as-of", metavar="YYYY-MM-DD", help="status as of this date (default: now)")

    service = commands.add_parser("service", help="the training service: its last snapshot and the training plan")
    service.add_argument("symbols", nargs="*", metavar="SYMBOL", help="symbols to plan (default: the whole universe)")
    service.add_argument("--category", choices=list(CATEGORIES), help="category of SYMBOLs (default: on_demand; scanning for the universe)")
    service.add_argument("--as-of", metavar="YYYY-MM-DD", help="plan as of this date (default: now)")

    backtest = commands.add_parser("backtest", help="walk-forward backtest: LSTM vs technical vs buy-and-hold, with a report")
    backtest.add_argument("--symbols", metavar="A,B,...", help="comma-separated symbols (default: config data.symbols, else every one)")
    backtest.add_argument("--start", metavar="YYYY-MM-DD", help=f"first trading day (default: {DEFAULT_START})")
    backtest.add_argument("--end", metavar="YYYY-MM-DD", help=f"last trading day (default: {DEFAULT_END})")
    backtest.add_argument("--out", metavar="DIR", default="lstm_report", help="report folder (default: ./lstm_report)")
    backtest.add_argument("--no-lstm", action="store_true", help="only the technical and buy-and-hold runs")

    add_paper_parser(commands, _common)
    commands.add_parser("schema", help="print the config JSON Schema (config/schema.json)")
    for sub in (train, predict, status, service, backtest):
        _common(sub)
    return parser


class _Context:
    def __init__(self, args: argparse.Namespace) -> None:
        self.config: Config = load_config(args.config)
        self.source: DataSource = open_source(args.data or self.config.data.path)
        self.registry = ModelRegistry(args.models or self.config.registry.path, self.config.registry.keep_versions)
        self.plugins = get_plugin_manager(self.config.plugins)
        as_of = date_option(getattr(args, "as_of", None))
        self.as_of = as_of
        self.clock: Clock = ManualClock(as_of) if as_of is not None else default_clock(self.source, logging.INFO)

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


class JobsFailed(LSTMPluginError):
    """Some trainings failed; carries the per-model results so ``--json`` still prints them."""

    def __init__(self, message: str, result: dict[str, Any], exit_code: int) -> None:
        super().__init__(message)
        self.result = result
        self.exit_code = exit_code


def _wait_with_progress(service: Any, total: int, show: bool) -> None:
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="trainings", unit="model", disable=not show, leave=False) as bar:
        while not service.drain(timeout=0.5):
            counts = service.snapshot()["counts"]
            bar.update(counts.get("done", 0) + counts.get("failed", 0) - bar.n)


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from .service import TrainingService

    ctx = _Context(args)
    backend = args.backend or ctx.config.lstm_service.backend
    symbols = ctx.symbols(args.symbols)
    if not args.universal and not symbols:
        raise UsageError("train › name at least one SYMBOL (or use --universal)")
    for model_type, name in [("universal", UNIVERSAL_NAME)] if args.universal else [("specific", s) for s in symbols]:
        ctx.registry.check_folder(model_type, name)  # a link in the registry: refused before anything reads it
    if backend == "sync" and ctx.config.model.torch_threads:
        import torch

        torch.set_num_threads(ctx.config.model.torch_threads)
    quiet_training_logs(args)  # failures are reported once, at the end, as the command's error
    service = TrainingService(
        ctx.config, ctx.source, ctx.registry, clock=ctx.clock, backend=backend, progress=not args.quiet and backend == "sync"
    )
    try:
        if args.universal:
            service.request_universal_training(symbols or None, force=args.force)
        else:
            service.request_model_training(symbols, force=args.force)
        _wait_with_progress(service, 1 if args.universal else len(symbols), show=not args.quiet and backend != "sync")
        snapshot = service.snapshot()
    finally:
        service.shutdown(timeout=0)
    results: dict[str, Any] = {}
    failures: list[tuple[str, str, bool]] = []
    order = {symbol: i for i, symbol in enumerate(symbols)}
    for job in sorted(snapshot["done"] + snapshot["failed"], key=lambda j: order.get(j["symbol"], -1)):
        name = "universal" if job["model_type"] == "universal" else job["symbol"]
        if job["state"] == "done":
            results[name] = job["outcome"]
        else:
            results[name] = {"status": "failed", "error": job["error"], "attempts": job["attempts"]}
            failures.append((name, job["error"], job["permanent"]))
    if not args.json:
        rows = [["model", "status", "version", "trained_at", "reliability", "quality", "ic", "epochs", "seconds"]]
        for name, r in results.items():
            if r["status"] == "failed":
                rows.append([name, "failed", "-", "-", "-", "-", "-", "-", "-"])
                continue
            m = r["metrics"]
            rows.append([
                name, r["status"], f"v{r['model_version']}", r["trained_at"][:10], _pct(m.get("reliability"), 3),
                _pct(m.get("quality"), 3), _pct(m.get("ic"), 3), str(m.get("epochs_run", "-")), _pct(r["seconds"], 1),
            ])
        print(_table(rows))
        print(f"registry: {ctx.registry.root}  backend: {backend}")
    if failures:
        name, error, _ = failures[0]
        more = f" [and {len(failures) - 1} more]" if len(failures) > 1 else ""
        raise JobsFailed(f"train › {name} › {error}{more}", results, EXIT_USAGE if all(f[2] for f in failures) else EXIT_UNEXPECTED)
    return results


def cmd_predict(args: argparse.Namespace) -> dict[str, Any]:
    ctx = _Context(args)
    symbols = ctx.symbols(args.symbols)
    for symbol in symbols:  # a broken data file is the user's to fix (exit 2), not a forecast status
        ctx.source.load(symbol)
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


def cmd_service(args: argparse.Namespace) -> dict[str, Any]:
    from .service import TrainingService, read_snapshot

    ctx = _Context(args)
    given = ctx.symbols(args.symbols)
    symbols = given or sorted(ctx.config.data.symbols or ctx.source.symbols())
    category = args.category or ("on_demand" if given else "scanning")
    planner = TrainingService(ctx.config, ctx.source, ctx.registry, clock=ctx.clock, backend="sync")
    plan = planner.create_training_schedule(
        portfolio=symbols if category == "portfolio" else (),
        watchlist=symbols if category == "watchlist" else (),
        scanning=symbols if category == "scanning" else (),
        on_demand=symbols if category == "on_demand" else (),
    )
    snapshot = read_snapshot(ctx.registry.root)
    if not args.json:
        rows = [["#", "symbol", "category", "priority", "status", "reasons"]]
        for i, entry in enumerate(plan, 1):
            rows.append([str(i), entry["symbol"], entry["category"], f"{entry['priority']:g}", entry["status"], ", ".join(entry["reasons"])])
        print(_table(rows))
        if snapshot:
            counts = snapshot.get("counts", {})
            print(
                f"last service ({snapshot.get('backend')}, clock {str(snapshot.get('clock'))[:19]}): "
                f"{len(snapshot.get('queue', []))} queued, {len(snapshot.get('in_flight', []))} training, "
                f"{counts.get('done', 0)} done, {counts.get('failed', 0)} failed"
            )
    return {"plan": plan, "snapshot": snapshot}


def cmd_backtest(args: argparse.Namespace) -> dict[str, Any]:
    from .backtest import run_main_job
    from .report import REPORT_FILES, check_report_folder, comparison_table, write_report

    ctx = _Context(args)
    quiet_training_logs(args)
    symbols = ctx.symbols(symbol_list(args.symbols)) or None
    check_report_folder(args.out)  # before minutes of work, not after
    start, end = date_option(args.start, "--start") or DEFAULT_START, date_option(args.end, "--end") or DEFAULT_END
    try:
        result = run_main_job(
            ctx.config, ctx.source, ctx.registry.root, symbols, start, end, lstm=not args.no_lstm,
            progress=not (args.quiet or args.json),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    folder = write_report(result, args.out)
    summary = result.summary()
    summary["report"] = str(folder)
    if not args.json:
        settings = result.settings
        print(f"{len(settings['symbols'])} symbols, {settings['start']} .. {settings['end']} ({settings['bars']} bars), "
              f"{settings['rebalance']} rebalances, commission {settings['commission']:.2%}, slippage {settings['slippage']:.2%}")
        print(comparison_table(summary))
        print(f"report: {folder}/ ({', '.join(REPORT_FILES)})")
    return summary


COMMANDS = {"train": cmd_train, "predict": cmd_predict, "status": cmd_status, "service": cmd_service, "backtest": cmd_backtest,
            "paper": cmd_paper}


class Terminated(BaseException):
    """SIGTERM: unwinds like Ctrl-C, so worker pools are shut down on the way out."""


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` in the main thread while a command runs."""
    def terminate(signum: int, frame: Any) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    with _sigterm_unwinds():
        return _main(argv)


def _main(argv: Sequence[str] | None) -> int:
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
        logging.captureWarnings(True)  # our LSTMPluginWarnings read like every other message
        result = COMMANDS[args.command](args)
        if args.json:
            print(jsonio.dumps(result, indent=2))
        return EXIT_OK
    except JobsFailed as exc:
        if args.json:
            print(jsonio.dumps(exc.result, indent=2))
        print(f"lstm-plugin: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except LSTMPluginError as exc:
        print(f"lstm-plugin: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoppedBySignal as exc:
        print(f"lstm-plugin: stopped cleanly ({signal.Signals(exc.signum).name})", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("lstm-plugin: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("lstm-plugin: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except Exception:  # anything else is a bug: keep the traceback for the report
        import traceback

        traceback.print_exc()
        print("lstm-plugin: unexpected error (see the traceback above); please report it", file=sys.stderr)
        return EXIT_UNEXPECTED


if __name__ == "__main__":
    raise SystemExit(main())
