"""The ``lstm-plugin`` commands: train, predict, status, service, backtest, paper
(:mod:`lstm_plugin.cli.main` parses the command line and runs them)."""

from __future__ import annotations

import argparse
import logging
from typing import TYPE_CHECKING, Any

from lstm_plugin.cli.args import (
    JobsFailed,
    UsageError,
    baseline_list,
    date_option,
    quiet_training_logs,
    symbol_list,
)
from lstm_plugin.cli.context import CommandContext
from lstm_plugin.cli.dashboard import cmd_dashboard
from lstm_plugin.cli.exit_codes import EXIT_UNEXPECTED, EXIT_USAGE
from lstm_plugin.cli.paper import cmd_paper
from lstm_plugin.cli.promote import cmd_promote
from lstm_plugin.cli.status import STATUS_LEGEND, status_rows, with_tracks
from lstm_plugin.cli.tables import pct, table, train_table
from lstm_plugin.cli.tune import cmd_tune
from lstm_plugin.core.config import training_backend
from lstm_plugin.core.data import DEFAULT_END, DEFAULT_START, validate_symbol
from lstm_plugin.core.errors import LSTMPluginError
from lstm_plugin.core.statuses import ModelType
from lstm_plugin.serving.registry import UNIVERSAL_NAME

if TYPE_CHECKING:  # the annotation only: Backtrader loads when a backtest runs
    from lstm_plugin.backtrader.backtest import BacktestSummary

logger = logging.getLogger("lstm_plugin")


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm.auto import tqdm

    ctx = CommandContext(args)
    backend = training_backend(ctx.config, args.backend)
    symbols = ctx.symbols(args.symbols)
    if not args.universal and not symbols:
        raise UsageError("train › name at least one SYMBOL (or use --universal)")
    targets: list[tuple[ModelType, str]] = (
        [("universal", UNIVERSAL_NAME)] if args.universal else [("specific", s) for s in symbols]
    )
    for model_type, name in targets:  # a link, a read-only or full disk: refused before any training
        ctx.registry.check_writable(model_type, name)
    quiet_training_logs(args)  # failures are reported once, at the end, as the command's error
    where = "a local Ray" if backend == "ray" and not ctx.config.lstm_service.ray.address else backend
    show = not args.quiet and backend != "sync"  # sync shows each training's epochs instead
    # the bar first: a Ray or a pool of workers takes seconds to start, and the user sees what waits
    with tqdm(
        total=len(targets), desc=f"starting {where}", unit="model", disable=not show, leave=False
    ) as bar:
        snapshot = _train(ctx, args, symbols, backend, bar)
    results, failures = _train_results(snapshot, symbols)
    if not args.json:
        print(train_table(results))
        print(f"registry: {ctx.registry.root}  backend: {backend}")
    if failures:
        name, error, _ = failures[0]
        more = f" [and {len(failures) - 1} more]" if len(failures) > 1 else ""
        code = EXIT_USAGE if all(f[2] for f in failures) else EXIT_UNEXPECTED
        raise JobsFailed(f"train › {name} › {error}{more}", results, code)
    return results


def _train(
    ctx: CommandContext, args: argparse.Namespace, symbols: list[str], backend: str, bar: Any
) -> dict[str, Any]:
    """Queue the trainings on the service and wait for them, counting them on ``bar``; the last snapshot."""
    from lstm_plugin.training.service import TrainingService

    progress = not args.quiet and backend == "sync"
    service = TrainingService(
        ctx.config, ctx.source, ctx.registry, clock=ctx.clock, backend=backend, progress=progress
    )
    bar.set_description(f"trainings on {backend}")
    try:
        if args.universal:
            service.request_universal_training(symbols or None, force=args.force)
        else:
            service.request_model_training(symbols, force=args.force)
        while not service.drain(timeout=0.5):
            counts = service.snapshot()["counts"]
            bar.update(counts.get("done", 0) + counts.get("failed", 0) - bar.n)
        return service.snapshot()
    finally:
        service.shutdown(timeout=0)


