"""From cleaned OHLCV to model inputs, through the ``lstm_features`` hook.

Training and serving build windows with the same functions, so a model sees at prediction time
exactly the features it was trained on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from lstm_plugin.core.config import ModelSection
from lstm_plugin.core.errors import InsufficientDataError, ModelError
from lstm_plugin.core.quoting import shown
from lstm_plugin.model.features import (
    FEATURE_HISTORY,
    forward_log_return,
    make_windows,
    sample_end_indices,
)
from lstm_plugin.model.window_rows import WindowRows, pooled_window_rows


class FeatureHooks(Protocol):
    """What samples need from the plugin manager (:class:`lstm_plugin.plugins.PluginManager` is one)."""

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]: ...


__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


@dataclass(frozen=True)
class SampleSet:
    """Labelled windows: ``windows`` (n, window, F) raw features, ``returns`` (n,) forward log returns,
    ``dates`` (n,) the bar each window ends at."""

    windows: np.ndarray | WindowRows
    returns: np.ndarray
    dates: np.ndarray

    def __len__(self) -> int:
        return int(self.returns.shape[0])

    def subset(self, mask: np.ndarray) -> SampleSet:
        """The rows of ``mask``; a view when they are one run of rows (a time split's segments of samples in
        date order), so a pooled training set is not held twice."""
        chosen = np.flatnonzero(mask)
        if len(chosen) and int(chosen[-1]) - int(chosen[0]) + 1 == len(chosen):
            rows = slice(int(chosen[0]), int(chosen[-1]) + 1)
            return SampleSet(self.windows[rows], self.returns[rows], self.dates[rows])
        return SampleSet(self.windows[mask], self.returns[mask], self.dates[mask])


def compute_features(
    ohlcv: pd.DataFrame, plugins: FeatureHooks, config: ModelSection, symbol: str
) -> pd.DataFrame:
    """All feature columns (built-ins first, then plugins) for ``symbol``'s bars, under the effective
    settings ``config`` of the model they feed."""
    parts = []
    for name, frame in plugins.call_each("lstm_features", ohlcv=ohlcv, config=config, symbol=symbol):
        if not isinstance(frame, pd.DataFrame) or not frame.index.equals(ohlcv.index):
            raise ModelError(
                f"plugin {name!r} › lstm_features › must return a DataFrame with the input's index"
            )
        parts.append(frame if (frame.dtypes == "float64").all() else _numeric(frame, name))
    features = (
        (parts[0] if len(parts) == 1 else pd.concat(parts, axis=1))
        if parts
        else pd.DataFrame(index=ohlcv.index)
    )
    duplicated = features.columns[features.columns.duplicated()].tolist()
    if duplicated:
        raise ModelError(f"lstm_features › duplicate feature names: {', '.join(map(str, duplicated))}")
    return features


def _numeric(frame: pd.DataFrame, plugin: str) -> pd.DataFrame:
    """A plugin's feature columns as float64; a column that is not numbers names the plugin and the column."""
    for column in frame.columns:
        try:
            frame[column].astype("float64")
        except (TypeError, ValueError):
            sample = next((v for v in frame[column] if not _is_number(v)), None)
            raise ModelError(
                f"plugin {plugin!r} › lstm_features › column {str(column)!r} is not numeric (got: "
                f"{shown(sample)})"
            ) from None
    return frame.astype("float64")


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _valid_rows(features: pd.DataFrame) -> np.ndarray:
    return np.isfinite(features.to_numpy(dtype="float64")).all(axis=1)


def wide_closes(closes: Mapping[str, pd.Series]) -> pd.DataFrame:
    """``{symbol: close}`` as one date × symbol frame (NaN where a symbol has no bar)."""
    return pd.DataFrame(dict(closes)).sort_index()


def universe_forward_mean(closes: Mapping[str, pd.Series], horizon: int) -> pd.Series:
    """Per date, the equal-weighted mean over the symbols of ``ln(c[t+h]/c[t])`` on each one's own bars:
    the benchmark an ``excess`` target is measured against (NaN where fewer than two symbols know it)."""
    forward = pd.DataFrame(
        {s: pd.Series(forward_log_return(c.to_numpy(), horizon), index=c.index) for s, c in closes.items()}
    )
    mean = forward.mean(axis=1)
    return mean.where(forward.notna().sum(axis=1) >= 2).rename("benchmark")


