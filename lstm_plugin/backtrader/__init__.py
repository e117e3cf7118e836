"""Backtrader integration: a rebalancing strategy, a hook for any strategy, a forecast analyzer.

The only part of the package that imports Backtrader. Ranking, weighting, forecasting and
training live in the rest of ``lstm_plugin``; these classes only speak Backtrader.
"""

from __future__ import annotations

import warnings

with warnings.catch_warnings():
    # Backtrader's source has invalid escape sequences: Python 3.12+ compiles it with SyntaxWarning lines
    # on stderr, which would break the one-line-error contract of the command line. Only those are hidden.
    warnings.filterwarnings("ignore", "invalid escape sequence", SyntaxWarning)
    warnings.filterwarnings("ignore", "invalid escape sequence", DeprecationWarning)  # Python 3.11
    import backtrader  # noqa: F401  (first here, so every submodule below finds it compiled)

from lstm_plugin.backtrader.analyzer import LSTMForecastAnalyzer, PortfolioRecorder
from lstm_plugin.backtrader.feeds import feed_source, feed_symbol, write_yahoo_csvs
from lstm_plugin.backtrader.signals import Decision, LSTMSignals
from lstm_plugin.backtrader.strategy import EqualWeightBuyHold, LSTMRebalanceStrategy

__all__ = [
    "Decision",
    "EqualWeightBuyHold",
    "LSTMForecastAnalyzer",
    "LSTMRebalanceStrategy",
    "LSTMSignals",
    "PortfolioRecorder",
    "feed_source",
    "feed_symbol",
    "write_yahoo_csvs",
]