def _train_results(
    snapshot: dict[str, Any], symbols: list[str]
) -> tuple[dict[str, Any], list[tuple[str, str, bool]]]:
    """``{model: outcome}`` in the order asked, and ``(model, error, permanent)`` of each failure."""
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
    return results, failures


def cmd_predict(args: argparse.Namespace) -> dict[str, Any]:
    ctx = CommandContext(args)
    symbols = ctx.symbols(args.symbols)
    for symbol in symbols:  # a broken data file is the user's to fix (exit 2), not a forecast status
        ctx.source.load(symbol)
    results: dict[str, Any] = dict(ctx.forecasts().predict_many(symbols))
    for prediction in results.values():
        if prediction["status"] != "success":
            logger.warning("%s: %s (%s)", prediction["symbol"], prediction["status"], prediction["message"])
    _say_how_far_behind(ctx, results)
    if not args.json:
        rows = [
            [
                "symbol",
                "status",
                "direction",
                "confidence",
                "change_%",
                "model",
                "version",
                "reliability",
                "as_of",
            ]
        ]
        for s, p in results.items():
            rows.append(
                [
                    s,
                    p["status"],
                    p["predicted_direction"],
                    pct(p["confidence"]),
                    f"{p['price_change_pct']:+.2f}",
                    p["model_type"] or "-",
                    f"v{p['model_version']}" if p["model_version"] else "-",
                    pct(p["reliability"], 3),
                    (p["as_of"] or "-")[:10],
                ]
            )
        print(table(rows))
    return results


#: Days past a symbol's last bar that a long weekend explains; more is said on stderr.
BEHIND_DAYS = 4


def _say_how_far_behind(ctx: CommandContext, results: dict[str, Any]) -> None:
    """Add ``requested_as_of`` and ``data_behind_days`` (the asked time less the symbol's last bar) to each
    forecast, and say once on stderr when the data ends well before the time asked: a forecast "as of
    2030" from bars that end in 2021 is as of 2021."""
    asked = ctx.clock.now()
    behind = {}
    for symbol, prediction in results.items():
        try:
            last = ctx.source.load(symbol).index[-1]
        except LSTMPluginError:
            continue
        days = max(0, (asked.normalize() - last.normalize()).days)
        results[symbol] = {**prediction, "requested_as_of": asked.isoformat(), "data_behind_days": days}
        if days > BEHIND_DAYS:
            behind[symbol] = last
    if behind:
        last = max(behind.values())
        named = ", ".join(sorted(behind)[:5]) + (f" and {len(behind) - 5} more" if len(behind) > 5 else "")
        logger.warning(
            "the data of %s ends on %s, %d days before %s: those forecasts are as of their last bar",
            named,
            f"{last:%Y-%m-%d}",
            (asked.normalize() - last.normalize()).days,
            f"{asked:%Y-%m-%d}",
        )


def cmd_status(args: argparse.Namespace) -> dict[str, Any]:
    ctx = CommandContext(args)
    symbols = [validate_symbol(s) for s in args.symbols] or sorted(
        set(ctx.registry.symbols("specific")) | set(ctx.config.data.symbols or ctx.source.symbols())
    )
    from lstm_plugin.training.monitoring import read_snapshot, snapshot_states

    training = snapshot_states(read_snapshot(ctx.registry.root))  # a service running beside this registry
    forecasts = ctx.forecasts(training_state=training.get)
    results = with_tracks(ctx, {s: forecasts.get_model_status(s) for s in symbols})
    if not args.json:
        print(table(status_rows(results)))
        print(STATUS_LEGEND)
        for s, st in results.items():
            if st["candidate"] is not None:
                shelf = st["candidate"]
                print(
                    f"{s}: v{shelf['model_version']} (trained {shelf['trained_at'][:10]}) is shelved: "
                    f"{shelf['reason']}; `lstm-plugin promote {s}` serves it"
                )
    return results


