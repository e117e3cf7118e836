"""The Backtests page: each report folder's comparison table, forecast evidence and caveats.

A report folder is written whole and swapped in (:mod:`lstm_plugin.backtrader.report`), so its
``summary.json`` is read as it is; its equity picture is served by the folder's position in the list the
command line gave, never by a path from the request.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lstm_plugin.core.errors import LSTMPluginError
from lstm_plugin.portfolio.variant_statistics import STATISTICS

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

RUNS = ("lstm", "technical", "buy_hold")
METRICS = (
    "final_value",
    "total_return",
    "cagr",
    "volatility",
    "sharpe",
    "sharpe_low",
    "sharpe_high",
    "sortino",
    "max_drawdown",
    "calmar",
    "turnover",
)
FORECAST = (
    "hit_rate",
    "base_rate",
    "n_directional",
    "ic",
    "ic_low",
    "ic_high",
    "rank_ic",
    "rank_ic_low",
    "rank_ic_high",
    "ic_dates",
    "n_predictions",
)
#: The pictures a page may ask a report for, by name.
PICTURES = ("equity.png", "ic.png", "calibration.png")


def _section(summary: dict[str, Any], key: str) -> dict[str, Any]:
    value = summary.get(key)
    return value if isinstance(value, dict) else {}


def _variants(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's variants, each with its figures, exits and paired differences against ``base``."""
    rows = []
    for name, variant in _section(summary, "variants").items():
        if not isinstance(variant, dict):
            continue
        figures, against = _section(variant, "figures"), _section(variant, "vs_base")
        rows.append(
            {
                "name": str(name),
                **{k: figures.get(k) for k in STATISTICS},
                "exits": variant.get("exits"),
                "vs_base": {k: _section(against, k) for k in STATISTICS},
            }
        )
    return rows


def report_view(folder: Path) -> dict[str, Any]:
    """One report's section (``/api/backtests``); an :class:`LSTMPluginError` when its summary is damaged."""
    try:
        summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        raise LSTMPluginError(f"{folder / 'summary.json'} › unreadable: {exc}") from None
    if not isinstance(summary, dict):
        raise LSTMPluginError(f"{folder / 'summary.json'} › not a JSON object")
    runs = [
        {"run": run, **{m: summary[run].get(m) for m in METRICS}}
        for run in RUNS
        if isinstance(summary.get(run), dict)
    ]
    forecast, settings = _section(summary, "forecast"), _section(summary, "settings")
    evidence = _section(forecast, "evidence")
    return {
        "folder": str(folder),
        "name": folder.name,
        "settings": {k: v for k, v in settings.items() if k != "symbols"}
        | {"symbols": len(settings.get("symbols") or [])},
        "runs": runs,
        "forecast": {k: forecast.get(k) for k in FORECAST},
        "model_usage": forecast.get("model_usage"),
        "evidence": evidence,
        "difference": summary.get("lstm_minus_technical_sharpe"),
        "variants": _variants(summary),
        "caveats": summary.get("caveats") or [],
        "pictures": [name for name in PICTURES if (folder / name).is_file()],
    }
