"""The terminal table of ``lstm-plugin backtest`` (also the top of ``report.html``), from its summary."""

from __future__ import annotations

import math
from typing import Any

from lstm_plugin.backtrader.backtest import BacktestSummary
from lstm_plugin.portfolio.performance import MIN_INTERVAL_DAYS

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

ROWS = (
    ("final value", "final_value", "{:,.0f}"),
    ("total return", "total_return", "{:+.1%}"),
    ("CAGR", "cagr", "{:+.2%}"),
    ("volatility", "volatility", "{:.1%}"),
    ("Sharpe (risk-free 0)", "sharpe", "{:.2f}"),
    ("Sortino", "sortino", "{:.2f}"),
    ("max drawdown", "max_drawdown", "{:.1%}"),
    ("Calmar (CAGR / max DD)", "calmar", "{:.2f}"),
    ("turnover / year, one-way", "turnover", "{:.2f}"),
)
INTERVAL = "  95% interval"
TOO_FEW = "too few days for an interval"
MIN_WIDTH = 14  # a column is at least this wide, and as wide as its widest cell plus two


def _interval(low: Any, high: Any, pattern: str) -> str:
    """``[low, high]``, or ``-`` when there were too few values for one."""
    if low is None or high is None:
        return "-"
    return f"[{pattern.format(low)}, {pattern.format(high)}]"


def _cell(value: Any, pattern: str) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return pattern.format(value)


def _grid(rows: list[tuple[str, list[str]]], header: list[str]) -> list[str]:
    """Label-first rows, every column as wide as its content (a 1e12 portfolio never runs together)."""
    label_width = max(len(label) for label, _ in rows) + 2
    widths = [
        max(MIN_WIDTH, *(len(cells[i]) + 2 for _, cells in rows), len(header[i]) + 2)
        for i in range(len(header))
    ]
    lines = [" " * label_width + "".join(f"{name:>{w}s}" for name, w in zip(header, widths))]
    for label, cells in rows:
        lines.append(f"{label:{label_width}s}" + "".join(f"{cell:>{w}s}" for cell, w in zip(cells, widths)))
    return lines


def comparison_table(summary: BacktestSummary) -> str:
    """The terminal table: one column per strategy, then the forecast figures."""
    runs = {
        "lstm": summary.get("lstm"),
        "technical": summary.get("technical"),
        "buy_hold": summary.get("buy_hold"),
    }
    shown = {name: figures for name, figures in runs.items() if figures}
    rows: list[tuple[str, list[str]]] = []
    for label, key, pattern in ROWS:
        rows.append((label, [_cell(f.get(key), pattern) for f in shown.values()]))
        if key == "sharpe":
            cells = [_interval(f.get("sharpe_low"), f.get("sharpe_high"), "{:.2f}") for f in shown.values()]
            rows.append((INTERVAL, cells))
    lines = _grid(rows, list(shown))
    bars = int((summary.get("settings") or {}).get("bars") or 0)
    if bars < MIN_INTERVAL_DAYS:  # said in words, not as a row of dashes
        at = next(i for i, line in enumerate(lines) if line.startswith(INTERVAL))
        lines[at] = (
            f"{INTERVAL}   {TOO_FEW} ({bars} day{'' if bars == 1 else 's'}; at least {MIN_INTERVAL_DAYS})"
        )
    difference = summary.get("lstm_minus_technical_sharpe")
    if difference:
        lines.append("")
        interval = _interval(difference["low"], difference["high"], "{:+.2f}")
        lines.append(
            f"lstm - technical Sharpe {_cell(difference['value'], '{:+.2f}')} "
            + (f"(95% interval {interval}, paired by day)" if interval != "-" else f"({TOO_FEW})")
        )
    variants = summary.get("variants")
    if variants:
        lines += ["", *variant_lines(variants)]
    forecast = summary.get("forecast")
    if forecast:
        lines += ["", *_forecast_lines(forecast)]
    evidence = forecast.get("evidence") if forecast else None
    if evidence:
        lines += ["", *evidence_lines(evidence)]
    for caveat in summary.get("caveats") or []:
        lines.append(f"caveat: {caveat}")
    return "\n".join(lines)


