"""The original design's module name for :class:`LSTMEnhancedPortfolioManager`
(:mod:`lstm_plugin.portfolio.enhanced_manager`)."""

from lstm_plugin.portfolio.enhanced_manager import *  # noqa: F403
from lstm_plugin.portfolio.enhanced_manager import LSTMEnhancedPortfolioManager, __all__  # noqa: F401
