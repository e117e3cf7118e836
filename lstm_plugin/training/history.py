"""What a training at time T reads: the last ``model.lookback_years`` of bars dated at or before T, for the
symbol's own model or for every symbol the universal model pools (those with no bars by then left out)."""

from __future__ import annotations

import logging
from collections.abc import Iterable

import pandas as pd

from lstm_plugin.core.data import DataSource
from lstm_plugin.core.errors import InsufficientDataError
from lstm_plugin.core.statuses import ModelType

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def history_window(frame: pd.DataFrame, years: float) -> pd.DataFrame:
    """The last ``years`` of ``frame`` (calendar years and months back from its last bar): what a
    training as of the frame's last bar reads (``model.lookback_years``)."""
    whole, months = int(years), int(round((years % 1) * 12))
    return frame.loc[frame.index[-1] - pd.DateOffset(years=whole, months=months) :]


def symbol_history(source: DataSource, symbol: str, trained_at: pd.Timestamp, years: float) -> pd.DataFrame:
    """``years`` of ``symbol``'s bars dated <= ``trained_at``: what a training then reads."""
    frame = source.load(symbol, end=trained_at)
    if frame.empty:
        raise InsufficientDataError(f"{symbol} › no bars at or before {trained_at:%Y-%m-%d}")
    return history_window(frame, years)


def training_frames(
    source: DataSource, model_type: ModelType, symbols: Iterable[str], trained_at: pd.Timestamp, years: float
) -> dict[str, pd.DataFrame]:
    """The bars of a training: the symbol's own, or every pooled symbol with bars by ``trained_at``."""
    if model_type == "specific":
        (symbol,) = symbols
        return {symbol: symbol_history(source, symbol, trained_at, years)}
    frames = {}
    for symbol in symbols:
        try:
            frames[symbol] = symbol_history(source, symbol, trained_at, years)
        except InsufficientDataError:
            logger.info("universal model: %s has no bars by %s; left out", symbol, trained_at)
    if not frames:
        raise InsufficientDataError(
            f"universal model › no symbol has bars at or before {trained_at:%Y-%m-%d}"
        )
    return frames
