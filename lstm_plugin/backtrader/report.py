"""The report folder of ``lstm-plugin backtest``: CSV files, ``summary.json``, pictures and one HTML page.

Pictures are drawn with matplotlib's Agg backend (Backtrader's ``cerebro.plot()`` needs Tk and a
display). The whole report is written into a private temporary folder beside the target and
swapped in at the end, so a run killed at any moment, or two runs writing the same folder, never
leave a folder that mixes two reports: readers see the old report or the new one. A folder that
holds anything else than a report (or a symbolic link) is refused before any work
(:func:`check_report_folder`), since swapping it would lose those files.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import html
import json
import math
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.backtrader.backtest import BacktestResult, BacktestSummary
from lstm_plugin.core import jsonio
from lstm_plugin.core.errors import LSTMPluginError
from lstm_plugin.portfolio.performance import drawdown_series

__all__ = [
    "MANIFEST",
    "REPORT_FILES",
    "ReportError",
    "check_report_folder",
    "comparison_table",
    "write_report",
]

PREDICTION_COLUMNS = [
    "date",
    "symbol",
    "model_type",
    "model_version",
    "predicted_direction",
    "confidence",
    "price_change_pct",
    "expected_log_return",
    "status",
]
#: What happened after each forecast: kept out of predictions.csv, whose rows must depend only on the past.
OUTCOME_COLUMNS = ["date", "symbol", "horizon", "predicted_direction", "expected_log_return", "realized"]
ORDER_COLUMNS = ["date", "symbol", "size", "price", "value", "commission", "created", "strategy"]
REPORT_FILES = (
    "predictions.csv",
    "outcomes.csv",
    "orders.csv",
    "equity.csv",
    "summary.json",
    "equity.png",
    "ic.png",
    "calibration.png",
    "report.html",
)
#: Written last: every file of the report with its sha256 (and what marks a folder as a report).
MANIFEST = "manifest.json"
_SWAP_ATTEMPTS = 50


class ReportError(LSTMPluginError):
    """A report folder that cannot be written (a file, a link, foreign files, no permission)."""


ROWS = (
    ("final value", "final_value", "{:,.0f}"),
    ("total return", "total_return", "{:+.1%}"),
    ("CAGR", "cagr", "{:+.2%}"),
    ("volatility", "volatility", "{:.1%}"),
    ("Sharpe", "sharpe", "{:.2f}"),
    ("Sortino", "sortino", "{:.2f}"),
    ("max drawdown", "max_drawdown", "{:.1%}"),
    ("Calmar", "calmar", "{:.2f}"),
    ("turnover / year", "turnover", "{:.2f}"),
)


def _interval(low: Any, high: Any, pattern: str) -> str:
    """``[low, high]``, or ``-`` when there were too few values for one."""
    if low is None or high is None:
        return "-"
    return f"[{pattern.format(low)}, {pattern.format(high)}]"


def _cell(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return pattern.format(value)


def comparison_table(summary: BacktestSummary) -> str:
    """The terminal table: one column per strategy, then the forecast figures."""
    runs = {
        "lstm": summary.get("lstm"),
        "technical": summary.get("technical"),
        "buy_hold": summary.get("buy_hold"),
    }
    shown = {name: figures for name, figures in runs.items() if figures}
    lines = [f"{'':16s}" + "".join(f"{name:>14s}" for name in shown)]
    for label, key, pattern in ROWS:
        lines.append(f"{label:16s}" + "".join(f"{_cell(f.get(key), pattern):>14s}" for f in shown.values()))
        if key == "sharpe":
            cells = (_interval(f.get("sharpe_low"), f.get("sharpe_high"), "{:.2f}") for f in shown.values())
            lines.append(f"{'  95% interval':16s}" + "".join(f"{c:>14s}" for c in cells))
    difference = summary.get("lstm_minus_technical_sharpe")
    if difference:
        lines.append("")
        lines.append(
            f"lstm - technical Sharpe {_cell(difference['value'], '{:+.2f}')} "
            f"(95% interval {_interval(difference['low'], difference['high'], '{:+.2f}')}, paired by day)"
        )
    forecast = summary.get("forecast")
    if forecast:
        usage = forecast["model_usage"]
        lines.append("")
        lines.append(
            f"forecasts: {forecast['n_predictions']} at {forecast['rebalances']} rebalances; hit rate "
            f"{_cell(forecast['hit_rate'], '{:.3f}')} "
            f"(always the likelier sign: {_cell(forecast['base_rate'], '{:.3f}')}); "
            f"IC {_cell(forecast['ic'], '{:+.3f}')} {_interval(forecast['ic_low'], forecast['ic_high'], '{:+.3f}')} "
            f"(t {_cell(forecast['ic_t'], '{:+.2f}')}); "
            f"rank IC {_cell(forecast['rank_ic'], '{:+.3f}')} "
            f"{_interval(forecast['rank_ic_low'], forecast['rank_ic_high'], '{:+.3f}')} "
            f"(t {_cell(forecast['rank_ic_t'], '{:+.2f}')}); 95% intervals over {forecast['ic_dates']} dates"
        )
        lines.append(
            f"models used: specific {usage['specific']}, universal {usage['universal']}, none "
            f"{usage['none']}; "
            f"trainings: {forecast['trained']} trained, {forecast['reused']} reused, {forecast['failed']} "
            f"failed"
        )
    for caveat in summary.get("caveats") or []:
        lines.append(f"caveat: {caveat}")
    return "\n".join(lines)


def _pictures(result: BacktestResult, folder: Path) -> None:
    """``equity.png``, ``ic.png`` and ``calibration.png``, drawn headless (Agg)."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    for draw, name in (
        (_equity_picture, "equity.png"),
        (_ic_picture, "ic.png"),
        (_calibration_picture, "calibration.png"),
    ):
        figure = draw(plt, result)
        figure.tight_layout()
        figure.savefig(folder / name, dpi=110)
        plt.close(figure)


