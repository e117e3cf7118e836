"""How good were the forecasts: pure functions over forecast records and the returns that followed.

A record is one forecast at one rebalance: ``date``, ``symbol``, ``status``, ``model_type``,
``predicted_direction``, ``confidence``, ``expected_log_return`` and ``realized`` — the simple
return from the close of ``date`` to the close ``horizon`` bars later (``None`` when the data ends
first). Definitions (records with ``status == 'success'`` and a known ``realized`` only):

- ``hit_rate``: among forecasts of ``up`` or ``down`` (``neutral`` ones make no call; ``n_directional``
  counts the calls), the share whose realised return has that sign;
  ``base_rate`` is what always calling the likelier sign would have scored on the same outcomes
  (the share of rises, or of falls, whichever is larger) — the figure ``hit_rate`` must beat;
- ``ic`` / ``rank_ic``: per date, the Pearson / Spearman correlation across symbols between
  ``expected_log_return`` and ``realized`` (dates with fewer than 3 symbols, or no spread, are
  skipped); reported per date with their ``mean``, ``std`` (ddof 1) and ``icir`` = mean / std;
- ``calibration``: by confidence bucket, the share of forecasts whose *class* came true
  (``up`` if ln(1 + realized) > ``direction_threshold``, ``down`` if < −threshold, else ``neutral``)
  beside the mean confidence — a calibrated model has the two equal;
- ``model_usage``: forecasts by ``model_type`` over *all* records (``none`` when no forecast).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypedDict

import numpy as np

from lstm_plugin.core.statistics import estimate_mean
from lstm_plugin.model.metrics import pearson, spearman

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class CorrelationSummary(TypedDict):
    """Per-date correlations summed up: mean, spread, ICIR, and the mean's 95 % interval and t."""

    mean: float | None
    std: float | None
    icir: float | None
    dates: int
    low: float | None
    high: float | None
    t: float | None


class ForecastEvaluation(TypedDict):
    """Every figure of :func:`forecast_evaluation` (the module docstring)."""

    n_predictions: int
    n_evaluated: int
    hit_rate: float | None
    base_rate: float | None
    n_directional: int
    ic: CorrelationSummary
    rank_ic: CorrelationSummary
    ic_by_date: list[dict[str, Any]]
    calibration: list[dict[str, Any]]
    model_usage: dict[str, int]


CONFIDENCE_BUCKETS = (1 / 3, 0.4, 0.5, 0.6, 0.7, 1.0)


def realized_class(realized: float, direction_threshold: float) -> str:
    """The class the outcome fell in, with the model's own threshold on the log return."""
    log_return = math.log1p(realized)
    if log_return > direction_threshold:
        return "up"
    return "down" if log_return < -direction_threshold else "neutral"


def correlation_summary(per_date: Sequence[float], overlap: int = 1) -> CorrelationSummary:
    """The mean, spread and ICIR of per-date correlations, with the mean's 95 % interval and Newey-West t;
    ``overlap``: the dates two consecutive outcomes share (the horizon over the spacing of the dates)."""
    values = np.asarray([v for v in per_date if v is not None and math.isfinite(v)], dtype="float64")
    mean = float(values.mean()) if values.size else None
    std = float(values.std(ddof=1)) if values.size > 1 else None
    icir = mean / std if mean is not None and std not in (None, 0.0) else None
    interval = estimate_mean(values, overlap=overlap)
    return {
        "mean": mean,
        "std": std,
        "icir": icir,
        "dates": int(values.size),
        "low": interval["low"],
        "high": interval["high"],
        "t": interval["t"],
    }


def _usable(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [
        r
        for r in records
        if r.get("status") == "success" and r.get("realized") is not None and math.isfinite(r["realized"])
    ]


def _base_rate(records: Sequence[Mapping[str, Any]]) -> float | None:
    if not records:
        return None
    rises = float(np.mean([r["realized"] > 0 for r in records]))
    falls = float(np.mean([r["realized"] < 0 for r in records]))
    return max(rises, falls)


def forecast_evaluation(
    records: Sequence[Mapping[str, Any]], direction_threshold: float, overlap: int = 1
) -> ForecastEvaluation:
    """Every figure of the module docstring, as plain data; ``overlap``: how many consecutive forecast dates
    share bars of outcome (``ceil(horizon / bars between rebalances)``), which the IC intervals respect."""
    usable = _usable(records)
    directional = [r for r in usable if r["predicted_direction"] in ("up", "down")]
    hits = [
        (r["realized"] > 0) if r["predicted_direction"] == "up" else (r["realized"] < 0) for r in directional
    ]

    ic_rows = _ic_by_date(usable)
    calibration = _calibration(usable, direction_threshold)

    usage = Counter(
        (r.get("model_type") if r.get("status") == "success" else None) or "none" for r in records
    )
    return {
        "n_predictions": sum(1 for r in records if r.get("status") == "success"),
        "n_evaluated": len(usable),
        "hit_rate": float(np.mean(hits)) if hits else None,
        "base_rate": _base_rate(directional),
        "n_directional": len(directional),
        "ic": correlation_summary([row["ic"] for row in ic_rows], overlap),
        "rank_ic": correlation_summary([row["rank_ic"] for row in ic_rows], overlap),
        "ic_by_date": ic_rows,
        "calibration": calibration,
        "model_usage": {name: usage.get(name, 0) for name in ("specific", "universal", "none")},
    }


def _ic_by_date(usable: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Pearson and Spearman IC of each date with at least three forecasts that vary."""
    by_date: dict[Any, list[Mapping[str, Any]]] = {}
    for record in usable:
        by_date.setdefault(record["date"], []).append(record)
    ic_rows = []
    for date in sorted(by_date):
        group = by_date[date]
        if len(group) < 3:
            continue
        predicted = np.array([r["expected_log_return"] for r in group], dtype="float64")
        realized = np.array([r["realized"] for r in group], dtype="float64")
        if np.ptp(predicted) == 0 or np.ptp(realized) == 0:
            continue
        ic_rows.append(
            {
                "date": date,
                "n": len(group),
                "ic": pearson(predicted, realized),
                "rank_ic": spearman(predicted, realized),
            }
        )
    return ic_rows


def _calibration(usable: Sequence[Mapping[str, Any]], direction_threshold: float) -> list[dict[str, Any]]:
    """Accuracy of the predicted class in each confidence bucket."""
    calibration = []
    edges = CONFIDENCE_BUCKETS
    for low, high in zip(edges[:-1], edges[1:]):
        last = high == edges[-1]
        members = [r for r in usable if low <= r["confidence"] < high or (last and r["confidence"] == high)]
        correct = [
            realized_class(r["realized"], direction_threshold) == r["predicted_direction"] for r in members
        ]
        calibration.append(
            {
                "bucket": f"{low:.2f}-{high:.2f}",
                "n": len(members),
                "mean_confidence": float(np.mean([r["confidence"] for r in members])) if members else None,
                "accuracy": float(np.mean(correct)) if members else None,
            }
        )
    return calibration
