"""Forecast evidence: what each forecaster's ranking of the universe was worth, with 95 % intervals.

Every forecaster is a *panel*: a frame of scores, one row per trading day and one column per symbol
(the LSTM's expected log return, a baseline's signal). Each is judged the same way
(docs/forecast-evidence.md):

- ``rank_ic``: per day, the Spearman correlation across symbols (average ranks for ties) between the
  score and the simple return that followed over ``horizon`` bars of the symbol's own bars; days with
  fewer than three symbols, or no spread, are skipped. Its mean comes with a moving-block bootstrap
  interval and a Newey–West t whose lags cover the overlap of consecutive forecasts
  (:func:`~lstm_plugin.core.statistics.estimate_mean`);
- at two horizons — the model's (``model``) and the holding period, the bars between rebalances
  (``holding``) — and on two samples: ``daily`` (every trading day) and ``rebalance`` (rebalance days,
  the forecasts the portfolio traded on);
- ``hit_rate`` (daily, for forecasters whose score is a return): the share of days × symbols whose
  realised return has the score's sign, beside ``base_rate``, what always calling the likelier sign
  scores on the same outcomes;
- ``differences``: the reference forecaster (the LSTM) minus each other one — the mean of the
  per-day rank IC differences on the days both have, with its interval: a paired comparison.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from lstm_plugin.core.statistics import Estimate, estimate_mean
from lstm_plugin.model.samples import wide_closes

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

MIN_NAMES = 3


class HorizonEvidence(TypedDict):
    """One forecaster at one horizon."""

    horizon: int
    daily: Estimate  # mean rank IC over every trading day
    rebalance: Estimate  # mean rank IC over rebalance days only
    hit_rate: float | None  # daily sign hit rate (return forecasts only)
    base_rate: float | None
    n: int  # daily (date, symbol) pairs with a score and a known outcome


def forward_returns(closes: Mapping[str, pd.Series], horizon: int) -> pd.DataFrame:
    """Simple return from each close to the close ``horizon`` of the symbol's own bars later (NaN past the
    end of its data), as a date × symbol frame."""
    return wide_closes({s: c.shift(-horizon) / c - 1.0 for s, c in closes.items()})


def _masked(scores: pd.DataFrame, realized: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, pd.Index]:
    s, r = scores.align(realized, join="inner")
    a, b = s.to_numpy(dtype="float64"), r.to_numpy(dtype="float64")
    usable = np.isfinite(a) & np.isfinite(b)
    return np.where(usable, a, np.nan), np.where(usable, b, np.nan), s.index


def rank_ic_by_date(scores: pd.DataFrame, realized: pd.DataFrame) -> pd.Series:
    """Per-date Spearman correlation across symbols of ``scores`` and ``realized`` (see module docstring)."""
    a, b, index = _masked(scores, realized)
    names = np.isfinite(a).sum(axis=1)
    centred = []
    for values in (a, b):
        ranks = pd.DataFrame(values).rank(axis=1).to_numpy()
        centre = (names + 1) / 2.0  # the mean of average ranks 1..n
        centred.append(np.nan_to_num(ranks - centre[:, None]))
    numerator = (centred[0] * centred[1]).sum(axis=1)
    denominator = np.sqrt((centred[0] ** 2).sum(axis=1) * (centred[1] ** 2).sum(axis=1))
    keep = (names >= MIN_NAMES) & (denominator > 1e-12)
    ic = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=keep)
    return pd.Series(ic[keep], index=index[keep], dtype="float64", name="rank_ic")


def sign_hit_rate(scores: pd.DataFrame, realized: pd.DataFrame) -> tuple[float | None, float | None, int]:
    """``(hit rate, base rate, pairs)`` of the scores' signs against the realised returns' (scores of 0
    make no call and are left out)."""
    a, b, _ = _masked(scores, realized)
    called = np.isfinite(a) & (a != 0)
    if not called.any():
        return None, None, 0
    score, outcome = a[called], b[called]
    hits = float(np.mean(np.sign(score) == np.sign(outcome)))
    base = max(float(np.mean(outcome > 0)), float(np.mean(outcome < 0)))
    return hits, base, int(called.sum())


def _overlap(horizon: int, spacing: int) -> int:
    """Bars two consecutive values of a sample share: the horizon over the spacing of its dates."""
    return max(1, math.ceil(horizon / max(1, spacing)))


def _on(series: pd.Series, dates: pd.DatetimeIndex) -> pd.Series:
    return series[series.index.isin(dates)]


def forecast_evidence(
    panels: Mapping[str, pd.DataFrame],
    closes: Mapping[str, pd.Series],
    horizons: Mapping[str, int],
    rebalance_dates: Sequence[pd.Timestamp],
    *,
    returns: Sequence[str] = (),
    reference: str | None = "lstm",
    relative: bool = False,
) -> dict[str, Any]:
    """Every figure of the module docstring, as plain data.

    ``horizons``: ``{label: bars}``, e.g. ``{"model": 5, "holding": 21}``; ``returns``: the forecasters
    whose score is a return forecast (they get a hit rate); ``reference``: the forecaster the others
    are compared with (``None``: no comparisons); ``relative``: outcomes are excess returns over each
    day's mean across the symbols (forecasts of an ``excess`` target), which moves hit and base rates only.
    """
    days = pd.DatetimeIndex(sorted(rebalance_dates))
    spacing = int(horizons.get("holding", 1))
    realized = {label: forward_returns(closes, bars) for label, bars in horizons.items()}
    if relative:
        realized = {label: frame.sub(frame.mean(axis=1), axis=0) for label, frame in realized.items()}
    per_date: dict[str, dict[str, pd.Series]] = {}
    forecasters: dict[str, dict[str, HorizonEvidence]] = {}
    for name, panel in panels.items():
        per_date[name], forecasters[name] = {}, {}
        for label, bars in horizons.items():
            ic = rank_ic_by_date(panel, realized[label])
            per_date[name][label] = ic
            hit, base, n = (
                sign_hit_rate(panel, realized[label])
                if name in returns
                else (None, None, _pairs(panel, realized[label]))
            )
            forecasters[name][label] = {
                "horizon": int(bars),
                "daily": estimate_mean(ic.to_numpy(), overlap=bars),
                "rebalance": estimate_mean(_on(ic, days).to_numpy(), overlap=_overlap(bars, spacing)),
                "hit_rate": hit,
                "base_rate": base,
                "n": n,
            }
    differences = (
        _differences(per_date, reference, horizons, days, spacing)
        if reference is not None and reference in panels
        else {}
    )
    return {
        "horizons": {label: int(bars) for label, bars in horizons.items()},
        "reference": reference if reference in panels else None,
        "forecasters": forecasters,
        "differences": differences,
        "rank_ic_by_date": per_date,
    }


def _differences(
    per_date: Mapping[str, Mapping[str, pd.Series]],
    reference: str,
    horizons: Mapping[str, int],
    days: pd.DatetimeIndex,
    spacing: int,
) -> dict[str, dict[str, dict[str, Estimate]]]:
    """``reference`` minus each other forecaster: the mean per-day rank IC difference, daily and on
    rebalance days, with its interval."""
    differences: dict[str, dict[str, dict[str, Estimate]]] = {}
    for name in per_date:
        if name == reference:
            continue
        differences[name] = {}
        for label, bars in horizons.items():
            gap = (per_date[reference][label] - per_date[name][label]).dropna()
            differences[name][label] = {
                "daily": estimate_mean(gap.to_numpy(), overlap=bars),
                "rebalance": estimate_mean(_on(gap, days).to_numpy(), overlap=_overlap(bars, spacing)),
            }
    return differences


def _pairs(scores: pd.DataFrame, realized: pd.DataFrame) -> int:
    a, _, _ = _masked(scores, realized)
    return int(np.isfinite(a).sum())
