"""An LSTM weight that must be earned: ``lstm.weight_mode: adaptive`` (docs/forecast-evidence.md).

At each rebalance t the blend weight is set from the trailing out-of-sample rank IC of the forecasts
the portfolio was actually served at earlier rebalances, using only outcomes known at t (a forecast
made at d over ``horizon`` bars counts once the symbol's bar d + horizon is ≤ t):

    ic_k      = Spearman correlation across symbols of forecast and realised return, rebalance k
    shrunk    = Σ ic_k / (n + shrinkage)          over the last ``window`` rebalances with a known outcome
    weight_t  = clip(lstm.weight × shrunk / full_ic, 0, lstm.weight)

So with no evidence yet (n = 0), or a trailing IC ≤ 0, the LSTM has no influence; a mean IC of
``full_ic`` held over many rebalances earns the configured weight. ``shrinkage`` is a number of
pseudo-rebalances at IC 0: a few lucky dates do not earn much.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import pandas as pd

from lstm_plugin.model.metrics import spearman

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

MIN_NAMES = 3


class EarnedWeight(TypedDict):
    """The weight used at one rebalance and the evidence behind it."""

    date: str
    weight: float
    trailing_rank_ic: float | None  # the shrunk mean; None with no evidence
    evidence: int  # rebalances with a known outcome in the window


@dataclass(frozen=True)
class ServedForecasts:
    """The expected log returns served at one rebalance, ``{symbol: value}``."""

    when: pd.Timestamp
    expected: Mapping[str, float]


def _rank_ic(
    served: ServedForecasts, closes: Callable[[str], pd.Series], horizon: int
) -> tuple[float | None, bool]:
    """``(rank IC or None, whether every outcome is known)`` of one rebalance's forecasts."""
    pairs = []
    for symbol, expected in served.expected.items():
        close = closes(symbol)
        position = int(close.index.searchsorted(served.when, side="right")) - 1
        if position >= 0 and position + horizon < len(close):
            pairs.append((expected, close.iloc[position + horizon] / close.iloc[position] - 1.0))
    complete = len(pairs) == len(served.expected)
    if len(pairs) < MIN_NAMES:
        return None, complete
    predicted, realized = np.array(pairs).T
    if np.ptp(predicted) == 0 or np.ptp(realized) == 0:
        return None, complete
    return spearman(predicted, realized), complete


class TrailingEvidence:
    """The served forecasts of past rebalances and, as their outcomes become known, their rank ICs."""

    def __init__(self) -> None:
        self.served: list[ServedForecasts] = []
        self._settled: dict[int, float | None] = {}  # rebalances whose every outcome is known

    def add(self, served: ServedForecasts) -> None:
        self.served.append(served)

    def rank_ics(self, closes_until: Callable[[str], pd.Series], horizon: int, window: int) -> list[float]:
        """Up to ``window`` most recent known rank ICs, oldest first, from ``closes_until(symbol)`` (the
        symbol's closes up to now: nothing later is read)."""
        cache: dict[str, pd.Series] = {}

        def closes(symbol: str) -> pd.Series:
            if symbol not in cache:
                cache[symbol] = closes_until(symbol)
            return cache[symbol]

        found: list[float] = []
        for index in range(len(self.served) - 1, -1, -1):
            if len(found) == window:
                break
            if index in self._settled:
                ic = self._settled[index]
            else:
                ic, complete = _rank_ic(self.served[index], closes, horizon)
                if complete:
                    self._settled[index] = ic
            if ic is not None:
                found.append(ic)
        return found[::-1]


def adaptive_weight(
    ics: Sequence[float], cap: float, *, window: int, shrinkage: float, full_ic: float
) -> tuple[float, float | None, int]:
    """``(weight, shrunk trailing IC, evidence)`` by the formula of the module docstring."""
    recent = [float(v) for v in ics[-window:] if np.isfinite(v)]
    if not recent:
        return 0.0, None, 0
    shrunk = sum(recent) / (len(recent) + shrinkage)
    return float(np.clip(cap * shrunk / full_ic, 0.0, cap)), shrunk, len(recent)
