"""Forecast risk: how much of the rebalance's targets to hold, from what the models know, in pure maths.

Three parts, each on or off (``lstm.risk``, docs/exits-and-risk.md):

- **exposure**: the gross exposure scales with the cross-sectional mean forecast (a market the models
  expect to fall is held less: ``1 + mean / mean_scale``, clipped to [0, 1]) and with the reliability of
  the models serving the book (their mean, over ``lstm.reliability_threshold``, clipped to [0, 1]).
  The served ONNX graph of an ensemble gives only its blended forecast, so reliability stands for the
  members' agreement there too;
- **reliability_cap**: each position's cap ``portfolio.max_weight`` shrinks to ``cap_floor`` of it as its
  model's live hit rate falls from ``full_hit_rate`` to 0.5 (a coin); the test hit rate stands in until
  ``retraining.degradation_min_outcomes`` outcomes are known;
- **volatility_targeting**: the plain baseline, blind to forecasts: the exposure that brings the
  targeted book's realised volatility over the last ``volatility_bars`` bars to ``target_volatility``.

The scaling parts multiply, and the product is held within ``[min_exposure, 1]``; what they take from
the targets stays in cash. Every input is known at the rebalance bar.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np

from lstm_plugin.core.statistics import TRADING_DAYS

__all__ = [
    "RiskInputs",
    "RiskReport",
    "forecast_exposure",
    "realised_volatility",
    "reliability_cap",
    "size_book",
]


@dataclass(frozen=True)
class RiskInputs:
    """What the rebalance bar knows: the mean expected log return of the bar's served forecasts, each
    target's serving model reliability and live (or test) hit rate, and the targets' daily returns over
    the last bars (rows: bars, oldest first; columns in ``return_symbols`` order)."""

    mean_forecast: float | None = None
    reliability: Mapping[str, float | None] = field(default_factory=dict)
    hit_rate: Mapping[str, float | None] = field(default_factory=dict)
    returns: np.ndarray | None = None
    return_symbols: tuple[str, ...] = ()


class RiskReport(TypedDict):
    """How a rebalance's book was sized: the gross exposure and what made it."""

    exposure: float  # the share of the targets held, after the floor
    forecast_scale: float | None  # the exposure part's factor (None: part off or no forecasts)
    mean_forecast: float | None
    reliability: float | None  # the mean reliability of the models serving the targets
    volatility_scale: float | None
    realised_volatility: float | None  # annualised, of the targeted book
    capped: dict[str, float]  # symbol: the cap that bound it


def forecast_exposure(
    mean_forecast: float | None, reliability: float | None, mean_scale: float, reliability_threshold: float
) -> float | None:
    """The exposure part's factor in [0, 1], or ``None`` without a served forecast."""
    if mean_forecast is None or not math.isfinite(mean_forecast):
        return None
    scale = min(1.0, max(0.0, 1.0 + mean_forecast / mean_scale))
    if reliability is not None and reliability_threshold > 0:
        scale *= min(1.0, max(0.0, reliability / reliability_threshold))
    return scale


def reliability_cap(hit_rate: float | None, max_weight: float, floor: float, full_hit_rate: float) -> float:
    """A position's cap: ``max_weight`` at ``full_hit_rate`` or better, ``floor × max_weight`` at a coin's
    0.5 or worse, linear between; ``max_weight`` where no hit rate is known."""
    if hit_rate is None or not math.isfinite(hit_rate):
        return max_weight
    share = (hit_rate - 0.5) / (full_hit_rate - 0.5) if full_hit_rate > 0.5 else 1.0
    return max_weight * (floor + (1.0 - floor) * min(1.0, max(0.0, share)))


def realised_volatility(returns: np.ndarray, weights: np.ndarray) -> float | None:
    """The annualised volatility (ddof 1) of the book ``weights`` held over the rows of daily returns
    (a missing return counts as 0); ``None`` with fewer than 5 rows."""
    if returns.ndim != 2 or returns.shape[0] < 5 or weights.size == 0:
        return None
    book = np.nan_to_num(returns, nan=0.0) @ weights
    std = float(book.std(ddof=1))
    return std * math.sqrt(TRADING_DAYS) if math.isfinite(std) else None


def size_book(
    targets: Mapping[str, float],
    settings: Any,
    inputs: RiskInputs,
    max_weight: float,
    reliability_threshold: float,
) -> tuple[dict[str, float], RiskReport]:
    """``targets`` sized by the parts ``settings`` (a config's ``lstm.risk``) turns on; see the module
    docstring."""
    report: RiskReport = {
        "exposure": 1.0,
        "forecast_scale": None,
        "mean_forecast": inputs.mean_forecast,
        "reliability": None,
        "volatility_scale": None,
        "realised_volatility": None,
        "capped": {},
    }
    if not targets:
        return dict(targets), report
    scale = 1.0
    if settings.exposure:
        known = [r for s in targets if (r := inputs.reliability.get(s)) is not None and math.isfinite(r)]
        report["reliability"] = float(np.mean(known)) if known else None
        factor = forecast_exposure(
            inputs.mean_forecast, report["reliability"], settings.mean_scale, reliability_threshold
        )
        report["forecast_scale"] = factor
        scale *= 1.0 if factor is None else factor
    if settings.volatility_targeting and inputs.returns is not None:
        weights = np.array([targets.get(s, 0.0) for s in inputs.return_symbols], dtype="float64")
        total = float(np.sum(weights))
        volatility = realised_volatility(inputs.returns, weights / total) if total > 0 else None
        report["realised_volatility"] = volatility
        if volatility is not None and volatility > 0:
            volatility_scale = min(1.0, settings.target_volatility / volatility)
            report["volatility_scale"] = volatility_scale
            scale *= volatility_scale
    exposure = 1.0 if scale >= 1.0 else max(settings.min_exposure, scale)
    report["exposure"] = exposure
    sized = {s: w * exposure for s, w in targets.items()}
    if settings.reliability_cap:
        for symbol, weight in sized.items():
            cap = reliability_cap(
                inputs.hit_rate.get(symbol), max_weight, settings.cap_floor, settings.full_hit_rate
            )
            if weight > cap:
                sized[symbol] = cap
                report["capped"][symbol] = cap
    return sized, report
