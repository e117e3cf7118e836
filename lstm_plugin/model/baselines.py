"""Baselines: the port a forecaster the LSTM must beat plugs into, and the three built-in ones.

A baseline is any object with a ``name``, a ``forecasts_returns`` flag and a ``panel(inputs)``
method returning a date × symbol frame of scores, higher meaning "expected to do better", every
value at bar t from bars ≤ t only (docs/forecast-evidence.md). Plugins add baselines with the
``lstm_baselines`` hook; the built-ins below come through the same hook
(:mod:`lstm_plugin.plugins.builtin`):

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

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from lstm_plugin.core.config import ModelSection
from lstm_plugin.model.samples import FeatureHooks, compute_features, universe_forward_mean, wide_closes

__all__ = [
    "BUILTIN_BASELINES",
    "Baseline",
    "BaselineInputs",
    "ClosesBaseline",
    "WalkForwardRidge",
    "momentum_12_1",
    "reversal_1m",
    "walk_forward_ridge",
]


@dataclass
class BaselineInputs:
    """What a baseline may read: every symbol's full bars, the rebalance days (when a fitted baseline
    may refit), the LSTM's effective ``model`` settings and the feature hooks, so a baseline can
    read the same features and target as the LSTM."""

    bars: Mapping[str, pd.DataFrame]
    refit_dates: Sequence[pd.Timestamp]
    model: ModelSection
    plugins: FeatureHooks
    _features: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)

    @property
    def closes(self) -> dict[str, pd.Series]:
        """``{symbol: close}``."""
        return {symbol: frame["close"] for symbol, frame in self.bars.items()}

    def features(self) -> dict[str, pd.DataFrame]:
        """``{symbol: the LSTM's feature frame}`` (built-ins and plugins), computed once per evaluation."""
        if not self._features:
            self._features.update(
                {s: compute_features(f, self.plugins, self.model, s) for s, f in self.bars.items()}
            )
        return self._features


@runtime_checkable
class Baseline(Protocol):
    """A forecaster measured beside the LSTM (docs/forecast-evidence.md, *Adding a baseline*)."""

    @property
    def name(self) -> str:
        """Its name in ``backtest.baselines``, ``--baselines`` and the evidence table."""
        ...

    @property
    def forecasts_returns(self) -> bool:
        """Its score forecasts the model's target return, so its sign is a call with a hit rate."""
        ...

    def panel(self, inputs: BaselineInputs) -> pd.DataFrame:
        """Date × symbol scores; the value at bar t may use bars ≤ t only."""
        ...


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


@dataclass(frozen=True)
class ClosesBaseline:
    """A baseline scored from each symbol's closes alone (a ranking, not a return forecast)."""

    name: str
    score: Callable[[Mapping[str, pd.Series]], pd.DataFrame]
    forecasts_returns: bool = False

    def panel(self, inputs: BaselineInputs) -> pd.DataFrame:
        return self.score(inputs.closes)


@dataclass(frozen=True)
class WalkForwardRidge:
    """``ridge`` of the module docstring, on the LSTM's features, target and lookback."""

    name: str = "ridge"
    forecasts_returns: bool = True

    def panel(self, inputs: BaselineInputs) -> pd.DataFrame:
        model = inputs.model
        return walk_forward_ridge(
            inputs.features(),
            inputs.closes,
            inputs.refit_dates,
            model.horizon,
            lookback_years=model.lookback_years,
            excess=model.target == "excess",
        )


#: The built-in baselines, in the order the evidence table shows them.
BUILTIN_BASELINES: tuple[Baseline, ...] = (
    ClosesBaseline("momentum_12_1", momentum_12_1),
    ClosesBaseline("reversal_1m", reversal_1m),
    WalkForwardRidge(),
)
