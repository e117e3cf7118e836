"""How sure a figure is: Newey–West t-statistics and moving-block bootstrap intervals (docs/honesty.md).

A mean IC over a few dozen dates, or a Sharpe ratio over three years, is an estimate; these pure
functions give each its 95 % interval. Serial correlation is respected: daily forecasts over a
multi-day horizon overlap, so their ICs are not independent, and neither are daily returns in a
volatile year. The bootstrap resamples whole blocks of consecutive values (Künsch 1989); the
t-statistic uses the Bartlett-kernel long-run variance (Newey & West 1987). Every bootstrap takes
a seed, so a report is the same on every run.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import TypedDict

import numpy as np

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: Bootstrap resamples behind each interval; enough for stable 2.5 % / 97.5 % percentiles.
BOOTSTRAP_SAMPLES = 2000
LEVEL = 0.95
#: Trading days in a year: what annualised figures scale by, everywhere in the package.
TRADING_DAYS = 252

Statistic = Callable[[np.ndarray], np.ndarray]  # rows of resampled series -> one value per row


class Estimate(TypedDict):
    """A figure with its 95 % interval (``None`` where too few values make one meaningless)."""

    value: float | None
    low: float | None
    high: float | None
    t: float | None  # Newey–West t-statistic of a mean; None for other statistics
    n: int


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    array = np.asarray([v for v in values if v is not None], dtype="float64")
    finite: np.ndarray = array[np.isfinite(array)]
    return finite


def block_length(n: int, minimum: int = 1) -> int:
    """The usual ``n^(1/3)`` block length, at least ``minimum`` (the overlap of the values), at most ``n``."""
    return int(max(1, min(n, max(minimum, round(n ** (1 / 3))))))


def newey_west_se(values: Sequence[float] | np.ndarray, lags: int) -> float | None:
    """Standard error of the mean with Bartlett-weighted autocovariances up to ``lags``.

    ``lags = 0`` is the plain ``std(ddof=0) / √n``. Use at least ``horizon − 1`` lags for values
    that share ``horizon`` bars of outcome.
    """
    x = _clean(values)
    n = x.size
    if n < 2:
        return None
    centred = x - x.mean()
    variance = float(centred @ centred) / n
    for lag in range(1, min(lags, n - 1) + 1):
        weight = 1.0 - lag / (lags + 1.0)
        variance += 2.0 * weight * float(centred[lag:] @ centred[:-lag]) / n
    return math.sqrt(variance / n) if variance > 0 else None


def _block_indices(n: int, block: int, samples: int, rng: np.random.Generator) -> np.ndarray:
    """``samples`` rows of ``n`` indices, each row made of whole blocks starting at random positions."""
    count = math.ceil(n / block)
    starts = rng.integers(0, n - block + 1, size=(samples, count))
    return (starts[:, :, None] + np.arange(block)).reshape(samples, count * block)[:, :n]


def _percentiles(draws: np.ndarray) -> tuple[float | None, float | None]:
    draws = draws[np.isfinite(draws)]
    if draws.size == 0:
        return None, None
    tail = (1.0 - LEVEL) / 2.0 * 100.0
    low, high = np.percentile(draws, [tail, 100.0 - tail])
    return float(low), float(high)


def block_bootstrap_interval(
    values: Sequence[float] | np.ndarray,
    statistic: Statistic | None = None,
    *,
    block: int | None = None,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """Percentile interval of ``statistic`` (default: the mean) over moving-block resamples."""
    x = _clean(values)
    if x.size < 3:
        return None, None
    size = block or block_length(x.size)
    rows = x[_block_indices(x.size, size, samples, np.random.default_rng(seed))]
    draws = rows.mean(axis=1) if statistic is None else statistic(rows)
    return _percentiles(draws)


def paired_block_bootstrap_interval(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    statistic: Statistic,
    *,
    block: int | None = None,
    samples: int = BOOTSTRAP_SAMPLES,
    seed: int = 0,
) -> tuple[float | None, float | None]:
    """Interval of ``statistic(a) − statistic(b)`` resampling the same blocks of both (paired by date)."""
    x, y = np.asarray(a, dtype="float64"), np.asarray(b, dtype="float64")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    if x.size < 3:
        return None, None
    size = block or block_length(x.size)
    index = _block_indices(x.size, size, samples, np.random.default_rng(seed))
    return _percentiles(statistic(x[index]) - statistic(y[index]))


def sharpe_ratio(rows: np.ndarray) -> np.ndarray:
    """Annualised ``mean / std(ddof=1) · √252`` of each row of daily returns (NaN where std is 0, or only
    rounding noise)."""
    if rows.shape[-1] < 2:  # no spread to divide by: numpy would warn before giving NaN
        return np.full(rows.shape[:-1], np.nan)
    std = rows.std(axis=1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a std of float noise is no spread at all
        return np.where(std > 1e-12, rows.mean(axis=1) / std, np.nan) * math.sqrt(TRADING_DAYS)


def estimate_mean(values: Sequence[float] | np.ndarray, *, overlap: int = 1, seed: int = 0) -> Estimate:
    """The mean with its block-bootstrap interval and Newey–West t (``overlap``: bars two values share)."""
    x = _clean(values)
    if x.size == 0:
        return {"value": None, "low": None, "high": None, "t": None, "n": 0}
    low, high = block_bootstrap_interval(x, block=block_length(x.size, overlap), seed=seed)
    se = newey_west_se(x, max(overlap - 1, block_length(x.size) - 1))
    mean = float(x.mean())
    return {"value": mean, "low": low, "high": high, "t": None if se is None else mean / se, "n": int(x.size)}
