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
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path

import pandas as pd

from lstm_plugin.backtrader.backtest import BacktestResult, BacktestSummary
from lstm_plugin.backtrader.pictures import draw_pictures
from lstm_plugin.backtrader.summary_table import comparison_table
from lstm_plugin.core import jsonio
from lstm_plugin.core.errors import LSTMPluginError

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
ORDER_COLUMNS = [
    "date",
    "symbol",
    "size",
    "price",
    "value",
    "commission",
    "created",
    "strategy",
    "reason",
    "exit_reason",
    "forecast",
    "model_version",
]
REPORT_FILES = (
    "predictions.csv",
    "outcomes.csv",
    "forecasts_daily.csv",
    "outcomes_daily.csv",
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


def _html(summary: BacktestSummary) -> str:
    table = html.escape(comparison_table(summary))
    settings = html.escape(jsonio.dumps(summary["settings"], indent=2))
    links = ", ".join(
        f'<a href="{name}">{name}</a>' for name in REPORT_FILES if name.endswith((".csv", ".json"))
    )
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>lstm-plugin backtest</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto}} pre{{background:#f6f6f6;padding:1em}} img{{max-width:100%}}</style>
</head><body>
<h1>lstm-plugin backtest</h1>
<pre>{table}</pre>
<h2>Equity and drawdowns</h2><img src="equity.png" alt="equity curves">
<h2>Forecast skill</h2><img src="ic.png" alt="IC over time"><img src="calibration.png" alt="calibration">
<h2>Settings</h2><pre>{settings}</pre>
<p>Data: {links}.</p>
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


def _daily_csv(result: BacktestResult, key: str, columns: list[str]) -> bytes:
    """A daily table of the forecast analyzer (its header alone when the run measured no daily evidence)."""
    frame = result.forecast_value(key)
    if frame is None:
        frame = pd.DataFrame(columns=["date", "symbol", *columns])
    frame = frame.assign(date=pd.to_datetime(frame["date"]).dt.strftime("%Y-%m-%d"))
    return frame.to_csv(index=False).encode()


def _files(result: BacktestResult, summary: BacktestSummary) -> dict[str, bytes]:
    """The CSV, JSON and HTML files of a report, as bytes."""
    records = pd.DataFrame(
        result.forecast_value("records", []), columns=sorted(set(PREDICTION_COLUMNS + OUTCOME_COLUMNS))
    )
    records["date"] = records["date"].str[:10]
    records = records.sort_values(["date", "symbol"], kind="stable")
    equity = result.equity.copy()
    equity.index = equity.index.strftime("%Y-%m-%d")
    return {
        "predictions.csv": records[PREDICTION_COLUMNS].to_csv(index=False).encode(),
        "outcomes.csv": records[OUTCOME_COLUMNS].to_csv(index=False).encode(),
        "forecasts_daily.csv": _daily_csv(result, "daily", ["model_type", "model_version", "lstm"]),
        "outcomes_daily.csv": _daily_csv(result, "daily_outcomes", []),
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
        summary = result.summary()
        summary["report"] = str(given)  # as ``--json`` prints it: the same object
        for name, blob in _files(result, summary).items():
            (staging / name).write_bytes(blob)
        draw_pictures(result, staging)
        digests = {name: hashlib.sha256((staging / name).read_bytes()).hexdigest() for name in REPORT_FILES}
        (staging / MANIFEST).write_text(json.dumps({"files": digests}, indent=2))
        _swap_in(staging, folder)
    except BaseException:
        with contextlib.suppress(OSError):
            shutil.rmtree(staging)
        raise
    return given
