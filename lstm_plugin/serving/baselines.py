"""Baseline forecasters the LSTM must beat, computed on the same bars and days (docs/forecast-evidence.md).

Each returns a date × symbol panel of scores, higher meaning "expected to do better", every value at
bar t from bars ≤ t only:

- ``momentum_12_1``: ``c[t-21] / c[t-252] − 1`` — twelve-month momentum skipping the last month
  (Jegadeesh & Titman 1993);
- ``reversal_1m``: ``−(c[t] / c[t-21] − 1)`` — one-month reversal (Jegadeesh 1990);
- ``ridge``: a walk-forward ridge regression on the LSTM's own features at bar t, pooled over the
  universe, predicting the same target (the forward log return over the model's horizon, or its
  excess over the symbols' mean with ``model.target: excess``). It is
  refit on each rebalance day t on the rows whose label was known by t (bar p's label needs bar
  p + horizon ≤ t) from the last ``lookback_years``, and predicts every day until the next refit.
  A score of the same kind as the LSTM's, so it has a hit rate too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import get_args

import numpy as np
import pandas as pd

from lstm_plugin.core.config import BaselineName, ModelSection
from lstm_plugin.core.data import DataSource
from lstm_plugin.model.samples import FeatureHooks, compute_features, universe_forward_mean
from lstm_plugin.serving.evidence import wide_closes

__all__ = [
    "BASELINES",
    "RETURN_BASELINES",
    "baseline_panels",
    "check_baselines",
    "momentum_12_1",
    "reversal_1m",
    "walk_forward_ridge",
]

BASELINES: tuple[str, ...] = get_args(BaselineName)
#: The baselines whose score is a return forecast.
RETURN_BASELINES = ("ridge",)
MONTH, YEAR = 21, 252


def momentum_12_1(closes: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Twelve-month return skipping the last month, on each symbol's own bars."""
    return wide_closes({s: c.shift(MONTH) / c.shift(YEAR) - 1.0 for s, c in closes.items()})


def reversal_1m(closes: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Minus the last month's return, on each symbol's own bars."""
    return wide_closes({s: -(c / c.shift(MONTH) - 1.0) for s, c in closes.items()})


@dataclass(frozen=True)
class _Rows:
    """Every symbol's feature rows stacked: features, target, the bar's date, when its label is known."""

    features: np.ndarray
    target: np.ndarray
    dates: np.ndarray  # datetime64[ns]
    known_at: np.ndarray  # datetime64[ns]; NaT when the data ends first
    symbols: np.ndarray


def _stack(
    features: Mapping[str, pd.DataFrame], closes: Mapping[str, pd.Series], horizon: int, excess: bool
) -> _Rows:
    benchmark = universe_forward_mean(closes, horizon) if excess else None
    parts = []
    for symbol, frame in features.items():
        close = closes[symbol].reindex(frame.index)
        target = np.log(close.shift(-horizon) / close).to_numpy(dtype="float64")
        if benchmark is not None:
            target = target - benchmark.reindex(frame.index).to_numpy(dtype="float64")
        known_at = pd.Series(frame.index, index=frame.index).shift(-horizon).to_numpy(dtype="datetime64[ns]")
        parts.append(
            (frame.to_numpy(dtype="float64"), target, frame.index.to_numpy(), known_at, [symbol] * len(frame))
        )
    return _Rows(
        np.concatenate([p[0] for p in parts]),
        np.concatenate([p[1] for p in parts]),
        np.concatenate([p[2] for p in parts]),
        np.concatenate([p[3] for p in parts]),
        np.concatenate([np.asarray(p[4], dtype=object) for p in parts]),
    )


def _fit(x: np.ndarray, y: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Standardised ridge: ``(mean, scale, weights, intercept)``; the penalty is ``alpha`` per row."""
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale = np.where(scale > 0, scale, 1.0)
    z = (x - mean) / scale
    weights = np.linalg.solve(z.T @ z + alpha * len(z) * np.eye(z.shape[1]), z.T @ (y - y.mean()))
    return mean, scale, weights, float(y.mean())


def walk_forward_ridge(
    features: Mapping[str, pd.DataFrame],
    closes: Mapping[str, pd.Series],
    refit_dates: Sequence[pd.Timestamp],
    horizon: int,
    *,
    lookback_years: float = 10.0,
    alpha: float = 0.01,
    min_rows: int = 100,
    excess: bool = False,
) -> pd.DataFrame:
    """The ``ridge`` baseline of the module docstring: predictions from the first refit date on;
    ``excess``: the target is the excess over the symbols' mean (``model.target: excess``)."""
    rows = _stack(features, closes, horizon, excess)
    finite = np.isfinite(rows.features).all(axis=1)
    labelled = finite & np.isfinite(rows.target) & ~np.isnat(rows.known_at)
    refits = [pd.Timestamp(d).to_datetime64() for d in sorted(refit_dates)]
    span = np.timedelta64(round(365.25 * lookback_years), "D")
    predictions = np.full(len(rows.target), np.nan)
    for now, until in zip(refits, [*refits[1:], np.datetime64("NaT")]):
        train = labelled & (rows.known_at <= now) & (rows.dates >= now - span)
        serve = finite & (rows.dates >= now) & (np.isnat(until) | (rows.dates < until))
        if int(train.sum()) < min_rows or not serve.any():
            continue
        mean, scale, weights, intercept = _fit(rows.features[train], rows.target[train], alpha)
        predictions[serve] = ((rows.features[serve] - mean) / scale) @ weights + intercept
    frame = pd.DataFrame({"date": rows.dates, "symbol": rows.symbols, "score": predictions}).dropna()
    return frame.pivot(index="date", columns="symbol", values="score").rename_axis(columns=None)


def check_baselines(names: Sequence[str]) -> tuple[str, ...]:
    """The names, checked: each one of :data:`BASELINES`, none twice."""
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"baselines › unknown: {', '.join(unknown)} (have: {', '.join(BASELINES)}, or none)")
    return tuple(dict.fromkeys(names))


def baseline_panels(
    names: Sequence[str],
    source: DataSource,
    symbols: Sequence[str],
    refit_dates: Sequence[pd.Timestamp],
    plugins: FeatureHooks,
    model: ModelSection,
) -> dict[str, pd.DataFrame]:
    """``{name: panel}`` of the named baselines over ``symbols``' full bars from ``source``; the ridge
    reads the same features (built-ins and plugins) and target as the LSTM."""
    bars = {symbol: source.load(symbol) for symbol in symbols}
    closes = {symbol: frame["close"] for symbol, frame in bars.items()}
    panels: dict[str, pd.DataFrame] = {}
    for name in check_baselines(names):
        if name == "momentum_12_1":
            panels[name] = momentum_12_1(closes)
        elif name == "reversal_1m":
            panels[name] = reversal_1m(closes)
        else:
            features = {
                symbol: compute_features(frame, plugins, model, symbol) for symbol, frame in bars.items()
            }
            panels[name] = walk_forward_ridge(
                features,
                closes,
                refit_dates,
                model.horizon,
                lookback_years=model.lookback_years,
                excess=model.target == "excess",
            )
    return panels
