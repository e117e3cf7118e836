"""Dates of a price file: one format per file, found from the file's own rows, never guessed per row.

Supported: ``YYYY-MM-DD`` (Yahoo's and Backtrader's), ``YYYY-MM-DD HH:MM[:SS[.f]]`` (``T`` or a
space; a time-zone offset is dropped, so each daily bar keeps the local date it was stamped with,
also when the offsets change across daylight saving), ``YYYYMMDD``, and ``DD/MM/YYYY`` or
``MM/DD/YYYY`` when some row settles which (a field above 12 is a day). Slashed dates that never
settle it, a file mixing formats, and impossible dates (``2020-02-30``) raise :class:`DataError`
naming the line: read with day and month swapped, a third of a daily file would move silently.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

from lstm_plugin.core.errors import DataError
from lstm_plugin.core.quoting import shown

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: Plausible dates of a daily bar: outside them a date is a typing error (2300-01-02), and beyond
#: 1677 .. 2262 pandas could not even hold it.
DATE_RANGE = (pd.Timestamp("1800-01-01"), pd.Timestamp("2199-12-31"))

_OFFSET = r"(?:Z|[+-]\d{2}:?\d{2})?"
#: (name shown to users, full-match pattern, strptime format or None for ISO 8601 date-times)
DATE_FORMATS = (
    ("YYYY-MM-DD", r"\d{4}-\d{2}-\d{2}", "%Y-%m-%d"),
    ("YYYY-MM-DD HH:MM:SS", r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?" + _OFFSET, None),
    ("YYYYMMDD", r"\d{8}", "%Y%m%d"),
    ("DD/MM/YYYY or MM/DD/YYYY", r"\d{1,2}/\d{1,2}/\d{4}", "slashed"),
)


def parse_dates(values: pd.Series, source: str = "data", line_offset: int | None = None) -> pd.Series:
    """Parse a column of date strings with the one format the file uses (see the module docstring).

    Blank cells give ``NaT`` (their rows are dropped or reported by the caller). Raises
    :class:`DataError` naming the row for a date in another format, an impossible date
    (``2020-02-30``) or slashed dates that never say which of day and month comes first.
    """
    text = values.fillna("").astype(str).str.strip()
    blank = text.str.lower().isin(["", "nan", "nat", "none", "null"])
    if blank.all():
        return pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    first = int(np.flatnonzero(~blank.to_numpy())[0])
    for name, pattern, fmt in DATE_FORMATS:
        if re.fullmatch(pattern, text.iloc[first]):
            break
    else:
        raise DataError(
            f"{source} › {line_label(first, line_offset)} › date is not a date in a supported format "
            f"(YYYY-MM-DD, YYYY-MM-DD HH:MM:SS, YYYYMMDD, DD/MM/YYYY or MM/DD/YYYY) (got: "
            f"{shown(values.iloc[first])})"
        )
    odd = ~text.str.fullmatch(pattern) & ~blank
    if odd.any():
        pos = int(np.flatnonzero(odd.to_numpy())[0])
        other = next((n for n, p, _ in DATE_FORMATS if re.fullmatch(p, text.iloc[pos])), None)
        rule = (
            "date is not a date"
            if other is None
            else (
                f"date is written {other} but the file's dates are {name} (from "
                f"{line_label(first, line_offset)})"
            )
        )
        raise DataError(
            f"{source} › {line_label(pos, line_offset)} › {rule} (got: {shown(values.iloc[pos])})"
        )
    if fmt is None:  # ISO date-time: keep each bar's local wall time, drop any offset
        fmt, text = "ISO8601", text.str.replace(r"(?:Z|[+-]\d{2}:?\d{2})$", "", regex=True)
    elif fmt == "slashed":
        fmt = _slashed_format(text[~blank], source, line_offset)
    parsed = pd.to_datetime(text.where(~blank), format=fmt, errors="coerce")
    impossible = parsed.isna() & ~blank
    if impossible.any():
        pos = int(np.flatnonzero(impossible.to_numpy())[0])
        raise DataError(
            f"{source} › {line_label(pos, line_offset)} › date is not a date (got: {shown(values.iloc[pos])})"
        )
    _check_range(parsed, values, source, line_offset)
    return parsed


def _check_range(parsed: pd.Series, values: pd.Series, source: str, line_offset: int | None) -> None:
    """A :class:`DataError` naming the first date outside :data:`DATE_RANGE`."""
    low, high = DATE_RANGE
    outside = ((parsed < low) | (parsed > high)).fillna(False).to_numpy()
    if outside.any():
        pos = int(np.flatnonzero(outside)[0])
        raise DataError(
            f"{source} › {line_label(pos, line_offset)} › date is outside {low:%Y-%m-%d} .. {high:%Y-%m-%d} "
            f"(got: {shown(values.iloc[pos])})"
        )


def _slashed_format(text: pd.Series, source: str, line_offset: int | None) -> str:
    """``%d/%m/%Y`` or ``%m/%d/%Y``, whichever the rows prove (a field above 12 is a day)."""
    parts = text.str.split("/", expand=True).astype(int)
    day_first = (parts[0] > 12).to_numpy()
    month_first = (parts[1] > 12).to_numpy()
    if day_first.any() and month_first.any():
        a, b = int(np.flatnonzero(day_first)[0]), int(np.flatnonzero(month_first)[0])
        raise DataError(
            f"{source} › {line_label(text.index[b], line_offset)} › dates mix DD/MM/YYYY "
            f"({line_label(text.index[a], line_offset)}: "
            f"{shown(text.iloc[a])}) and MM/DD/YYYY (got: {shown(text.iloc[b])}); write them as YYYY-MM-DD"
        )
    if not (day_first.any() or month_first.any()):
        raise DataError(
            f"{source} › {line_label(text.index[0], line_offset)} › dates are ambiguous: no day above 12 "
            f"says whether "
            f"they are DD/MM/YYYY or MM/DD/YYYY (got: {shown(text.iloc[0])}); write them as YYYY-MM-DD"
        )
    return "%d/%m/%Y" if day_first.any() else "%m/%d/%Y"


def line_label(frame_position: int, line_offset: int | None) -> str:
    """``line 12`` of a file (``line_offset`` lines before the first row), else ``row 10`` of a DataFrame."""
    return f"row {frame_position}" if line_offset is None else f"line {frame_position + line_offset}"


def as_dates(column: pd.Series, source: str = "data", line_offset: int | None = None) -> pd.Series:
    """Naive dates from a CSV column of strings, or from a DataFrame's datetime (or string) column.

    Time-zone-aware values keep their local wall time: a daily bar keeps the date it was stamped with.
    """
    if pd.api.types.is_datetime64_any_dtype(column):
        if getattr(column.dt, "tz", None) is not None:
            column = column.dt.tz_localize(None)
        _check_range(column, column, source, line_offset)
        return column.astype("datetime64[ns]")
    return parse_dates(column, source, line_offset).astype("datetime64[ns]")


def iso_day(value: Any) -> str:
    """A timestamp as ISO text, as model metadata records dates."""
    return str(pd.Timestamp(value).isoformat())