def cmd_service(args: argparse.Namespace) -> dict[str, Any]:
    from lstm_plugin.training.service import TrainingService, read_snapshot

    ctx = CommandContext(args)
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
            rows.append(
                [
                    str(i),
                    entry["symbol"],
                    entry["category"],
                    f"{entry['priority']:g}",
                    entry["status"],
                    ", ".join(entry["reasons"]),
                ]
            )
        print(table(rows))
        if snapshot:
            counts = snapshot.get("counts", {})
            print(
                f"last service ({snapshot.get('backend')}, clock {str(snapshot.get('clock'))[:19]}): "
                f"{len(snapshot.get('queue', []))} queued, {len(snapshot.get('in_flight', []))} training, "
                f"{counts.get('done', 0)} done, {counts.get('failed', 0)} failed"
            )
    return {"plan": plan, "snapshot": snapshot}


def cmd_backtest(args: argparse.Namespace) -> BacktestSummary:
    from lstm_plugin.backtrader.backtest import run_main_job
    from lstm_plugin.backtrader.report import (
        REPORT_FILES,
        check_report_folder,
        comparison_table,
        write_report,
    )

    ctx = CommandContext(args)
    quiet_training_logs(args)
    symbols = ctx.symbols(symbol_list(args.symbols)) or None
    check_report_folder(args.out)  # before minutes of work, not after
    start, end = _backtest_span(args)
    baselines = baseline_list(args.baselines, ctx.config.backtest.baselines)
    chosen = {
        "baselines": baselines,
        "backend": training_backend(ctx.config, args.backend, walk_forward=True),
    }
    config = ctx.config.model_copy(update={"backtest": ctx.config.backtest.model_copy(update=chosen)})
    try:
        result = run_main_job(
            config,
            ctx.source,
            ctx.registry.root,
            symbols,
            start,
            end,
            lstm=not args.no_lstm,
            progress=not (args.quiet or args.json),
            variants=args.variants,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    folder = write_report(result, args.out)
    summary = result.summary()
    summary["report"] = str(folder)
    if not args.json:
        settings = result.settings
        print(
            f"{len(settings['symbols'])} symbols, {settings['start']} .. {settings['end']} "
            f"({settings['bars']} bar{'' if settings['bars'] == 1 else 's'}), "
            f"{settings['rebalance']} rebalances, commission {settings['commission']:.2%}, slippage "
            f"{settings['slippage']:.2%}" + ("" if args.no_lstm else f", trainings on {settings['backend']}")
        )
        print(comparison_table(summary))
        print(f"report: {folder}/ ({', '.join(REPORT_FILES)})")
    return summary


def _backtest_span(args: argparse.Namespace) -> tuple[Any, Any]:
    return (
        date_option(args.start, "--start") or DEFAULT_START,
        date_option(args.end, "--end") or DEFAULT_END,
    )


def cmd_pretrain(args: argparse.Namespace) -> dict[str, Any]:
    from lstm_plugin.backtrader.pretrain import pretrain

    ctx = CommandContext(args)
    quiet_training_logs(args)
    symbols = ctx.symbols(symbol_list(args.symbols)) or None
    start, end = _backtest_span(args)
    backend = training_backend(ctx.config, args.backend, walk_forward=True)
    config = ctx.config.model_copy(
        update={"backtest": ctx.config.backtest.model_copy(update={"backend": backend})}
    )
    try:
        result = pretrain(
            config, ctx.source, ctx.registry.root, symbols, start, end, progress=not (args.quiet or args.json)
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not args.json:
        print(
            f"{len(result['symbols'])} symbols, {result['start']} .. {result['end']}, "
            f"{result['rebalances']} rebalances on {backend}: trained {result['trained']} (promoted "
            f"{result['promoted']}, shelved {result['shelved']}), reused {result['reused']}, failed "
            f"{result['failed']} in "
            f"{result['seconds']:.0f} s; registry {result['registry']}"
        )
        if result["failures"]:  # why, not only how many
            more = len(result["failures"]) - 1
            print(f"failed: {result['failures'][0]}" + (f" [and {more} more in --json]" if more else ""))
    return result


COMMANDS = {
    "train": cmd_train,
    "predict": cmd_predict,
    "status": cmd_status,
    "service": cmd_service,
    "backtest": cmd_backtest,
    "pretrain": cmd_pretrain,
    "promote": cmd_promote,
    "paper": cmd_paper,
    "tune": cmd_tune,
    "dashboard": cmd_dashboard,
}
