"""Portfolio weights and statistics as pure functions: weighting, the per-position cap, confidence sizing.

Weighting methods (``portfolio.weighting``), before the cap:

- ``score``: proportional to each symbol's final score (technical, or combined with the LSTM);
- ``equal``: ``1 / n`` each;
- ``inverse_volatility``: proportional to ``1 / σ`` (63-bar annualised volatility), so each
  position carries about the same risk.

The cap (``portfolio.max_weight``) is applied by water-filling: a capped position's excess is shared
among the uncapped ones in proportion to their weights, repeatedly, until no weight exceeds the cap.
When ``n × max_weight < 1`` every position sits at the cap and the rest is held in cash.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd

from lstm_plugin.core.statistics import TRADING_DAYS

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

WEIGHTINGS = ("score", "equal", "inverse_volatility")


def _ordered(weights: Mapping[str, float]) -> dict[str, float]:
    return dict(sorted(weights.items(), key=lambda item: (-item[1], item[0])))


def cap_weights(weights: Mapping[str, float], max_weight: float, total: float = 1.0) -> dict[str, float]:
    """Scale positive ``weights`` to sum to ``total``, then cap each at ``max_weight`` (water-filling)."""
    raw = {s: float(w) for s, w in weights.items() if w > 0 and math.isfinite(w)}
    if not raw or total <= 0:
        return {}
    fixed: set[str] = set()
    while True:
        free = {s: w for s, w in raw.items() if s not in fixed}
        room = total - max_weight * len(fixed)
        free_total = sum(free.values())
        result = {s: max_weight for s in fixed}
        if room > 1e-12 and free_total > 0:
            result.update({s: room * w / free_total for s, w in free.items()})
        over = [s for s, w in result.items() if s not in fixed and w > max_weight + 1e-12]
        if not over:
            return _ordered({s: w for s, w in result.items() if w > 0})
        fixed.update(over)


def allocate(
    scores: Mapping[str, float],
    method: str,
    max_weight: float,
    volatilities: Mapping[str, float] | None = None,
) -> dict[str, float]:
    """Weights for the chosen symbols (the keys of ``scores``) by ``method``, capped at ``max_weight``."""
    if method == "equal":
        raw = {s: 1.0 for s in scores}
    elif method == "score":
        raw = {s: max(float(v), 0.0) for s, v in scores.items()}
    elif method == "inverse_volatility":
        vols = volatilities or {}
        raw = {s: 1.0 / vols[s] for s in scores if vols.get(s) and math.isfinite(vols[s]) and vols[s] > 0}
        raw.update({s: 0.0 for s in scores if s not in raw})
    else:
        raise ValueError(f"weighting › must be one of {', '.join(WEIGHTINGS)} (got: {method!r})")
    return cap_weights(raw, max_weight)


def confidence_scale(signal: float, full_size_edge: float) -> float:
    """Position scale 0..1 for a forecast signal ``trust × (P(up) − P(down))``.

    0.5 with no view (no usable forecast, or a neutral one), 1 at a signal of ``+full_size_edge`` or
    more, 0 at ``−full_size_edge`` or less, linear between.
    """
    if not math.isfinite(signal) or full_size_edge <= 0:
        return 0.5
    return 0.5 + 0.5 * max(-1.0, min(1.0, signal / full_size_edge))


def confidence_tilt(
    weights: Mapping[str, float], signals: Mapping[str, float], full_size_edge: float, max_weight: float
) -> dict[str, float]:
    """Confidence-aware sizing: scale each weight by :func:`confidence_scale` of its signal, then
    rescale to the same invested total and cap again (what the cap holds back stays in cash).

    With no signal anywhere (every scale 0.5) the weights come back unchanged. A position whose
    forecast is confidently down shrinks to nothing and drops out.
    """
    invested = sum(weights.values())
    scaled = {s: w * confidence_scale(signals.get(s, 0.0), full_size_edge) for s, w in weights.items()}
    return cap_weights(scaled, max_weight, total=invested)


def portfolio_statistics(weights: Mapping[str, float], closes: pd.DataFrame) -> dict[str, float | int | None]:
    """Historical risk and return of ``weights`` from daily ``closes`` (one column per symbol).

    - ``expected_return``: Σ wᵢ · 252 · mean daily return of i — the trailing average, annualised; a
      description of the past, not a forecast;
    - ``volatility``: √(252 · wᵀ Σ w), Σ the sample covariance of daily returns over common dates;
    - ``hhi`` (Σ wᵢ² of the invested weights rescaled to 1), ``effective_positions`` (1 / hhi),
      ``max_weight``, ``invested`` and ``cash``.
    """
    symbols = [s for s, w in weights.items() if w > 0]
    invested = float(sum(weights[s] for s in symbols))
    stats: dict[str, float | int | None] = {
        "positions": len(symbols),
        "invested": invested,
        "cash": max(0.0, 1.0 - invested),
        "max_weight": max((weights[s] for s in symbols), default=0.0),
        "hhi": None,
        "effective_positions": None,
        "expected_return": None,
        "volatility": None,
    }
    if not symbols:
        return stats
    share = np.array([weights[s] / invested for s in symbols])
    hhi = float(np.sum(share**2))
    stats["hhi"], stats["effective_positions"] = hhi, 1.0 / hhi
    returns = closes.reindex(columns=symbols).pct_change(fill_method=None).iloc[1:]
    w = np.array([weights[s] for s in symbols])
    means = returns.mean().to_numpy()
    if np.isfinite(means).all():
        stats["expected_return"] = float(TRADING_DAYS * w @ means)
    common = returns.dropna()
    if len(common) > 2:
        covariance = common.cov().to_numpy()
        stats["volatility"] = float(math.sqrt(max(0.0, TRADING_DAYS * w @ covariance @ w)))
    return stats