def _equity_picture(plt: Any, result: BacktestResult) -> Any:
    cash = float(result.settings["cash"])
    figure, (top, bottom) = plt.subplots(
        2, 1, figsize=(10, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]}
    )
    for name in result.equity.columns:
        curve = result.equity[name]
        top.plot(curve.index, curve / cash, label=name, linewidth=1.3)
        bottom.plot(curve.index, -100 * drawdown_series(curve, cash), linewidth=1.0, label=name)
    top.set_ylabel("value / starting cash")
    top.set_title(
        f"{len(result.settings['symbols'])} symbols, {result.settings['start']} .. {result.settings['end']}, "
        f"{result.settings['rebalance']} rebalances, costs on"
    )
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    return figure


def _ic_picture(plt: Any, result: BacktestResult) -> Any:
    figure, axis = plt.subplots(figsize=(10, 3.8))
    rows = (result.forecast or {}).get("ic_by_date") or []
    if rows:
        frame = pd.DataFrame(rows)
        dates = pd.to_datetime(frame["date"])
        axis.bar(dates, frame["rank_ic"], width=20, alpha=0.5, label="rank IC per rebalance")
        axis.plot(dates, frame["rank_ic"].expanding().mean(), color="black", label="running mean")
        summary = (result.forecast or {}).get("rank_ic") or {}
        if summary.get("low") is not None and summary.get("high") is not None:
            label = f"95% interval of the mean ({summary['low']:+.3f} .. {summary['high']:+.3f})"
            axis.axhspan(summary["low"], summary["high"], color="tab:blue", alpha=0.15, label=label)
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.legend(loc="upper left")
    else:
        axis.text(0.5, 0.5, "no forecasts", ha="center", va="center", transform=axis.transAxes)
    axis.set_title("Spearman IC of expected vs realised return across symbols, per rebalance")
    return figure