def training_samples(
    ohlcv: pd.DataFrame,
    features: pd.DataFrame,
    config: ModelSection,
    benchmark: pd.Series | None = None,
    lazy: bool = False,
) -> SampleSet:
    """Every window whose label is known inside ``ohlcv``: ``ln(c[t+h]/c[t])`` with ``model.target``
    ``return``, that minus ``benchmark`` at ``t`` (:func:`universe_forward_mean`) with ``excess``.
    ``lazy``: the windows as the rows they are cut from (:class:`~lstm_plugin.model.window_rows.WindowRows`),
    the same values in a ``window``-th of the memory, for a set that is pooled."""
    values = features.to_numpy(dtype="float64")
    ends = sample_end_indices(_valid_rows(features), config.window, config.horizon)
    returns = forward_log_return(ohlcv["close"].to_numpy(), config.horizon)
    if config.target == "excess":
        if benchmark is None:
            raise ModelError("model.target › 'excess' needs the universe's benchmark returns")
        returns = returns - benchmark.reindex(ohlcv.index).to_numpy(dtype="float64")
        ends = ends[np.isfinite(returns[ends])]
    windows = (
        WindowRows(values.astype("float32"), ends, config.window)
        if lazy
        else make_windows(values, ends, config.window)
    )
    return SampleSet(windows=windows, returns=returns[ends], dates=ohlcv.index.to_numpy()[ends])


def pooled_samples(per_symbol: Mapping[str, SampleSet]) -> SampleSet:
    """Samples of many symbols in one set, ordered by date then symbol (for the time split)."""
    parts = [per_symbol[s] for s in sorted(per_symbol) if len(per_symbol[s])]
    if not parts:
        return SampleSet(
            np.empty((0, 1, 1), dtype="float32"), np.empty(0), np.empty(0, dtype="datetime64[ns]")
        )
    dates = np.concatenate([p.dates for p in parts])
    order = np.argsort(dates, kind="stable")
    returns = np.concatenate([p.returns for p in parts])[order]
    lazy = [p.windows for p in parts if isinstance(p.windows, WindowRows)]
    if len(lazy) == len(parts) and len({w.length for w in lazy}) == 1:
        pooled = pooled_window_rows([(w.rows, w.ends) for w in lazy], lazy[0].length, order)
        return SampleSet(windows=pooled, returns=returns, dates=dates[order])
    # each part's windows go straight to their sorted rows: one copy of the pooled windows, not two
    place = np.empty_like(order)
    place[order] = np.arange(len(order))
    windows = np.empty((len(order), *parts[0].windows.shape[1:]), dtype="float32")
    start = 0
    for part in parts:
        windows[place[start : start + len(part)]] = part.windows
        start += len(part)
    return SampleSet(windows=windows, returns=returns, dates=dates[order])


def latest_window(
    ohlcv: pd.DataFrame,
    plugins: FeatureHooks,
    config: ModelSection,
    feature_names: list[str],
    window: int,
    symbol: str,
) -> np.ndarray:
    """The model input ``(1, window, n_features)`` ending at the last bar of ``ohlcv``.

    Only the last ``window + FEATURE_HISTORY`` bars are featurised (features are start-invariant,
    so this equals featurising everything). Raises :class:`InsufficientDataError` when the window
    is incomplete and :class:`ModelError` when the features differ from the model's.
    """
    tail = ohlcv.iloc[-(window + FEATURE_HISTORY) :]
    features = compute_features(tail, plugins, config, symbol)
    if list(features.columns) != list(feature_names):
        raise ModelError(
            f"features › the model expects {', '.join(feature_names)} but the plugins produce "
            f"{', '.join(map(str, features.columns))}"
        )
    values = features.to_numpy(dtype="float64")[-window:]
    if values.shape[0] < window or not np.isfinite(values).all():
        raise InsufficientDataError(
            f"need {window + FEATURE_HISTORY} bars of history for a forecast (got: {ohlcv.shape[0]})"
        )
    return values.astype("float32")[None, :, :]


def float32_samples(samples: SampleSet) -> SampleSet:
    """Float32 windows: what serving feeds a model, at half the bytes on the way back to the driver."""
    # a copy: a segment may be a view of the whole training set (``subset``), which it must not keep alive
    windows = np.array(samples.windows, dtype=np.float32)
    return SampleSet(windows, samples.returns.copy(), samples.dates.copy())
