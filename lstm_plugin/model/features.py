"""Causal features, targets, windows and scaling: pure numpy/pandas, no torch.

Every built-in feature at bar t is computed from bars ``t-59 .. t`` only, each value from its own
window (no running sums), so features do not depend on where the series starts or ends: computing
on a prefix, on a tail, or on the whole series gives the same bits at the same bar.

Built-in features (``c``, ``o``, ``h``, ``l``, ``v`` are adjusted close, open, high, low, volume):

============== ===================================================================
``ret_1``      ``ln(c[t] / c[t-1])`` — one-bar log return
``ret_5``      ``ln(c[t] / c[t-5])`` — one-week momentum
``ret_20``     ``ln(c[t] / c[t-20])`` — one-month momentum
``vol_20``     standard deviation of ``ret_1`` over the last 20 bars — realised volatility
``range_hl``   ``ln(h[t] / l[t])`` — intraday range
``close_loc``  ``(c - l) / (h - l) - 0.5`` — where the close sits in the day's range (0 if h == l)
``gap``        ``ln(o[t] / c[t-1])`` — overnight gap
``volume_z``   ``ln((v[t] + 1) / (mean(v[t-19..t]) + 1))`` — volume against its 20-bar mean
``rsi_14``     ``(RSI - 50) / 50`` with RSI from 14-bar simple means of gains and losses
``sma_gap_50`` ``ln(c[t] / mean(c[t-49..t]))`` — distance from the 50-bar average
============== ===================================================================

Target: the forward log return ``y[t] = ln(c[t+h] / c[t])`` over ``horizon`` bars, known at bar
``t+h``. Classes: ``down`` when ``y < -threshold``, ``up`` when ``y > threshold``, else ``neutral``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

BUILTIN_FEATURES = (
    "ret_1",
    "ret_5",
    "ret_20",
    "vol_20",
    "range_hl",
    "close_loc",
    "gap",
    "volume_z",
    "rsi_14",
    "sma_gap_50",
)
#: Class order of the model's probability output.
CLASSES = ("down", "neutral", "up")
#: Bars of history before a window that feature computation may look at (built-ins need 50;
#: plugin features must not need more).
FEATURE_HISTORY = 60


def _rolling(values: np.ndarray, length: int, reducer) -> np.ndarray:
    """``reducer`` over each trailing window of ``length``; NaN where the window is incomplete."""
    out = np.full(values.shape[0], np.nan)
    if values.shape[0] >= length:
        out[length - 1 :] = reducer(sliding_window_view(values, length), axis=-1)
    return out


def _lagged(values: np.ndarray, lag: int) -> np.ndarray:
    out = np.full(values.shape[0], np.nan)
    if values.shape[0] > lag:
        out[lag:] = values[:-lag]
    return out


def builtin_features(ohlcv: pd.DataFrame) -> pd.DataFrame:
    """The built-in feature columns (see module docstring) for a cleaned OHLCV frame.

    Rows with incomplete history hold NaN; the index is the input's.
    """
    close = ohlcv["close"].to_numpy(dtype="float64")
    high = ohlcv["high"].to_numpy(dtype="float64")
    low = ohlcv["low"].to_numpy(dtype="float64")
    open_ = ohlcv["open"].to_numpy(dtype="float64")
    volume = ohlcv["volume"].to_numpy(dtype="float64")
    log_close = np.log(close)

    ret_1 = log_close - _lagged(log_close, 1)
    change = np.diff(close, prepend=np.nan)
    gains = np.where(change > 0, change, 0.0)
    losses = np.where(change < 0, -change, 0.0)
    gains[0] = losses[0] = np.nan
    mean_gain = _rolling(gains, 14, np.mean)
    mean_loss = _rolling(losses, 14, np.mean)
    total = mean_gain + mean_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        rsi = np.where(total > 0, 100.0 * mean_gain / total, 50.0)
        rsi = np.where(np.isnan(total), np.nan, rsi)
        spread = high - low
        close_loc = np.where(spread > 0, (close - low) / spread - 0.5, 0.0)

    columns = {
        "ret_1": ret_1,
        "ret_5": log_close - _lagged(log_close, 5),
        "ret_20": log_close - _lagged(log_close, 20),
        "vol_20": _rolling(ret_1, 20, lambda w, axis: np.std(w, axis=axis, ddof=1)),
        "range_hl": np.log(high / low),
        "close_loc": close_loc,
        "gap": np.log(open_) - _lagged(log_close, 1),
        "volume_z": np.log(volume + 1.0) - np.log(_rolling(volume, 20, np.mean) + 1.0),
        "rsi_14": (rsi - 50.0) / 50.0,
        "sma_gap_50": log_close - np.log(_rolling(close, 50, np.mean)),
    }
    return pd.DataFrame(
        np.column_stack(list(columns.values())), index=ohlcv.index, columns=list(columns)
    )  # one block: no per-column copies


def forward_log_return(close: np.ndarray, horizon: int) -> np.ndarray:
    """``ln(c[t+h] / c[t])``; NaN for the last ``horizon`` bars, whose outcome is not known yet."""
    log_close = np.log(np.asarray(close, dtype="float64"))
    out = np.full(log_close.shape[0], np.nan)
    if log_close.shape[0] > horizon:
        out[:-horizon] = log_close[horizon:] - log_close[:-horizon]
    return out


def direction_classes(returns: np.ndarray, threshold: float) -> np.ndarray:
    """0 = down (``y < -threshold``), 1 = neutral, 2 = up (``y > threshold``), as in :data:`CLASSES`."""
    returns = np.asarray(returns)
    return np.where(returns > threshold, 2, np.where(returns < -threshold, 0, 1)).astype("int64")


def sample_end_indices(valid: np.ndarray, window: int, horizon: int | None) -> np.ndarray:
    """Bars ``t`` whose whole window ``t-window+1 .. t`` has valid features.

    With ``horizon``, only bars whose label is known inside the data (``t + horizon`` < rows) —
    the rule that keeps training labels from peeking past the training time.
    """
    valid = np.asarray(valid, dtype=bool)
    if valid.shape[0] < window:
        return np.empty(0, dtype="int64")
    full = sliding_window_view(valid, window).all(axis=-1)
    ends = np.flatnonzero(full) + window - 1
    if horizon is not None:
        ends = ends[ends + horizon < valid.shape[0]]
    return ends.astype("int64")


def make_windows(features: np.ndarray, end_indices: np.ndarray, window: int) -> np.ndarray:
    """Stack ``features[t-window+1 : t+1]`` for each end index: shape ``(n, window, n_features)``."""
    features = np.asarray(features)
    if len(end_indices) == 0:  # also when there are fewer rows than one window
        return np.empty((0, window, features.shape[1]), dtype="float32")
    views = sliding_window_view(np.asarray(features), window, axis=0)  # (rows-window+1, F, window)
    return np.ascontiguousarray(
        views[np.asarray(end_indices) - window + 1].transpose(0, 2, 1), dtype="float32"
    )


@dataclass(frozen=True)
class Scaler:
    """Per-feature standardisation, fitted on training rows only and shipped inside the ONNX graph."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, rows: np.ndarray) -> Scaler:
        rows = np.asarray(rows, dtype="float64")
        std = rows.std(axis=0)
        return cls(mean=rows.mean(axis=0), std=np.where(std > 1e-12, std, 1.0))

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.mean) / self.std).astype("float32")


def time_split(
    sample_dates: np.ndarray, validation_fraction: float, test_fraction: float, gap: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Masks (train, validation, test) by time: oldest dates train, newest test.

    ``gap`` distinct dates are dropped before the validation and before the test segment, so no
    training label (which spans ``horizon`` bars) overlaps the dates it is judged on.
    """
    unique = np.unique(sample_dates)
    n = unique.shape[0]
    n_test = max(1, int(round(n * test_fraction)))
    n_val = max(1, int(round(n * validation_fraction)))
    test_start = n - n_test
    val_start = test_start - gap - n_val
    train_end = val_start - gap  # exclusive
    if train_end < 1:
        raise ValueError(f"too few dates ({n}) for a split with gap {gap}")
    position = np.searchsorted(unique, sample_dates)
    train = position < train_end
    val = (position >= val_start) & (position < val_start + n_val)
    test = position >= test_start
    return train, val, test
