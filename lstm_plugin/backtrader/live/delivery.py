"""What a bar source hands over, made safe before the hub holds it (docs/paper.md, *Adapters*).

A :class:`~lstm_plugin.backtrader.live.sources.BarSource` may be anyone's code: its frames may name their
columns in another order or case, carry a NaN, repeat a date or go back in time. Every delivery, and
the history a first run seeds the bar store with, goes through the CSV reader's cleaning
(:func:`~lstm_plugin.core.data.clean_ohlcv`: columns by name, finite and plausible values, one row per
date), so the hub, the feeds and the bar store all see ``open, high, low, close, volume`` by name.
A new bar also may not move any price more than ``data.max_move`` times away from the previous close
(a unit or typing error: a 1000x jump in a watched file), and may not be dated between bars the run
already has. A delivery that breaks a rule is refused whole, as a source failure naming the source,
the symbol and the row; the hub then waits for a good read.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from lstm_plugin.core.errors import DataError
from lstm_plugin.core.ohlcv import (
    OUTPUT_COLUMNS,
    PRICE_COLUMNS,
    PRICE_RANGE,
    ROUNDING,
    VOLUME_RANGE,
    clean_ohlcv,
)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def clean_history(frame: pd.DataFrame, source: str, symbol: str) -> pd.DataFrame:
    """A source's history of ``symbol``, cleaned as a CSV file is (:class:`DataError` naming the row)."""
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source} › {symbol} › history is a {type(frame).__name__}, not a DataFrame")
    if frame.empty:
        return _empty()
    return clean_ohlcv(frame, source=f"{source} › {symbol} › history")


@dataclass(frozen=True)
class Held:
    """What the run holds of one symbol when a delivery arrives: its newest bar's date and close, and all
    its dates (read only when a delivery reaches back to them: a replay's never does)."""

    newest: pd.Timestamp | None
    last_close: float | None
    dates: Callable[[], pd.DatetimeIndex]


def clean_delivery(
    frame: object, source: str, symbol: str, held: Held, max_move: float | None
) -> pd.DataFrame:
    """The new rows of one symbol's delivery, cleaned; rows dated at or before ``held.newest`` are dropped as
    re-deliveries, unless their date is not among the held ones (a date going backwards).
    :class:`DataError` names the row that breaks a rule."""
    where = f"{source} › {symbol}"
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{where} › delivered a {type(frame).__name__}, not a DataFrame")
    if frame.empty:
        return _empty()
    dates = _dates(frame, where)
    if len(dates) > 1 and (np.diff(dates.asi8) < 0).any():
        at = int(np.flatnonzero(np.diff(dates.asi8) < 0)[0]) + 1
        raise DataError(f"{where} › row {at} ({dates[at]:%Y-%m-%d}) › dated before the row above it")
    bars = frame if _clean_already(frame) else clean_ohlcv(frame, source=where)
    if held.newest is not None and len(bars) and bars.index[0] <= held.newest:
        old = bars.index[bars.index <= held.newest]
        back = old[~old.isin(held.dates())]
        if len(back):
            raise DataError(
                f"{where} › a bar dated {back[0]:%Y-%m-%d}, before {held.newest:%Y-%m-%d} which the run "
                "already has (a date going backwards)"
            )
        bars = bars.iloc[len(old) :]
    if max_move is not None and len(bars):
        _check_moves(bars, held.last_close, max_move, where)
    return bars


def _clean_already(frame: pd.DataFrame) -> bool:
    """Whether ``frame`` is what :func:`clean_ohlcv` would return unchanged (a replay's bars are): the
    same rules, checked on the array at once, so the common case skips pandas' per-frame overhead (about
    10 ms a delivery). Anything else goes through the cleaning, which names what is wrong."""
    index = frame.index
    if (
        not isinstance(index, pd.DatetimeIndex)
        or index.tz is not None
        or index.dtype != "datetime64[ns]"
        or index.name != "date"
        or list(frame.columns) != list(OUTPUT_COLUMNS)
        or not all(dtype == "float64" for dtype in frame.dtypes)
        or not index.is_monotonic_increasing
        or not index.is_unique
    ):
        return False
    values = frame.to_numpy()
    prices, volume = values[:, :4], values[:, 4]
    low, high = values[:, 2], values[:, 1]
    open_close = values[:, [0, 3]]
    slack = ROUNDING * np.abs(open_close)
    inside = (open_close >= low[:, None] - slack) & (open_close <= high[:, None] + slack)
    return bool(
        np.isfinite(values).all()
        and ((prices >= PRICE_RANGE[0]) & (prices <= PRICE_RANGE[1])).all()
        and ((volume >= 0) & (volume <= VOLUME_RANGE[1])).all()
        and (low <= high).all()
        and inside.all()
    )


def _dates(frame: pd.DataFrame, where: str) -> pd.DatetimeIndex:
    """The frame's dates in delivery order (its index, or its date column), for the order check."""
    if isinstance(frame.index, pd.DatetimeIndex):
        return frame.index
    for column in frame.columns:
        if str(column).strip().lower() in ("date", "datetime", "timestamp", "time"):
            parsed = pd.to_datetime(frame[column], errors="coerce")
            if not parsed.isna().any():
                return pd.DatetimeIndex(parsed)
    return pd.DatetimeIndex([])  # the cleaning says what is wrong with the dates


def _check_moves(bars: pd.DataFrame, last_close: float | None, max_move: float, where: str) -> None:
    """Every price of each new bar within ``max_move`` times of the close before it (one array step)."""
    prices = bars.to_numpy(dtype="float64")[:, bars.columns.get_indexer(PRICE_COLUMNS)]  # by name
    closes = prices[:, PRICE_COLUMNS.index("close")]
    previous = np.concatenate([[np.nan if last_close is None else last_close], closes[:-1]])
    with np.errstate(divide="ignore", invalid="ignore"):
        moves = np.abs(np.log(prices / previous[:, None]))
    beyond = np.isfinite(previous)[:, None] & (moves > math.log(max_move))
    if not beyond.any():
        return
    row = int(np.flatnonzero(beyond.any(axis=1))[0])
    column = int(np.argmax(np.where(beyond[row], moves[row], -np.inf)))
    price, before = float(prices[row, column]), float(previous[row])
    raise DataError(
        f"{where} › {bars.index[row]:%Y-%m-%d} › {PRICE_COLUMNS[column]} {price:g} is {price / before:.4g} "
        f"times the previous close {before:g}, beyond data.max_move ({max_move:g}): a unit or typing error? "
        "(raise the setting for a real move, such as a split in unadjusted prices)"
    )


def _empty() -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series(dtype="float64") for c in ("open", "high", "low", "close", "volume")},
        index=pd.DatetimeIndex([], name="date"),
    )
