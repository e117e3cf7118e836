"""``PortfolioManager``: the technical base manager the LSTM-enhanced one extends.

It scans a universe, scores each symbol from its own bars (:mod:`lstm_plugin.portfolio.technical`), selects
the best with a positive recommendation and weights them (:mod:`lstm_plugin.portfolio.allocation`). Every
method takes ``as_of`` (default: the clock's now) and reads only bars dated at or before it, so one
instance serves backtests (a :class:`~lstm_plugin.core.clock.ManualClock` moved bar by bar) and live
runs (the :class:`~lstm_plugin.core.clock.SystemClock`) alike. No Backtrader import here.
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.core.clock import Clock, default_clock, resolve_as_of
from lstm_plugin.core.config import Config, PortfolioSection, load_config
from lstm_plugin.core.data import DataSource, clean_ohlcv, open_source, validate_symbol
from lstm_plugin.core.errors import DataError, LSTMPluginWarning
from lstm_plugin.portfolio.allocation import allocate, portfolio_statistics
from lstm_plugin.portfolio.results import Analysis, AnalysisStatus
from lstm_plugin.portfolio.technical import REQUIRED_BARS, dollar_volume, technical_analysis

logger = logging.getLogger(__name__)

__all__ = ["PortfolioManager"]


def failed_analysis(
    symbol: str, status: AnalysisStatus, message: str, as_of: pd.Timestamp | None = None
) -> Analysis:
    """An analysis that could not be made: score 0, recommendation ``none``, and why."""
    return {
        "symbol": symbol,
        "status": status,
        "message": message,
        "score": 0.0,
        "technical_score": 0.0,
        "recommendation": "none",
        "components": {},
        "indicators": {},
        "as_of": None if as_of is None else as_of.isoformat(),
    }


class PortfolioManager:
    """Scan, analyse, select and describe a portfolio from technical analysis alone.

    - :meth:`scan_market` ranks the universe by technical score, keeping symbols with at least
      ``portfolio.min_history_bars`` bars, a last bar at most ``portfolio.max_stale_days`` old and a
      20-bar dollar volume of ``portfolio.min_dollar_volume``; at most ``lstm.max_initial_symbols``.
    - :meth:`analyze_symbol` gives ``score`` (0-100), ``recommendation``, ``components`` and
      ``indicators``; ``status`` is ``ok``, or ``insufficient_data`` / ``error`` with a ``message``.
    - :meth:`select_portfolio` analyses the best ``num_symbols × portfolio.candidate_multiple``
      candidates, keeps those scoring at least ``portfolio.min_score`` (the ``buy`` band by
      default), takes the ``num_symbols`` best and weights them by ``portfolio.weighting`` with the
      ``portfolio.max_weight`` cap. The result is also kept in :attr:`current_portfolio`.
    - :meth:`get_portfolio_stats` describes :attr:`current_portfolio`.
    """

    def __init__(
        self,
        config_path: str | Path | None = None,
        *,
        config: Config | None = None,
        source: DataSource | None = None,
        clock: Clock | None = None,
    ) -> None:
        if config is not None and config_path is not None:
            raise ValueError("give config_path or config, not both")
        self.config = config if config is not None else load_config(config_path)
        self.source = (
            source if source is not None else open_source(self.config.data.path, self.config.data.max_file_mb)
        )
        self.clock = clock or default_clock(self.source)
        self.current_portfolio: dict[str, float] = {}
        self.portfolio_as_of: pd.Timestamp | None = None
        self.last_scan: list[dict[str, Any]] = []
        self.scan_rejected: dict[str, str] = {}
        self.last_analyses: dict[str, Analysis] = {}
        self._scanned: dict[
            tuple[str, pd.Timestamp], dict[str, Any]
        ] = {}  # the last scan's scores, reused by the analysis
        self._empty_scan_warned: set[str] = set()

    # ------------------------------------------------------------------ data
    @property
    def universe(self) -> list[str]:
        """``data.symbols`` from the config, else every symbol of the data source."""
        return list(self.config.data.symbols or self.source.symbols())

    def as_of(self, as_of: Any = None) -> pd.Timestamp:
        """``as_of`` as a timestamp, defaulting to the clock's now; later than now is refused."""
        return resolve_as_of(as_of, self.clock.now())

    def bars(self, symbol: str, as_of: pd.Timestamp, data: pd.DataFrame | None = None) -> pd.DataFrame:
        """Cleaned bars of ``symbol`` dated at or before ``as_of``, from ``data`` or the source."""
        if data is not None:
            return clean_ohlcv(data, source=f"DataFrame[{symbol}]").loc[:as_of]
        return self.source.load(symbol, end=as_of)

    # ------------------------------------------------------------------ analysis
    def analyze_symbol(self, symbol: str, data: pd.DataFrame | None = None, as_of: Any = None) -> Analysis:
        """One symbol's analysis (see the class docstring); ``data`` replaces the source's bars."""
        canonical = validate_symbol(symbol)
        frames = None if data is None else {canonical: data}
        return self.analyze_symbols([canonical], frames, as_of)[canonical]

    def analyze_symbols(
        self, symbols: Iterable[str], data: Mapping[str, pd.DataFrame] | None = None, as_of: Any = None
    ) -> dict[str, Analysis]:
        """Analyses of many symbols at once, keyed by canonical symbol."""
        when = self.as_of(as_of)
        frames = {validate_symbol(s): f for s, f in (data or {}).items()}
        return {
            symbol: self._technical(symbol, frames.get(symbol), when)
            for symbol in map(validate_symbol, symbols)
        }

    def _technical(self, symbol: str, frame: pd.DataFrame | None, when: pd.Timestamp) -> Analysis:
        try:
            bars = self.bars(symbol, when, frame)
        except DataError as exc:
            return failed_analysis(symbol, "error", str(exc))
        if len(bars) < REQUIRED_BARS:
            message = (
                f"{symbol} › {len(bars)} bars at or before {when:%Y-%m-%d}; the score needs {REQUIRED_BARS}"
            )
            return failed_analysis(
                symbol, "insufficient_data", message, bars.index[-1] if len(bars) else None
            )
        technical = (self._scanned.get((symbol, when)) if frame is None else None) or technical_analysis(bars)
        return {
            "symbol": symbol,
            "status": "ok",
            "message": "",
            "score": technical["score"],
            "technical_score": technical["score"],
            "recommendation": technical["recommendation"],
            "components": technical["components"],
            "indicators": technical["indicators"],
            "as_of": bars.index[-1].isoformat(),
        }

    # ------------------------------------------------------------------ scanning and selection
    def scan_market(self, as_of: Any = None) -> list[str]:
        """Candidates, best technical score first (ties: larger dollar volume, then name).

        Details are kept in :attr:`last_scan`; symbols left out, with the reason, in
        :attr:`scan_rejected`.
        """
        when = self.as_of(as_of)
        settings = self.config.portfolio
        rows, rejected, scanned = [], {}, {}
        kinds: dict[str, list[str]] = {}
        newest_bar: pd.Timestamp | None = None
        for symbol in self.universe:
            try:
                bars = self.source.load(symbol, end=when)
            except DataError as exc:
                rejected[symbol] = str(exc)
                kinds.setdefault("data", []).append(symbol)
                continue
            if len(bars) < settings.min_history_bars:
                rejected[symbol] = f"{len(bars)} bars of history (needs {settings.min_history_bars})"
                kinds.setdefault("history", []).append(symbol)
                continue
            stale = (when - bars.index[-1]) / pd.Timedelta(days=1)
            if stale > settings.max_stale_days:
                rejected[symbol] = f"last bar {bars.index[-1]:%Y-%m-%d} is {stale:.0f} days old"
                kinds.setdefault("stale", []).append(symbol)
                newest_bar = max(newest_bar or bars.index[-1], bars.index[-1])
                continue
            liquidity = dollar_volume(bars)
            if liquidity < settings.min_dollar_volume:
                rejected[symbol] = f"dollar volume {liquidity:,.0f} < {settings.min_dollar_volume:,.0f}"
                kinds.setdefault("liquidity", []).append(symbol)
                continue
            technical = scanned[(symbol, when)] = technical_analysis(bars)
            rows.append(
                {
                    "symbol": symbol,
                    "score": technical["score"],
                    "dollar_volume": liquidity,
                    "last_bar": bars.index[-1].isoformat(),
                }
            )
        rows.sort(key=lambda row: (-row["score"], -row["dollar_volume"], row["symbol"]))
        self.last_scan = rows[: self.config.lstm.max_initial_symbols]
        self.scan_rejected = rejected
        self._scanned = scanned
        if rejected and not rows and (signature := ",".join(sorted(kinds))) not in self._empty_scan_warned:
            self._empty_scan_warned.add(
                signature
            )  # once per kind of failure: a backtest scans every rebalance
            message = empty_scan_message(when, kinds, newest_bar, rejected, settings)
            warnings.warn(message, LSTMPluginWarning, stacklevel=3)
        return [row["symbol"] for row in self.last_scan]

    def select_portfolio(self, num_symbols: int | None = None, as_of: Any = None) -> dict[str, float]:
        """``{symbol: weight}`` (weights sum to at most 1; the rest is cash), also stored in
        :attr:`current_portfolio`. An empty dict means nothing qualified: all cash."""
        when = self.as_of(as_of)
        settings = self.config.portfolio
        wanted = settings.num_symbols if num_symbols is None else int(num_symbols)
        if wanted < 1:
            raise ValueError(f"num_symbols › must be at least 1 (got: {num_symbols!r})")
        candidates = self.scan_market(when)[: math.ceil(wanted * settings.candidate_multiple)]
        analyses = self.analyze_symbols(candidates, as_of=when)
        eligible = [
            s
            for s in candidates
            if analyses[s]["status"] == "ok" and analyses[s]["score"] >= settings.min_score
        ]
        chosen = sorted(eligible, key=lambda s: (-analyses[s]["score"], s))[:wanted]
        volatilities = {s: analyses[s]["indicators"]["volatility_63"] for s in chosen}
        weights = allocate(
            {s: analyses[s]["score"] for s in chosen}, settings.weighting, settings.max_weight, volatilities
        )
        weights = self._size_positions(weights, analyses)
        self.current_portfolio = weights
        self.portfolio_as_of = when
        self.last_analyses = analyses
        return dict(weights)

    def _size_positions(
        self, weights: dict[str, float], analyses: Mapping[str, Analysis]
    ) -> dict[str, float]:
        """Final say on the weights before they are kept; the base manager keeps them as they are."""
        return weights

    # ------------------------------------------------------------------ statistics
    def get_portfolio_stats(self, as_of: Any = None) -> dict[str, Any]:
        """:attr:`current_portfolio` described at ``as_of``: weights, positions, cash, concentration
        (``hhi``, ``effective_positions``) and the trailing ``portfolio.stats_lookback_bars``
        ``expected_return`` and ``volatility`` (annualised; see
        :func:`lstm_plugin.portfolio.allocation.portfolio_statistics`)."""
        when = self.as_of(as_of)
        weights = dict(self.current_portfolio)
        lookback = self.config.portfolio.stats_lookback_bars + 1
        closes = {}
        for symbol in weights:
            try:
                closes[symbol] = self.source.load(symbol, end=when)["close"].iloc[-lookback:]
            except DataError as exc:
                logger.warning("portfolio stats: no prices for %s: %s", symbol, exc)
        frame = pd.DataFrame(closes).sort_index().iloc[-lookback:]
        return {
            "as_of": when.isoformat(),
            "portfolio_as_of": None if self.portfolio_as_of is None else self.portfolio_as_of.isoformat(),
            "weights": weights,
            **portfolio_statistics(weights, frame),
        }


