"""Backtrader integration: a rebalancing strategy, a hook for any strategy, a forecast analyzer.

The only part of the package that imports Backtrader. Ranking, weighting, forecasting and
training live in the rest of ``lstm_plugin``; these classes only speak Backtrader.
"""

from __future__ import annotations

from .analyzer import LSTMForecastAnalyzer, PortfolioRecorder
from .feeds import feed_source, feed_symbol
from .signals import Decision, LSTMSignals
from .strategy import EqualWeightBuyHold, LSTMRebalanceStrategy

__all__ = [
    "LSTMRebalanceStrategy", "EqualWeightBuyHold", "LSTMSignals", "LSTMForecastAnalyzer", "PortfolioRecorder",
    "Decision", "feed_source", "feed_symbol",
]
