"""The technical score of the base portfolio manager: four indicators, each mapped to 0-100, weighted.

Pure functions over one symbol's cleaned, adjusted bars (dated at or before the analysis time).
The score reads only the last :data:`REQUIRED_BARS` bars, so it does not depend on how much older
history happens to be loaded.

======================  ======  ================================================================
component               weight  sub-score (0-100)
======================  ======  ================================================================
trend                   0.35    100 × share of {close > SMA50, close > SMA200, SMA50 > SMA200}
momentum                0.30    50 + 50·tanh(r126 / 0.25), r126 = 126-bar return
rsi                     0.15    100 − 2.5·|RSI14 − 60|, clipped: firm, not overbought, scores best
volatility              0.20    100 at ≤ 15 % annualised (63 bars), falling linearly to 0 at 60 %
======================  ======  ================================================================

Recommendation bands on the final score: ``strong_buy`` ≥ 75, ``buy`` ≥ 60, ``hold`` ≥ 40,
``sell`` ≥ 25, ``strong_sell`` below. ``buy`` and ``strong_buy`` are positive.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from lstm_plugin.core.statistics import TRADING_DAYS

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

REQUIRED_BARS = 201  # SMA200 plus one
COMPONENT_WEIGHTS = {"trend": 0.35, "momentum": 0.30, "rsi": 0.15, "volatility": 0.20}
#: (lowest score, name), best band first.
RECOMMENDATION_BANDS = (
    (75.0, "strong_buy"),
    (60.0, "buy"),
    (40.0, "hold"),
    (25.0, "sell"),
    (-math.inf, "strong_sell"),
)
POSITIVE_RECOMMENDATIONS = frozenset({"strong_buy", "buy"})


def recommendation(score: float) -> str:
    """The band ``score`` falls in (see the module docstring)."""
    return next(name for lowest, name in RECOMMENDATION_BANDS if score >= lowest)


def rsi(close: np.ndarray, period: int = 14) -> float:
    """Wilder's RSI at the last bar, smoothing over every bar given (0-100; 50 when flat)."""
    change = np.diff(np.asarray(close, dtype="float64"))
    if change.size < period:
        raise ValueError(f"RSI needs {period + 1} bars (got: {change.size + 1})")
    gains, losses = np.clip(change, 0, None), np.clip(-change, 0, None)
    average_gain, average_loss = gains[:period].mean(), losses[:period].mean()
    for gain, loss in zip(gains[period:], losses[period:]):
        average_gain = (average_gain * (period - 1) + gain) / period
        average_loss = (average_loss * (period - 1) + loss) / period
    if average_loss == 0:
        return 50.0 if average_gain == 0 else 100.0
    return float(100.0 - 100.0 / (1.0 + average_gain / average_loss))


def annualised_volatility(close: np.ndarray, bars: int = 63) -> float:
    """Standard deviation of the last ``bars`` daily log returns, times √252."""
    returns = np.diff(np.log(np.asarray(close, dtype="float64")[-(bars + 1) :]))
    return float(returns.std(ddof=1) * math.sqrt(TRADING_DAYS)) if returns.size > 1 else float("nan")


def dollar_volume(bars: pd.DataFrame, length: int = 20) -> float:
    """Mean of close × volume over the last ``length`` bars (adjusted close × adjusted volume is the
    traded dollar amount, since the adjustment factors cancel)."""
    close = bars["close"].to_numpy(dtype="float64")[-length:]
    volume = bars["volume"].to_numpy(dtype="float64")[-length:]
    return float(np.mean(close * volume)) if close.size else 0.0


def _clip(value: float) -> float:
    return float(min(100.0, max(0.0, value)))


def technical_analysis(bars: pd.DataFrame) -> dict[str, Any]:
    """Score, components and indicators at the last bar of ``bars``.

    Raises :class:`ValueError` with fewer than :data:`REQUIRED_BARS` bars.
    """
    if len(bars) < REQUIRED_BARS:
        raise ValueError(f"the technical score needs {REQUIRED_BARS} bars (got: {len(bars)})")
    close = bars["close"].to_numpy(dtype="float64")[-REQUIRED_BARS:]
    last, sma50, sma200 = close[-1], close[-50:].mean(), close[-200:].mean()
    momentum = close[-1] / close[-127] - 1.0
    strength = rsi(close)
    volatility = annualised_volatility(close)
    components = {
        "trend": 100.0 * float(np.mean([last > sma50, last > sma200, sma50 > sma200])),
        "momentum": 50.0 + 50.0 * math.tanh(momentum / 0.25),
        "rsi": _clip(100.0 - 2.5 * abs(strength - 60.0)),
        "volatility": _clip(100.0 * (0.60 - volatility) / 0.45),
    }
    score = _clip(sum(COMPONENT_WEIGHTS[name] * value for name, value in components.items()))
    return {
        "score": score,
        "recommendation": recommendation(score),
        "components": components,
        "indicators": {
            "close": float(last),
            "sma50": float(sma50),
            "sma200": float(sma200),
            "momentum_126": float(momentum),
            "rsi_14": strength,
            "volatility_63": volatility,
            "dollar_volume_20": dollar_volume(bars),
        },
    }
