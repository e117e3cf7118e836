"""``lstm-plugin paper``: a live-paper run (replay or a watched folder) and ``paper status``
(docs/paper.md)."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pandas as pd

from lstm_plugin.cli.args import (
    StoppedBySignal,
    Terminated,
    UsageError,
    date_option,
    models_folder,
    quiet_training_logs,
    symbol_list,
)
from lstm_plugin.core.config import load_config
from lstm_plugin.core.data import CSVFolderSource, DataSource, open_source, validate_symbol

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

MAX_POLL = 86_400.0  # a watched folder is looked at least once a day
MAX_SPEED = 1e6


def _symbols(text: str | None, source: DataSource, config_symbols: list[str] | None) -> list[str]:
    given = [validate_symbol(s) for s in symbol_list(text)] or list(config_symbols or []) or source.symbols()
    unknown = [s for s in given if s not in source.symbols()]
    if unknown:
        raise UsageError(f"--symbols › unknown symbol {', '.join(unknown)} in {source.name}")
    if len(set(given)) < len(given):
        raise UsageError(
            f"--symbols › listed twice: {', '.join(sorted({s for s in given if given.count(s) > 1}))}"
        )
    return given


def plugin_source(spec: str, symbols: list[str], config: Any, extra: Sequence[Any] = ()) -> Any:
    """The bar source a plugin's ``lstm_bar_source`` hook gives for ``spec``."""
    from lstm_plugin.backtrader.live import BarSource, builtin_sources
    from lstm_plugin.plugins.manager import get_plugin_manager

    manager = get_plugin_manager(config.plugins, list(extra))
    manager.register_builtin(builtin_sources, builtin_sources.NAME)
    source = manager.call_first("lstm_bar_source", spec=spec, symbols=symbols, config=config)
    if source is None:
        raise UsageError(f"--source › no plugin provides {spec!r} (hook lstm_bar_source; see docs/paper.md)")
    if not isinstance(source, BarSource):
        raise UsageError(
            f"--source › the plugin for {spec!r} returned a {type(source).__name__}, not a BarSource"
        )
    return source


def _source(args: argparse.Namespace, config: Any) -> tuple[Any, float]:
    from lstm_plugin.backtrader.live import ReplaySource

    if not 0 <= args.speed <= MAX_SPEED:  # NaN fails this too
        raise UsageError(f"--speed › must be 0 or up to {MAX_SPEED:g} days per second (got: {args.speed})")
    if not 0 < args.poll <= MAX_POLL:
        raise UsageError(f"--poll › must be more than 0 and at most {MAX_POLL:g} seconds (got: {args.poll})")
    if args.source:
        if args.watch or args.replay_from or args.until or args.data:
            raise UsageError(
                "--source › brings its own bars: give it without --watch, --replay-from, --until or --data"
            )
        return plugin_source(
            args.source, [validate_symbol(s) for s in symbol_list(args.symbols)], config
        ), args.poll
    if args.watch:
        if args.replay_from or args.until or args.data:
            raise UsageError(
                "--watch › reads its own folder: give it without --replay-from, --until or --data"
            )
        folder = CSVFolderSource(args.watch, config.data.max_file_mb)
        symbols = _symbols(args.symbols, folder, config.data.symbols)
        return plugin_source(f"folder:{args.watch}", symbols, config), args.poll
    data = open_source(args.data or config.data.path, config.data.max_file_mb)
    symbols = _symbols(args.symbols, data, config.data.symbols)
    start, until = date_option(args.replay_from, "--replay-from"), date_option(args.until, "--until")
    if start is None:
        last = max(data.load(s).index[-1] for s in symbols)
        start = last - pd.DateOffset(years=1)
    if until is not None and until < start:
        raise UsageError(
            f"--until › must not be before --replay-from (got: {until:%Y-%m-%d} < {start:%Y-%m-%d})"
        )
    poll = 1.0 / (2 * args.speed) if args.speed > 0 else 0.0
    return ReplaySource(data, symbols, start, until, speed=args.speed), poll