def empty_scan_message(
    when: pd.Timestamp,
    kinds: Mapping[str, list[str]],
    newest_bar: pd.Timestamp | None,
    rejected: Mapping[str, str],
    settings: PortfolioSection,
) -> str:
    """Why a scan rejected every symbol and what would fix it, for an :class:`LSTMPluginWarning`
    (shown without any logging set up, unlike a log line)."""
    parts, fixes = [], []
    if "stale" in kinds and newest_bar is not None:
        days = (when - newest_bar) / pd.Timedelta(days=1)
        parts.append(
            f"{len(kinds['stale'])} stale (newest bar {newest_bar:%Y-%m-%d}, {days:.0f} days before "
            f"{when:%Y-%m-%d}; portfolio.max_stale_days is {settings.max_stale_days})"
        )
        fixes.append(
            f"pass as_of= a date the data covers (as_of='{newest_bar:%Y-%m-%d}') or give fresher data"
        )
    if "history" in kinds:
        parts.append(
            f"{len(kinds['history'])} with fewer than portfolio.min_history_bars "
            f"({settings.min_history_bars}) bars"
        )
        fixes.append("use a later as_of or a longer history")
    if "liquidity" in kinds:
        parts.append(
            f"{len(kinds['liquidity'])} below portfolio.min_dollar_volume ({settings.min_dollar_volume:,.0f})"
        )
        fixes.append("lower portfolio.min_dollar_volume")
    if "data" in kinds:
        parts.append(f"{len(kinds['data'])} unreadable (first: {rejected[kinds['data'][0]]})")
        fixes.append("repair the data files")
    return f"scan at {when:%Y-%m-%d} rejected every symbol: {'; '.join(parts)}. To fix: {'; '.join(fixes)}."
