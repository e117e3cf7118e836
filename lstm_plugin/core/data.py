"""Loading, validating and adjusting daily OHLCV: a folder of CSV files, DataFrames, or the bundled set.

Every frame that leaves this module has a sorted, unique ``DatetimeIndex`` named ``date`` and float
columns ``open, high, low, close, volume`` adjusted for splits and dividends (when the input has an
``Adj Close`` column, ``f = Adj Close / Close`` scales open/high/low/close and ``volume / f``, as
Backtrader's Yahoo feed does).

Dates: one format per file, found from the file's own rows (:mod:`lstm_plugin.core.dates`).

Values: prices within :data:`PRICE_RANGE`, volume within :data:`VOLUME_RANGE`, ``Adj Close / Close``
within :data:`ADJUSTMENT_RANGE`, and ``low <= open, close <= high`` (to float rounding, :data:`ROUNDING`).

Repairs, each logged as a warning: rows whose every value is empty (Yahoo's ``null`` rows) are
dropped; rows out of date order are sorted. Everything else that is wrong raises :class:`DataError`
naming the file and the row: unparseable or ambiguous dates, duplicate dates, missing, non-numeric
or implausible values, missing columns, an empty file.
"""

from __future__ import annotations

import hashlib
import logging
import re
import threading
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstm_plugin.core.dates import as_dates, line_label
from lstm_plugin.core.errors import DataError, InsufficientDataError, SymbolError
from lstm_plugin.core.names import BUNDLED_END, DEFAULT_END, DEFAULT_START

logger = logging.getLogger(__name__)

__all__ = [
    "ADJUSTMENT_RANGE",
    "BUNDLED_END",
    "DEFAULT_END",
    "DEFAULT_START",
    "PRICE_COLUMNS",
    "PRICE_RANGE",
    "SYMBOL_PATTERN",
    "VOLUME_RANGE",
    "CSVFolderSource",
    "DataSource",
    "FrameSource",
    "bundled_source",
    "clean_ohlcv",
    "frame_fingerprint",
    "open_source",
    "read_ohlcv_csv",
    "validate_symbol",
]

#: Symbols are 1-20 characters: an upper-case letter or digit (or ``^`` for indexes) first, then
#: letters, digits and ``. - = ^ _``. Lower case is accepted and upper-cased. No ``/``, ``\\`` or ``..``.
SYMBOL_PATTERN = re.compile(r"^[A-Z0-9^][A-Z0-9.\-=^_]{0,19}$")
SYMBOL_RULE = (
    "must be 1-20 characters of A-Z 0-9 . - = ^ _ starting with a letter, digit or ^ and without '..'"
)
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


def validate_symbol(symbol: str) -> str:
    """Return the canonical (upper-case) symbol, or raise :class:`SymbolError` before any file access."""
    if not isinstance(symbol, str):
        raise SymbolError(f"symbol › must be a string (got: {symbol!r})")
    canonical = symbol.strip().upper()
    if not SYMBOL_PATTERN.match(canonical) or ".." in canonical:
        raise SymbolError(f"symbol › {SYMBOL_RULE} (got: {symbol!r})")
    return canonical


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
            f"{frame['date'].iloc[pos]!r})"
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
                f"{source} › {_row_label(pos, dates, line_offset)} › {column} {rule} (got: {cell!r})"
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


