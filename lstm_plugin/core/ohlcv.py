"""The rules every daily OHLCV frame passes before anything reads it: columns by name, dates, plausible
values.

Every frame that leaves :func:`clean_ohlcv` has a sorted, unique ``DatetimeIndex`` named ``date`` and float
columns ``open, high, low, close, volume`` adjusted for splits and dividends (when the input has an
``Adj Close`` column, ``f = Adj Close / Close`` scales open/high/low/close and ``volume / f``, as
Backtrader's Yahoo feed does).

Dates: one format per file, found from the file's own rows (:mod:`lstm_plugin.core.dates`).

Values: prices within :data:`PRICE_RANGE`, volume within :data:`VOLUME_RANGE`, ``Adj Close / Close``
within :data:`ADJUSTMENT_RANGE`, and ``low <= open, close <= high`` (to float rounding, :data:`ROUNDING`).

Repairs, each logged as a warning: rows whose every value is empty (Yahoo's ``null`` rows) are
dropped; rows out of date order are sorted. Everything else that is wrong raises :class:`DataError`
naming the source and the row: unparseable or ambiguous dates, duplicate dates, missing, non-numeric
or implausible values, missing columns, an empty frame. The CSV files of :mod:`lstm_plugin.core.data`
and the bars a live source delivers go through the same rules.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from lstm_plugin.core.dates import as_dates, line_label
from lstm_plugin.core.errors import DataError
from lstm_plugin.core.quoting import shown

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

PRICE_COLUMNS = ("open", "high", "low", "close")
OUTPUT_COLUMNS = ("open", "high", "low", "close", "volume")
#: Plausible values: outside these a number is a unit or typing error (``1e308``, a ``1e-300`` tick),
#: and refused rather than fed to a model that would silently lose the rows it overflows.
PRICE_RANGE = (1e-8, 1e9)
VOLUME_RANGE = (0.0, 1e15)
ADJUSTMENT_RANGE = (1e-6, 1e6)  # Adj Close / Close: splits and dividends, not a change of unit
ROUNDING = 1e-9  # relative slack of the low <= open, close <= high checks

_ALIASES = {
    "date": "date",
    "datetime": "date",
    "timestamp": "date",
    "time": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "volume": "volume",
    "adj close": "adj_close",
    "adj_close": "adj_close",
    "adjclose": "adj_close",
    "adjusted_close": "adj_close",
    "adjusted close": "adj_close",
}


def _row_label(frame_position: int, dates: pd.Series, line_offset: int | None) -> str:
    when = dates.iloc[frame_position]
    when_text = f" ({when:%Y-%m-%d})" if isinstance(when, pd.Timestamp) and not pd.isna(when) else ""
    return line_label(frame_position, line_offset) + when_text


def clean_ohlcv(raw: pd.DataFrame, source: str = "data", line_offset: int | None = None) -> pd.DataFrame:
    """Validate and adjust one symbol's OHLCV frame (see the module docstring for the rules).

    ``source`` names the file in error messages; ``line_offset`` maps row positions to file lines
    (2 for a CSV with one header line), or ``None`` to report DataFrame row positions.
    """
    frame = _ohlcv_columns(raw, source)
    table, dates, all_blank = _numbers(frame, source, line_offset)
    keep = ~all_blank.to_numpy()
    _check_values(table, dates, keep, source, line_offset)
    _check_unique_dates(dates, keep, source, line_offset)
    table.index = pd.DatetimeIndex(dates, name="date")
    table = table[keep]
    if not table.index.is_monotonic_increasing:
        logger.warning("%s: rows were not in date order; sorted them", source)
        table = table.sort_index(kind="stable")

    if "adj_close" in table:
        factor = table["adj_close"] / table["close"]
        for column in PRICE_COLUMNS:
            table[column] = table[column] * factor
        table["close"] = table["adj_close"]
        table["volume"] = table["volume"] / factor
    return table.loc[:, list(OUTPUT_COLUMNS)]


def _ohlcv_columns(raw: pd.DataFrame, source: str) -> pd.DataFrame:
    """The date and value columns under their canonical names, rows by position."""
    frame = raw.copy()
    if isinstance(frame.index, pd.DatetimeIndex) and not any(
        _ALIASES.get(str(c).strip().lower()) == "date" for c in frame.columns
    ):
        frame = frame.rename_axis("date").reset_index()
    frame = frame.reset_index(drop=True)  # row labels are positions from here on
    frame.columns = [_ALIASES.get(str(c).strip().lower(), str(c).strip().lower()) for c in frame.columns]
    missing = [c for c in ("date", *OUTPUT_COLUMNS) if c not in frame.columns]
    if missing:
        have = ", ".join(map(str, raw.columns)) or "none"
        raise DataError(f"{source} › missing columns: {', '.join(missing)} (have: {have})")
    if frame.empty:
        raise DataError(f"{source} › no rows of data")
    frame = frame.loc[:, [c for c in ("date", *OUTPUT_COLUMNS, "adj_close") if c in frame.columns]]

    return frame


def _numbers(
    frame: pd.DataFrame, source: str, line_offset: int | None
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """The values as float64, the parsed dates, and the rows without any value (dropped, with a warning)."""
    value_columns = [c for c in frame.columns if c != "date"]
    blank = frame[value_columns].isna() | frame[value_columns].astype(str).apply(
        lambda s: s.str.strip().str.lower()
    ).isin(["", "null", "nan", "none"])
    all_blank = blank.all(axis=1)
    if all_blank.any():
        logger.warning("%s: dropped %d rows with no values", source, int(all_blank.sum()))

    dates = as_dates(frame["date"].where(~all_blank), source, line_offset)
    bad_date = dates.isna() & ~all_blank
    if bad_date.any():
        pos = int(np.flatnonzero(bad_date.to_numpy())[0])
        raise DataError(
            f"{source} › {_row_label(pos, dates, line_offset)} › date is missing (got: "
            f"{shown(frame['date'].iloc[pos])})"
        )

    numbers = {}
    for column in value_columns:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & ~all_blank
        if bad.any():
            pos = int(np.flatnonzero(bad.to_numpy())[0])
            cell = frame[column].iloc[pos]
            rule = "is missing" if blank[column].iloc[pos] else "is not a number"
            raise DataError(
                f"{source} › {_row_label(pos, dates, line_offset)} › {column} {rule} (got: {shown(cell)})"
            )
        numbers[column] = values.astype("float64")
    table = pd.DataFrame(numbers)

    return table, dates, all_blank


def _check_values(
    table: pd.DataFrame, dates: pd.Series, keep: np.ndarray, source: str, line_offset: int | None
) -> None:
    """Refuse the first kept row breaking a rule (finite, positive, in range, low <= open, close <= high)."""
    prices = table[[c for c in (*PRICE_COLUMNS, "adj_close") if c in table]]
    low, high = PRICE_RANGE
    checks = [
        (~np.isfinite(table.to_numpy()).all(axis=1), "values must be finite"),
        (prices.le(0).any(axis=1), "prices must be positive"),
        (table["volume"] < 0, "volume must not be negative"),
        (((prices < low) | (prices > high)).any(axis=1), f"prices must be between {low:g} and {high:g}"),
        (table["volume"] > VOLUME_RANGE[1], f"volume must be at most {VOLUME_RANGE[1]:g}"),
        (table["low"] > table["high"], "low must not exceed high"),
        (_outside(table["open"], table["low"], table["high"]), "open must be between low and high"),
        (_outside(table["close"], table["low"], table["high"]), "close must be between low and high"),
    ]
    if "adj_close" in table:
        factor = table["adj_close"] / table["close"]
        checks.append(
            (
                (factor < ADJUSTMENT_RANGE[0]) | (factor > ADJUSTMENT_RANGE[1]),
                f"Adj Close / Close must be between {ADJUSTMENT_RANGE[0]:g} and {ADJUSTMENT_RANGE[1]:g} (a "
                f"split or dividend, not a change of unit)",
            )
        )
    for bad, rule in checks:
        bad = np.asarray(bad) & keep
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            row = table.iloc[pos].to_dict()
            got = ", ".join(f"{k}={v:g}" for k, v in row.items())
            raise DataError(f"{source} › {_row_label(pos, dates, line_offset)} › {rule} (got: {got})")


def _check_unique_dates(dates: pd.Series, keep: np.ndarray, source: str, line_offset: int | None) -> None:
    duplicated = dates.duplicated(keep="first").to_numpy() & keep
    if duplicated.any():
        pos = int(np.flatnonzero(duplicated)[0])
        first = int(np.flatnonzero((dates == dates.iloc[pos]).to_numpy())[0])
        raise DataError(
            f"{source} › {_row_label(pos, dates, line_offset)} › duplicate date "
            f"(also at {_row_label(first, dates, line_offset)})"
        )


def _outside(price: pd.Series, low: pd.Series, high: pd.Series) -> pd.Series:
    """``price`` outside ``low..high`` by more than float rounding (adjusted bars are re-cleaned, and
    ``high × f`` may round one unit below ``close × f`` where the raw close was the high)."""
    slack = ROUNDING * price.abs()
    return (price < low - slack) | (price > high + slack)