def _calibration_picture(plt: Any, result: BacktestResult) -> Any:
    figure, axis = plt.subplots(figsize=(5.5, 5))
    buckets = [row for row in (result.forecast or {}).get("calibration", []) if row["n"]]
    axis.plot([1 / 3, 1], [1 / 3, 1], color="grey", linestyle="--", label="perfectly calibrated")
    if buckets:
        axis.plot(
            [b["mean_confidence"] for b in buckets],
            [b["accuracy"] for b in buckets],
            marker="o",
            label="forecasts",
        )
        for b in buckets:
            axis.annotate(
                str(b["n"]),
                (b["mean_confidence"], b["accuracy"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
    axis.set_xlabel("confidence (probability of the predicted class)")
    axis.set_ylabel("share that came true")
    axis.set_title("Calibration (labels: forecasts per bucket)")
    axis.legend(loc="upper left")
    return figure


def _html(summary: BacktestSummary) -> str:
    table = html.escape(comparison_table(summary))
    settings = html.escape(jsonio.dumps(summary["settings"], indent=2))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lstm-plugin backtest</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} pre{{background:#f6f6f6;padding:1em}} img{{max-width:100%}}</style>
</head><body>
<h1>lstm-plugin backtest</h1>
<pre>{table}</pre>
<h2>Equity and drawdowns</h2><img src="equity.png" alt="equity curves">
<h2>Forecast skill</h2><img src="ic.png" alt="IC over time"><img src="calibration.png" alt="calibration">
<h2>Settings</h2><pre>{settings}</pre>
<p>Data: predictions.csv, outcomes.csv, orders.csv, equity.csv, summary.json.</p>
</body></html>
"""


def check_report_folder(folder: str | Path) -> Path:
    """Refuse, before any work, a report folder that the final swap could not replace safely.

    It may not exist yet, or be a folder holding only report files; it may not be a file or a
    symbolic link, nor hold anything else (those files would be lost). Its parent must be
    writable: a probe folder is created there and removed. Raises :class:`ReportError`.
    """
    given, path = Path(folder), Path(os.path.abspath(folder))  # '.', '..' and 'x/..' get a real name
    if path.is_symlink():
        raise ReportError(f"--out › {given} is a symbolic link; give the folder itself")
    if path.exists():
        if not path.is_dir():
            raise ReportError(f"--out › {given} is a file, not a folder")
        known = {*REPORT_FILES, MANIFEST}
        try:
            foreign = sorted(
                e.name
                for e in os.scandir(path)
                if e.name not in known or not e.is_file(follow_symlinks=False)
            )
        except OSError as exc:
            raise ReportError(f"--out › cannot read {given}: {exc.strerror or exc}") from None
        if foreign:
            more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
            raise ReportError(
                f"--out › {given} holds {foreign[0]}{more}, which is not part of a report; choose a new "
                f"folder "
                "or one that holds only a report (it is replaced as a whole)"
            )
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tempfile.mkdtemp(prefix=f".{path.name}.{os.getpid()}.probe-", dir=path.parent))
    except OSError as exc:
        raise ReportError(f"--out › cannot write a report in {path.parent}: {exc.strerror or exc}") from None
    return given


def _remove_leftovers(parent: Path, name: str) -> None:
    """Staging and retired folders of writers that died (their pid is gone)."""
    pattern = re.compile(rf"^\.{re.escape(name)}\.(\d+)\.(?:tmp|old|probe)-")
    for entry in os.scandir(parent):
        match = pattern.match(entry.name)
        if match and entry.is_dir(follow_symlinks=False) and not _alive(int(match.group(1))):
            shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _swap_in(staging: Path, folder: Path) -> None:
    """Make ``staging`` the report at ``folder``; the old report is moved aside, then deleted.

    Another writer may swap its own report in at the same time: the last one to finish wins,
    whole. Between the two renames the folder is briefly absent, never mixed. Any other failure
    puts the old report back.
    """
    for _ in range(_SWAP_ATTEMPTS):
        retired = None
        if os.path.lexists(folder):
            retired = folder.with_name(f".{folder.name}.{os.getpid()}.old-{uuid.uuid4().hex[:8]}")
            try:
                os.rename(folder, retired)
            except FileNotFoundError:  # another writer moved it first
                retired = None
        try:
            os.rename(staging, folder)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                if retired is not None:
                    os.rename(retired, folder)
                raise ReportError(
                    f"--out › cannot put the report in place at {folder}: {exc.strerror or exc}"
                ) from None
            # another writer's report landed in between: the old one goes, ours replaces theirs next
        else:
            return
        finally:
            if retired is not None and os.path.lexists(retired):
                shutil.rmtree(retired, ignore_errors=True)
    raise ReportError(
        f"--out › {folder} kept changing while this report was swapped in; another run's report is in place"
    )


def _files(result: BacktestResult, summary: BacktestSummary) -> dict[str, bytes]:
    """The CSV, JSON and HTML files of a report, as bytes."""
    records = pd.DataFrame(
        (result.forecast or {}).get("records", []), columns=sorted(set(PREDICTION_COLUMNS + OUTCOME_COLUMNS))
    )
    records["date"] = records["date"].str[:10]
    records = records.sort_values(["date", "symbol"], kind="stable")
    equity = result.equity.copy()
    equity.index = equity.index.strftime("%Y-%m-%d")
    return {
        "predictions.csv": records[PREDICTION_COLUMNS].to_csv(index=False).encode(),
        "outcomes.csv": records[OUTCOME_COLUMNS].to_csv(index=False).encode(),
        "orders.csv": pd.DataFrame(result.orders, columns=ORDER_COLUMNS).to_csv(index=False).encode(),
        "equity.csv": equity.to_csv(index_label="date").encode(),
        "summary.json": jsonio.dumps(summary, indent=2).encode(),
        "report.html": _html(summary).encode(),
    }


def write_report(result: BacktestResult, folder: str | Path) -> Path:
    """Write every file of :data:`REPORT_FILES` and the :data:`MANIFEST` into ``folder``, as a whole."""
    given = check_report_folder(folder)
    folder = Path(os.path.abspath(given))
    _remove_leftovers(folder.parent, folder.name)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{os.getpid()}.tmp-", dir=folder.parent))
    try:
        os.chmod(staging, 0o755)
        for name, blob in _files(result, result.summary()).items():
            (staging / name).write_bytes(blob)
        _pictures(result, staging)
        digests = {name: hashlib.sha256((staging / name).read_bytes()).hexdigest() for name in REPORT_FILES}
        (staging / MANIFEST).write_text(json.dumps({"files": digests}, indent=2))
        _swap_in(staging, folder)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise
    return given