def day_line(day: dict[str, Any], start_cash: float) -> str:
    """The one status line printed per LIVE day."""
    line = (
        f"{day['date']:%Y-%m-%d}  value {day['value']:>12,.2f}  cash {day['cash']:>11,.2f}  "
        f"P&L {(day['value'] / start_cash - 1) * 100:+6.2f}%  positions {day['positions']}"
    )
    if day["fills"]:
        line += f"  filled {day['fills']}"
    if day["rebalanced"]:
        targets = (
            " ".join(f"{s} {w:.0%}" for s, w in sorted(day["targets"].items(), key=lambda kv: -kv[1]))
            or "cash"
        )
        models = day["models"] or {}
        oldest = max((m["age_days"] for m in models.values()), default=None)
        line += f"  rebalance: {day['orders']} orders -> {targets}; models {len(models)}"
        if oldest is not None:
            line += f" (oldest {oldest:.0f} d)"
    elif day.get("exits"):  # lstm.exits between rebalances (docs/exits-and-risk.md)
        line += f"  exits: {', '.join(day['exited'])}"
    training = day.get("training") or {}
    if training.get("running") or training.get("queued"):
        line += f"  training {len(training['running'])} running {len(training['queued'])} queued"
    return line


@contextmanager
def _stop_on_signals(stop: Callable[[], None], delivering: Callable[[], bool]) -> Iterator[list[int]]:
    """SIGINT / SIGTERM: finish the day in progress, then stop; a second signal stops at once (exit 130 for
    SIGINT, 143 for SIGTERM). A day already committed whose plugins (``lstm_paper_day``) are still running
    stops at once too: the next start hands the day to them again (docs/paper.md)."""
    received: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        if received:
            raise Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()
        received.append(signum)
        if delivering():
            raise StoppedBySignal(signum)
        print("lstm-plugin: stopping after the day in progress (signal again to stop now)", file=sys.stderr)
        stop()

    previous = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, handler)
    except ValueError:  # not the main thread
        pass
    try:
        yield received
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def cmd_paper(args: argparse.Namespace) -> dict[str, Any]:
    from lstm_plugin.backtrader.live import PaperSession, paper_status
    from lstm_plugin.backtrader.live.status import status_lines

    if args.action == "status":
        status = paper_status(args.state)
        if not args.json:
            print("\n".join(status_lines(status)))
        return status
    config = load_config(args.config)
    quiet_training_logs(
        args
    )  # candidates kept and failed trainings are in the journal (decisions); -v shows them
    source, poll = _source(args, config)
    out = sys.stderr if args.json else sys.stdout
    start_cash = float(config.backtest.cash)
    waiting: list[str] = []

    def on_day(day: dict[str, Any]) -> None:
        waiting.clear()
        if not args.quiet:
            print(day_line(day, start_cash), file=out, flush=True)

    def on_wait(why: str) -> None:
        if why not in waiting and not args.quiet:
            waiting[:] = [why]
            print(f"lstm-plugin: {why}", file=sys.stderr, flush=True)

    session = PaperSession(
        args.state,
        source,
        config=config,
        registry=models_folder(args.models, config.registry.path),
        backend=args.backend,
        accept_state=args.accept_state,
        on_day=on_day,
        on_wait=on_wait,
        poll_seconds=poll,
        argv=sys.argv[1:],
    )
    received: list[int] = []
    try:
        if session.pending_days() == 0 and not args.quiet:
            print(
                f"replay finished: the journal already ends on {session.book.last_day:%Y-%m-%d}; nothing to "
                f"do",
                file=out,
            )
        with _stop_on_signals(session.request_stop, lambda: session.delivering) as received:
            status = session.run()
    finally:
        session.close(wait=not received)  # a stop signal does not wait for running trainings
    if not args.json:
        print("\n".join(status_lines(status)))
    if received:
        raise StoppedBySignal(received[0])
    return status
