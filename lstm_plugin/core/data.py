"""Where daily OHLCV comes from: a folder of CSV files (optionally gzipped), DataFrames, or the bundled set.

Each file or frame is cleaned by :func:`~lstm_plugin.core.ohlcv.clean_ohlcv` (columns by name, one
date format per file, plausible values; a :class:`DataError` names the file and the line), so every
frame a :class:`DataSource` hands out has the same sorted ``date`` index and float ``open, high, low,
close, volume`` columns. A file may hold at most ``data.max_file_mb`` MiB of text, counted as it is
read and after decompression: a 13 MB gzip that expands to 3 GB stops there, in one line.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import re
import threading
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lstm_plugin.core.errors import DataError, InsufficientDataError, SymbolError
from lstm_plugin.core.names import BUNDLED_END, DEFAULT_END, DEFAULT_START
from lstm_plugin.core.ohlcv import (
    ADJUSTMENT_RANGE,
    PRICE_COLUMNS,
    PRICE_RANGE,
    VOLUME_RANGE,
    clean_ohlcv,
)
from lstm_plugin.core.quoting import first_line, shown

logger = logging.getLogger(__name__)

__all__ = [
    "ADJUSTMENT_RANGE",
    "BUNDLED_END",
    "DEFAULT_END",
    "DEFAULT_START",
    "MAX_FILE_MB",
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


def validate_symbol(symbol: str) -> str:
    """Return the canonical (upper-case) symbol, or raise :class:`SymbolError` before any file access."""
    if not isinstance(symbol, str):
        raise SymbolError(f"symbol › must be a string (got: {symbol!r})")
    canonical = symbol.strip().upper()
    if not SYMBOL_PATTERN.match(canonical) or ".." in canonical:
        raise SymbolError(f"symbol › {SYMBOL_RULE} (got: {symbol!r})")
    return canonical


#: What a data file may hold, by default: a century of daily bars is under 10 MiB.
MAX_FILE_MB = 256


def read_ohlcv_csv(path: str | Path, max_mb: int = MAX_FILE_MB) -> pd.DataFrame:
    """Read one ``SYMBOL.csv`` (optionally ``.gz``) with ``Date,Open,High,Low,Close[,Adj Close],Volume``;
    at most ``max_mb`` MiB of text, decompressed (``data.max_file_mb``)."""
    file = Path(path)
    try:
        blob = _read_capped(file, max_mb)
        raw = pd.read_csv(io.BytesIO(blob), dtype=str, keep_default_na=False, skip_blank_lines=False)
    except FileNotFoundError:
        raise DataError(f"{file} › file not found") from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{file} › empty file (no header, no rows)") from None
    except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        raise DataError(f"{file} › cannot parse CSV: {shown(first_line(exc))}") from None
    return clean_ohlcv(raw, source=str(file), line_offset=2)


def _read_capped(file: Path, max_mb: int) -> bytes:
    """The file's bytes (decompressed for ``.gz``), read no further than ``max_mb`` MiB."""
    packed = file.name.lower().endswith(".gz")
    limit = max_mb << 20
    with gzip.open(file, "rb") if packed else open(file, "rb") as stream:
        blob = stream.read(limit + 1)
    if len(blob) > limit:
        raise DataError(
            f"{file} › holds more than {max_mb} MiB of text{' once decompressed' if packed else ''}, over "
            "data.max_file_mb: not a daily price file? (raise the setting for a larger one)"
        )
    return blob


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
    #: data stops in the past gets a clock that stops there too
    #: (:func:`lstm_plugin.core.clock.default_clock`).
    sample_end: str | None = None
    #: It travels *by path* (docs/architecture.md, *Glossary*): a worker given it reads its own bars
    #: (a folder of files); else jobs carry the bars.
    by_path: bool = False

    def __init__(self) -> None:
        self._cache: dict[str, pd.DataFrame] = {}
        self._lock = threading.Lock()

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its cache and lock: a worker reads (and caches) its own bars."""
        return {k: v for k, v in self.__dict__.items() if k not in ("_cache", "_lock")}

    def __setstate__(self, state: dict[str, Any]) -> None:  # a copy in a worker (training.jobs.job_frames)
        self.__dict__.update(state)
        self._cache, self._lock, self._arrived_by_path = {}, threading.Lock(), True

    def symbols(self) -> list[str]:
        raise NotImplementedError

    def _read(self, symbol: str) -> pd.DataFrame:
        raise NotImplementedError

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


def _preview(items: list[str], limit: int = 8) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", … ({len(items)} in all)" if len(items) > limit else "") if items else "none"


class CSVFolderSource(DataSource):
    """Every ``SYMBOL.csv`` (or ``SYMBOL.csv.gz``) in one folder; file names match case-insensitively."""

    by_path = True

    def __init__(self, folder: str | Path, max_file_mb: int = MAX_FILE_MB) -> None:
        super().__init__()
        self.folder = Path(folder)
        self.max_file_mb = max_file_mb
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
        return read_ohlcv_csv(self._files[symbol], self.max_file_mb)


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


def open_source(path: str | Path | None = None, max_file_mb: int = MAX_FILE_MB) -> DataSource:
    """A folder source for ``path`` (its files at most ``max_file_mb`` MiB each), or the bundled data when
    ``path`` is ``None``."""
    return bundled_source() if path is None else CSVFolderSource(path, max_file_mb)
