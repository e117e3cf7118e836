"""The data behind Backtrader feeds, as a :class:`~lstm_plugin.core.data.DataSource` for models and scores.

Scores and forecasts read the same files or frames the feeds were built from — all of their bars,
including history before a feed's ``fromdate`` — and every consumer cuts them at the current bar.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd

from lstm_plugin.core.data import DataSource, clean_ohlcv, read_ohlcv_csv, validate_symbol
from lstm_plugin.core.errors import DataError

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def feed_symbol(data: Any) -> str:
    """The symbol a feed trades: its ``name`` (``cerebro.adddata(feed, name='AAPL')``), else its file's
    stem."""
    name = getattr(data, "_name", "") or ""
    if not name and isinstance(getattr(data.p, "dataname", None), (str, Path)):
        name = Path(data.p.dataname).name.split(".")[0]
    if not name:
        raise DataError("feed › has no name: add it with cerebro.adddata(feed, name='SYMBOL')")
    return validate_symbol(name)


class FeedFileSource(DataSource):
    """Symbols read from the feeds' own ``dataname``: a CSV path or a pandas DataFrame."""

    name = "backtrader feeds"

    def __init__(self, datas: Sequence[Any]) -> None:
        super().__init__()
        self._datanames: dict[str, Any] = {}
        for data in datas:
            symbol = feed_symbol(data)
            dataname = data.p.dataname
            if not isinstance(dataname, (str, Path, pd.DataFrame)):
                raise DataError(
                    f"feed {symbol} › its dataname is a {type(dataname).__name__}; pass source= (a "
                    f"DataSource) "
                    "to the strategy or helper"
                )
            self._datanames[symbol] = dataname

    def symbols(self) -> list[str]:
        return sorted(self._datanames)

    def _read(self, symbol: str) -> pd.DataFrame:
        dataname = self._datanames[symbol]
        if isinstance(dataname, pd.DataFrame):
            return clean_ohlcv(dataname, source=f"feed {symbol}")
        return read_ohlcv_csv(dataname)


def feed_source(datas: Sequence[Any]) -> DataSource:
    """A source over the feeds' files or frames (see :class:`FeedFileSource`)."""
    return FeedFileSource(datas)


def preloaded_calendar(datas: Sequence[Any]) -> pd.DatetimeIndex | None:
    """Every bar date of the feeds when they are preloaded (a backtest's, known from its start), else
    ``None`` (live feeds, whose bars arrive as they come)."""
    stamps = [np.asarray(data.datetime.array) for data in datas]
    if not stamps or any(len(s) == 0 for s in stamps):
        return None
    unique = np.unique(np.concatenate(stamps))
    return pd.DatetimeIndex([pd.Timestamp(bt.num2date(x).date()) for x in unique]).unique()


def write_yahoo_csvs(
    folder: str | Path, symbols: Sequence[str] | None = None, source: DataSource | None = None
) -> list[Path]:
    """``folder/SYMBOL.csv`` in the Yahoo format Backtrader's ``YahooFinanceCSVData`` reads (``Date, Open,
    High, Low, Close, Adj Close, Volume``), from ``source`` (default: the bundled data, already adjusted,
    so ``Adj Close`` equals ``Close``): a folder to try the CSV examples on. Returns the files."""
    from lstm_plugin.core.data import open_source

    source = source or open_source()
    target = Path(folder)
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for symbol in map(validate_symbol, symbols or source.symbols()):
        bars = source.load(symbol)
        frame = pd.DataFrame(
            {
                "Date": bars.index.strftime("%Y-%m-%d"),
                "Open": bars["open"].to_numpy(),
                "High": bars["high"].to_numpy(),
                "Low": bars["low"].to_numpy(),
                "Close": bars["close"].to_numpy(),
                "Adj Close": bars["close"].to_numpy(),
                "Volume": bars["volume"].round().astype("int64").to_numpy(),
            }
        )
        path = target / f"{symbol}.csv"
        frame.to_csv(path, index=False)
        written.append(path)
    return written