def _forecast_lines(forecast: Any) -> list[str]:
    """The forecasts' figures, the models behind them and the trainings, under the table."""
    lines: list[str] = []
    usage = forecast["model_usage"]
    lines.append(
        f"forecasts: {forecast['n_predictions']} at {forecast['rebalances']} rebalances; up/down calls right "
        f"{_cell(forecast['hit_rate'], '{:.3f}')} of {forecast.get('n_directional', 0)} (neutral ones make no "
        f"call; always the likelier sign: {_cell(forecast['base_rate'], '{:.3f}')}); "
        f"IC {_cell(forecast['ic'], '{:+.3f}')} {_interval(forecast['ic_low'], forecast['ic_high'], '{:+.3f}')} "
        f"(t {_cell(forecast['ic_t'], '{:+.2f}')}); "
        f"rank IC {_cell(forecast['rank_ic'], '{:+.3f}')} "
        f"{_interval(forecast['rank_ic_low'], forecast['rank_ic_high'], '{:+.3f}')} "
        f"(t {_cell(forecast['rank_ic_t'], '{:+.2f}')}); 95% intervals over {forecast['ic_dates']} dates"
    )
    age = forecast["model_age"]
    lines.append(
        f"models used: specific {usage['specific']}, universal {usage['universal']}, none "
        f"{usage['none']}; their age at the bar: median {_cell(age['median_days'], '{:.0f}')} days, "
        f"{_cell(age['over_6_months'], '{:.1%}')} over 6 months"
    )
    shelved = ", ".join(f"{n} {rule}" for rule, n in forecast["shelved_rules"].items())
    lines.append(
        f"trainings: {forecast['trained']} trained, {forecast['reused']} reused, {forecast['failed']} "
        f"failed; promoted {forecast['promoted']}, shelved {forecast['shelved']}"
        + (f" ({shelved})" if shelved else "")
    )
    weight = forecast["weight"]
    if weight["mode"] == "adaptive":
        lines.append(
            f"lstm weight (adaptive, earned by the trailing rank IC): mean {_cell(weight['mean'], '{:.3f}')}, "
            f"0 at {weight['zero']} of {len(weight['by_rebalance'])} rebalances, last "
            f"{_cell(weight['last'], '{:.3f}')}"
        )
    return lines


def _estimate_cell(estimate: Any) -> str:
    if not estimate or estimate.get("value") is None:
        return "-"
    return f"{estimate['value']:+.3f} {_interval(estimate['low'], estimate['high'], '{:+.2f}')}"


def evidence_lines(evidence: dict[str, Any]) -> list[str]:
    """The forecast section: each forecaster's mean rank IC with its interval at both horizons, daily
    and on rebalance days, the paired differences against the LSTM, and the hit rates."""
    horizons: dict[
        str, int
    ] = {}  # one set of columns per distinct horizon (the model's may be the holding period)
    for label, bars in evidence["horizons"].items():
        if bars not in horizons.values():
            horizons[label] = bars
    columns = [(label, sample) for label in horizons for sample in ("daily", "rebalance")]
    width = 22
    lines = [
        "forecast evidence: the mean over days of each day's rank IC across symbols, with its 95% interval "
        "(daily: every bar; rebalance: rebalance days only)",
        f"{'':{width}s}"
        + "".join(f"{f'{_bars(horizons[label])}, {sample}':>24s}" for label, sample in columns),
    ]
    for name, figures in evidence["forecasters"].items():
        cells = (_estimate_cell(figures[label][sample]) for label, sample in columns)
        lines.append(f"{name:{width}s}" + "".join(f"{cell:>24s}" for cell in cells))
    for name, figures in evidence["differences"].items():
        cells = (_estimate_cell(figures[label][sample]) for label, sample in columns)
        lines.append(f"{evidence['reference'] + ' - ' + name:{width}s}" + "".join(f"{c:>24s}" for c in cells))
    hits = [
        f"{name} "
        + ", ".join(
            f"{_cell(f[label]['hit_rate'], '{:.3f}')} ({_cell(f[label]['base_rate'], '{:.3f}')}) of "
            f"{f[label].get('n', 0):,} at {_bars(horizons[label])}"
            for label in horizons
        )
        for name, f in evidence["forecasters"].items()
        if any(f[label]["hit_rate"] is not None for label in horizons)
    ]
    if hits:
        lines.append(
            "sign of the expected return right, every (day, symbol) pair (always the likelier sign): "
            + "; ".join(hits)
        )
    return lines


def _bars(count: int) -> str:
    return f"{count} bar{'' if count == 1 else 's'}"


#: a variant's figures: label, key, format of the figure, format of its difference
VARIANT_ROWS = (
    ("Sharpe", "sharpe", "{:.2f}", "{:+.2f}"),
    ("max drawdown", "max_drawdown", "{:.1%}", "{:+.1%}"),
    ("turnover / year, one-way", "turnover", "{:.2f}", "{:+.2f}"),
    ("costs / year, of value", "costs", "{:.2%}", "{:+.2%}"),
)


def variant_lines(variants: dict[str, Any]) -> list[str]:
    """The variants side by side: each figure, then its paired difference against ``base`` with the 95%
    interval (docs/exits-and-risk.md)."""
    rows: list[tuple[str, list[str]]] = []
    for label, key, pattern, signed in VARIANT_ROWS:
        rows.append((label, [_cell(v["figures"][key], pattern) for v in variants.values()]))
        cells = []
        for variant in variants.values():
            difference = (variant["vs_base"] or {}).get(key)
            if not difference or difference["value"] is None:
                cells.append("-")
                continue
            interval = _interval(difference["low"], difference["high"], signed)
            cells.append(signed.format(difference["value"]) + ("" if interval == "-" else f" {interval}"))
        rows.append(("  - base, 95% interval", cells))
    rows.append(("exits filled", [str(v["exits"]) for v in variants.values()]))
    rows.append(
        (
            "exposure, mean (least)",
            [
                "-"
                if v["exposure"] is None
                else f"{v['exposure']['mean']:.0%} ({v['exposure']['least']:.0%})"
                for v in variants.values()
            ],
        )
    )
    return [
        "variants of the lstm strategy on the same models (differences paired by day)",
        *_grid(rows, list(variants)),
    ]
