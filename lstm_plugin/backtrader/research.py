"""Compare forecast settings walk-forward, each with its intervals (docs/forecast-evidence.md, *Choosing*).

:func:`compare_settings` runs the main job once per setting — each into its own empty registry, so
no setting reuses another's models — and lays the evidence side by side: the LSTM's mean daily rank
IC at the holding period (the criterion, chosen before looking: what a held position earns) and at
the model's horizon, the paired difference against the ridge baseline, the daily hit rate beside its
base rate, ``lstm − technical`` Sharpe, and each later setting's daily rank IC minus the first's,
paired by day, each with its 95 % interval.
``notebooks/forecast_research.ipynb`` runs it on a small slice; ``research/forecast_study.py`` on
the development and confirmation periods.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.backtrader.backtest import run_main_job
from lstm_plugin.core.config import Config, validate_config
from lstm_plugin.core.data import DataSource
from lstm_plugin.core.statistics import Estimate, estimate_mean
from lstm_plugin.serving.evidence import rank_ic_by_date

__all__ = [
    "SETTINGS",
    "compare_settings",
    "daily_rank_ic",
    "evidence_row",
    "paired_difference",
    "trading_in",
    "with_changes",
]

#: The settings the study compares, as changes to a base config.
SETTINGS: dict[str, dict[str, Any]] = {
    "return, 5 bars": {},
    "excess, 5 bars": {"model": {"target": "excess"}},
    "excess, holding period": {"model": {"target": "excess", "horizon": "rebalance"}},
    "excess, holding period, ensemble": {
        "model": {
            "target": "excess",
            "horizon": "rebalance",
            "ensemble": [{"window": 30, "hidden_size": 32}, {"cell": "gru", "window": 10, "hidden_size": 16}],
            "ensemble_weights": "ic",
        }
    },
    "return, 5 bars, warm starts": {"model": {"warm_start": True}},
    "return, 5 bars, tuned yearly": {"tuning": {"every_days": 365, "trials": 20, "trials_per_pass": 40}},
    "return, 5 bars, universal tuned once": {
        "tuning": {"models": "universal", "every_days": 36_500, "trials": 20, "trials_per_pass": 20}
    },
}


def with_changes(base: Config, changes: Mapping[str, Any]) -> Config:
    """``base`` with ``changes`` merged in section by section, validated like a config file."""
    merged = base.model_dump(mode="json", by_alias=True, exclude_none=True)  # a fresh dict
    for section, values in changes.items():
        merged[section] = {**merged.get(section, {}), **values}
    return validate_config(merged, "settings")


def trading_in(source: DataSource, start: str, end: str) -> list[str]:
    """The symbols of ``source`` with bars between ``start`` and ``end``: a stock listed after the period
    has nothing to forecast in it (17 of datasets/sp500_2021's 404 for 2005-2014)."""
    return [s for s in source.symbols() if not source.load(s).loc[start:end].empty]


def _interval(estimate: Mapping[str, Any] | None) -> tuple[Any, Any, Any]:
    if not estimate:
        return None, None, None
    return estimate.get("value"), estimate.get("low"), estimate.get("high")


def evidence_row(summary: Mapping[str, Any]) -> dict[str, Any]:
    """One setting's figures from a main-job summary."""
    evidence = summary["forecast"]["evidence"]
    lstm = evidence["forecasters"]["lstm"]
    ridge = evidence["differences"].get("ridge", {})
    row: dict[str, Any] = {}
    for label in ("holding", "model"):
        value, low, high = _interval(lstm[label]["daily"])
        row.update({f"rank_ic_{label}": value, f"rank_ic_{label}_low": low, f"rank_ic_{label}_high": high})
    value, low, high = _interval((ridge.get("holding") or {}).get("daily"))
    row.update({"minus_ridge": value, "minus_ridge_low": low, "minus_ridge_high": high})
    row.update(hit_rate=lstm["holding"]["hit_rate"], base_rate=lstm["holding"]["base_rate"])
    value, low, high = _interval(summary.get("lstm_minus_technical_sharpe"))
    row.update({"minus_technical_sharpe": value, "sharpe_low": low, "sharpe_high": high})
    row.update(horizon=evidence["horizons"]["model"], holding=evidence["horizons"]["holding"])
    return row


def daily_rank_ic(forecast: Mapping[str, Any], bars: int) -> pd.Series:
    """The LSTM's rank IC on each day at ``bars``, from a main job's daily forecasts and outcomes."""
    scores = forecast["daily"].set_index(["date", "symbol"])["lstm"].unstack()
    outcomes = forecast["daily_outcomes"].set_index(["date", "symbol"])[f"realized_{bars}"].unstack()
    return rank_ic_by_date(scores, outcomes.reindex(index=scores.index, columns=scores.columns))


def paired_difference(one: pd.Series, other: pd.Series, overlap: int) -> Estimate:
    """The mean of ``one − other`` over the days both have, with its 95 % interval (blocks of ``overlap``)."""
    both = pd.concat({"one": one, "other": other}, axis=1, sort=True).dropna()  # blocks in date order
    return estimate_mean((both["one"] - both["other"]).to_numpy(), overlap=overlap)


def compare_settings(
    base: Config,
    settings: Mapping[str, Mapping[str, Any]],
    source: DataSource,
    registries: str | Path,
    start: str,
    end: str,
    symbols: list[str] | None = None,
) -> pd.DataFrame:
    """One row per setting (see the module docstring); ``registries`` gets one folder per setting. Each
    row after the first has ``minus_first`` (with ``_low``, ``_high``): its daily rank IC at the holding
    period minus the first setting's, paired by day."""
    rows: dict[str, dict[str, Any]] = {}
    ics: dict[str, pd.Series] = {}
    for index, (name, changes) in enumerate(settings.items()):
        config = with_changes(base, changes)
        result = run_main_job(
            config, source, Path(registries) / f"setting-{index}", symbols, start, end, progress=False
        )
        rows[name] = evidence_row(result.summary())
        ics[name] = daily_rank_ic(result.forecast or {}, rows[name]["holding"])
    names = list(ics)
    for name in names[1:]:
        value, low, high = _interval(paired_difference(ics[name], ics[names[0]], rows[name]["holding"]))
        rows[name].update(minus_first=value, minus_first_low=low, minus_first_high=high)
    return pd.DataFrame.from_dict(rows, orient="index")
