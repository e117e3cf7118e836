"""The report folder of ``lstm-plugin backtest``: CSV files, ``summary.json``, pictures and one HTML page.

Pictures are drawn with matplotlib's Agg backend (Backtrader's ``cerebro.plot()`` needs Tk and a
display). Files are written to a temporary name and renamed, so a report is never half written.
"""

from __future__ import annotations

import html
import json
import math
import os
from pathlib import Path
from typing import Any

import pandas as pd

from .backtest import STRATEGIES, BacktestResult
from .performance import drawdown_series

__all__ = ["REPORT_FILES", "write_report", "comparison_table"]

PREDICTION_COLUMNS = [
    "date", "symbol", "model_type", "model_version", "predicted_direction", "confidence", "price_change_pct",
    "expected_log_return", "status",
]
#: What happened after each forecast: kept out of predictions.csv, whose rows must depend only on the past.
OUTCOME_COLUMNS = ["date", "symbol", "horizon", "predicted_direction", "expected_log_return", "realized"]
ORDER_COLUMNS = ["date", "symbol", "size", "price", "value", "commission", "created", "strategy"]
REPORT_FILES = (
    "predictions.csv", "outcomes.csv", "orders.csv", "equity.csv", "summary.json", "equity.png", "ic.png", "calibration.png", "report.html",
)
ROWS = (
    ("final value", "final_value", "{:,.0f}"), ("total return", "total_return", "{:+.1%}"), ("CAGR", "cagr", "{:+.2%}"),
    ("volatility", "volatility", "{:.1%}"), ("Sharpe", "sharpe", "{:.2f}"), ("Sortino", "sortino", "{:.2f}"),
    ("max drawdown", "max_drawdown", "{:.1%}"), ("Calmar", "calmar", "{:.2f}"), ("turnover / year", "turnover", "{:.2f}"),
)


def _write(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _cell(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return pattern.format(value)


def comparison_table(summary: dict[str, Any]) -> str:
    """The terminal table: one column per strategy, then the forecast figures."""
    names = [name for name in STRATEGIES if summary.get(name)]
    lines = [f"{'':16s}" + "".join(f"{name:>14s}" for name in names)]
    for label, key, pattern in ROWS:
        lines.append(f"{label:16s}" + "".join(f"{_cell(summary[name].get(key), pattern):>14s}" for name in names))
    forecast = summary.get("forecast")
    if forecast:
        usage = forecast["model_usage"]
        lines.append("")
        lines.append(
            f"forecasts: {forecast['n_predictions']} at {forecast['rebalances']} rebalances; hit rate {_cell(forecast['hit_rate'], '{:.3f}')} "
            f"(always the likelier sign: {_cell(forecast['base_rate'], '{:.3f}')}); "
            f"IC {_cell(forecast['ic'], '{:+.3f}')} (ICIR {_cell(forecast['icir'], '{:+.2f}')}); "
            f"rank IC {_cell(forecast['rank_ic'], '{:+.3f}')} (ICIR {_cell(forecast['rank_icir'], '{:+.2f}')})"
        )
        lines.append(
            f"models used: specific {usage['specific']}, universal {usage['universal']}, none {usage['none']}; "
            f"trainings: {forecast['trained']} trained, {forecast['reused']} reused, {forecast['failed']} failed"
        )
    return "\n".join(lines)


def _pictures(result: BacktestResult, folder: Path) -> None:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    cash = float(result.settings["cash"])
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    for name in result.equity.columns:
        curve = result.equity[name]
        top.plot(curve.index, curve / cash, label=name, linewidth=1.3)
        bottom.plot(curve.index, -100 * drawdown_series(curve, cash), linewidth=1.0, label=name)
    top.set_ylabel("value / starting cash")
    top.set_title(f"{len(result.settings['symbols'])} symbols, {result.settings['start']} .. {result.settings['end']}, "
                  f"{result.settings['rebalance']} rebalances, costs on")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(folder / "equity.png", dpi=110)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(10, 3.8))
    rows = (result.forecast or {}).get("ic_by_date") or []
    if rows:
        frame = pd.DataFrame(rows)
        dates = pd.to_datetime(frame["date"])
        axis.bar(dates, frame["rank_ic"], width=20, alpha=0.5, label="rank IC per rebalance")
        axis.plot(dates, frame["rank_ic"].expanding().mean(), color="black", label="running mean")
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.legend(loc="upper left")
    else:
        axis.text(0.5, 0.5, "no forecasts", ha="center", va="center", transform=axis.transAxes)
    axis.set_title("Spearman IC of expected vs realised return across symbols, per rebalance")
    figure.tight_layout()
    figure.savefig(folder / "ic.png", dpi=110)
    plt.close(figure)

    figure, axis = plt.subplots(figsize=(5.5, 5))
    buckets = [row for row in (result.forecast or {}).get("calibration", []) if row["n"]]
    axis.plot([1 / 3, 1], [1 / 3, 1], color="grey", linestyle="--", label="perfectly calibrated")
    if buckets:
        axis.plot([b["mean_confidence"] for b in buckets], [b["accuracy"] for b in buckets], marker="o", label="forecasts")
        for b in buckets:
            axis.annotate(str(b["n"]), (b["mean_confidence"], b["accuracy"]), textcoords="offset points", xytext=(4, 4), fontsize=8)
    axis.set_xlabel("confidence (probability of the predicted class)")
    axis.set_ylabel("share that came true")
    axis.set_title("Calibration (labels: forecasts per bucket)")
    axis.legend(loc="upper left")
    figure.tight_layout()
    figure.savefig(folder / "calibration.png", dpi=110)
    plt.close(figure)


def _html(summary: dict[str, Any]) -> str:
    table = html.escape(comparison_table(summary))
    settings = html.escape(json.dumps(summary["settings"], indent=2))
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


def write_report(result: BacktestResult, folder: str | Path) -> Path:
    """Write every file of :data:`REPORT_FILES` into ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    records = pd.DataFrame((result.forecast or {}).get("records", []), columns=sorted(set(PREDICTION_COLUMNS + OUTCOME_COLUMNS)))
    records["date"] = records["date"].str[:10]
    records = records.sort_values(["date", "symbol"], kind="stable")
    _write(folder / "predictions.csv", records[PREDICTION_COLUMNS].to_csv(index=False).encode())
    _write(folder / "outcomes.csv", records[OUTCOME_COLUMNS].to_csv(index=False).encode())
    orders = pd.DataFrame(result.orders, columns=ORDER_COLUMNS)
    _write(folder / "orders.csv", orders.to_csv(index=False).encode())
    equity = result.equity.copy()
    equity.index = equity.index.strftime("%Y-%m-%d")
    _write(folder / "equity.csv", equity.to_csv(index_label="date").encode())
    summary = result.summary()
    _write(folder / "summary.json", json.dumps(summary, indent=2, default=str).encode())
    _pictures(result, folder)
    _write(folder / "report.html", _html(summary).encode())
    return folder
