"""The original design's module name for :class:`LSTMIntegration`; it lives in
:mod:`lstm_plugin.portfolio.integration`."""

from lstm_plugin.portfolio.integration import *  # noqa: F403
from lstm_plugin.portfolio.integration import LSTMIntegration, __all__  # noqa: F401