def read_ohlcv_csv(path: str | Path) -> pd.DataFrame:
    """Read one ``SYMBOL.csv`` (optionally ``.gz``) with ``Date,Open,High,Low,Close[,Adj Close],Volume``."""
    file = Path(path)
    try:
        raw = pd.read_csv(file, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except FileNotFoundError:
        raise DataError(f"{file} › file not found") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{file} › empty file (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"{file} › cannot parse CSV: {first_line}") from None
    return clean_ohlcv(raw, source=str(file), line_offset=2)


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of a cleaned frame's dates and values: equal fingerprints mean identical training data."""
    digest = hashlib.sha256()
    digest.update(frame.index.to_numpy(dtype="datetime64[ns]").view("int64").tobytes())
    digest.update(np.ascontiguousarray(frame.to_numpy(dtype="float64")).tobytes())
    digest.update(",".join(map(str, frame.columns)).encode())
    return digest.hexdigest()


class DataSource:
    """A universe of symbols with cleaned OHLCV; subclasses say where frames come from.

    Frames are loaded once and cached; :meth:`load` returns the bars dated at or before ``end``.
    """

    name = "data"
    #: The last bar of a fixed historical sample (the bundled set), else ``None``: a source whose
    # : data stops in the past gets a clock that stops there too
    # (:func:`lstm_plugin.core.clock.default_clock`).
    sample_end: str | None = None
    #: Cheap to send to a worker, which reads its own bars (a folder of files); else jobs carry the bars.
    portable: bool = False

    def __init__(self) -> None:
        self._cache: dict[str, pd.DataFrame] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its cache and lock: a worker reads (and caches) its own bars."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_cache", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:  # a copy in a worker (training.jobs.job_frames)
        self.__dict__.update(state)
        self._cache, self._lock, self._shipped = {}, threading.Lock(), True

    def symbols(self) -> list[str]:
        raise NotImplementedError

    def _read(self, symbol: str) -> pd.DataFrame:
        raise NotImplementedError

    def has(self, symbol: str) -> bool:
        return validate_symbol(symbol) in self.symbols()

    def load(self, symbol: str, end: pd.Timestamp | str | None = None) -> pd.DataFrame:
        """Cleaned bars of ``symbol`` dated ``<= end`` (all bars when ``end`` is ``None``)."""
        canonical = validate_symbol(symbol)
        with self._lock:
            frame = self._cache.get(canonical)
        if frame is None:
            if canonical not in self.symbols():
                raise InsufficientDataError(
                    f"{self.name} › unknown symbol {canonical} (have: {_preview(self.symbols())})"
                )
            frame = self._read(canonical)
            with self._lock:
                self._cache[canonical] = frame
        if end is not None:
            frame = frame.loc[: pd.Timestamp(end)]
        return frame

    def load_many(
        self, symbols: Iterable[str], end: pd.Timestamp | str | None = None
    ) -> dict[str, pd.DataFrame]:
        return {validate_symbol(s): self.load(s, end) for s in symbols}


def _preview(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "") if items else "none"


class CSVFolderSource(DataSource):
    """Every ``SYMBOL.csv`` (or ``SYMBOL.csv.gz``) in one folder; file names match case-insensitively."""

    portable = True

    def __init__(self, folder: str | Path) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.name = str(self.folder)
        if not self.folder.is_dir():
            raise DataError(f"{self.folder} › data folder not found")
        self._files: dict[str, Path] = {}
        self._clashes: dict[str, list[Path]] = {}
        for file in sorted(self.folder.iterdir()):
            stem = file.name[:-7] if file.name.lower().endswith(".csv.gz") else file.name[:-4]
            if not file.name.lower().endswith((".csv", ".csv.gz")) or not file.is_file():
                continue
            try:
                symbol = validate_symbol(stem)
            except SymbolError:
                logger.warning("%s: ignored file with an invalid symbol name", file)
                continue
            if symbol in self._files:
                self._clashes.setdefault(symbol, [self._files[symbol]]).append(file)
            self._files[symbol] = file

    def symbols(self) -> list[str]:
        return sorted(self._files)

    def _read(self, symbol: str) -> pd.DataFrame:
        clash = self._clashes.get(symbol)
        if clash:  # AAPL.csv beside aapl.csv or AAPL.csv.gz: neither may silently win
            names = [p.name for p in clash]
            both = "both" if len(names) == 2 else "all"
            raise DataError(
                f"{self.folder} › {', '.join(names[:-1])} and {names[-1]} {both} hold symbol {symbol}; keep "
                f"one of them"
            )
        return read_ohlcv_csv(self._files[symbol])


class FrameSource(DataSource):
    """Symbols given as in-memory DataFrames (a ``Date`` column or a ``DatetimeIndex``)."""

    def __init__(self, frames: Mapping[str, pd.DataFrame]) -> None:
        super().__init__()
        self.name = "dataframes"
        self._frames = {validate_symbol(s): f for s, f in frames.items()}

    def symbols(self) -> list[str]:
        return sorted(self._frames)

    def _read(self, symbol: str) -> pd.DataFrame:
        return clean_ohlcv(self._frames[symbol], source=f"DataFrame[{symbol}]")


def bundled_source() -> CSVFolderSource:
    """The 24 bundled US large caps (1999-11-01 .. 2021-04-21); see ``datasets/us_daily/ATTRIBUTION.txt``."""
    folder = resources.files("lstm_plugin") / "datasets" / "us_daily"
    source = CSVFolderSource(Path(str(folder)))
    source.name = "bundled data"
    source.sample_end = BUNDLED_END
    return source


def open_source(path: str | Path | None = None) -> DataSource:
    """A folder source for ``path``, or the bundled data when ``path`` is ``None``."""
    return bundled_source() if path is None else CSVFolderSource(path)
