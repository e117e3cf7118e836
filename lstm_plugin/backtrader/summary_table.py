"""The terminal table of ``lstm-plugin backtest`` (also the top of ``report.html``), from its summary."""

from __future__ import annotations

import math
from typing import Any

from lstm_plugin.backtrader.backtest import BacktestSummary

__all__ = ["comparison_table", "evidence_lines"]

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
    if forecast and forecast["weight"]["mode"] == "adaptive":
        weight = forecast["weight"]
        lines.append(
            f"lstm weight (adaptive, earned by the trailing rank IC): mean {_cell(weight['mean'], '{:.3f}')}, "
            f"0 at {weight['zero']} of {len(weight['by_rebalance'])} rebalances, last {_cell(weight['last'], '{:.3f}')}"
        )
    evidence = forecast.get("evidence") if forecast else None
    if evidence:
        lines += ["", *evidence_lines(evidence)]
    for caveat in summary.get("caveats") or []:
        lines.append(f"caveat: {caveat}")
    return "\n".join(lines)


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
        "forecast evidence: mean rank IC across symbols with its 95% interval "
        "(daily: every bar; rebalance: rebalance days only)",
        f"{'':{width}s}"
        + "".join(f"{f'{horizons[label]} bars, {sample}':>24s}" for label, sample in columns),
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
            f"{_cell(f[label]['hit_rate'], '{:.3f}')} ({_cell(f[label]['base_rate'], '{:.3f}')}) at "
            f"{horizons[label]} bars"
            for label in horizons
        )
        for name, f in evidence["forecasters"].items()
        if any(f[label]["hit_rate"] is not None for label in horizons)
    ]
    if hits:
        lines.append("daily hit rate (always the likelier sign): " + "; ".join(hits))
    return lines
