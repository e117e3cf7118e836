"""lstm_plugin: per-symbol LSTM forecasts for Backtrader, trained in PyTorch and served from ONNX.

Quick use::

    from lstm_plugin import (
        ForecastService, ManualClock, ModelRegistry, ModelTrainer, TrainingService, load_config, open_source
    )

    config = load_config()                       # or load_config("config/lstm_config.json")
    source = open_source()                       # the bundled data; open_source("my_csv_dir")
    registry = ModelRegistry("lstm_models")
    ModelTrainer(config, source, registry).train_specific("AAPL", as_of="2015-12-31")
    forecasts = ForecastService(config, registry, source, clock=ManualClock("2016-03-31"))
    forecasts.get_lstm_prediction("AAPL")        # {'status': 'success', 'predicted_direction': ...}

    # prioritised training on worker processes (a script: inside ``if __name__ == "__main__":``)
    with TrainingService(config, source, registry, backend="local") as service:
        service.request_model_training(["KO", "XOM"], category="portfolio")
        service.drain()

Writing a plugin
----------------
A plugin is any object or module with functions marked ``@hookimpl`` whose names and arguments
match :mod:`lstm_plugin.plugins.hookspecs` (features, the network, baselines, training priorities,
scores, rebalances, bar sources, paper days)::

    import numpy as np
    import pandas as pd
    from lstm_plugin import hookimpl

    class TenDayReturn:
        @hookimpl
        def lstm_features(self, ohlcv, config):
            # causal: value at bar t uses bars <= t only
            return pd.DataFrame({"ret_10": np.log(ohlcv["close"]).diff(10)}, index=ohlcv.index)

    trainer = ModelTrainer(config, source, registry, extra_plugins=[TenDayReturn()])
    trainer.train_specific("KO", as_of="2015-12-31")   # a model on the built-in features and ret_10

Register a plugin module (its hooks as plain functions) for every run through the entry-point group
``lstm_plugin`` in your package's ``setup.cfg``::

    [options.entry_points]
    lstm_plugin =
        my_features = my_package.my_plugin

or for one run with ``extra_plugins=[my_plugin]`` (``plugins=[...]`` for the services and the
Backtrader classes). A plugin that fails to load or raises inside a hook is reported in a warning and
skipped; the built-ins keep working. Backtrader users start from :class:`LSTMRebalanceStrategy` or
add :class:`LSTMSignals` to their own strategy (docs/backtrader.md).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from lstm_plugin.core.kernels import pin_portable_kernels
from lstm_plugin.core.version import __version__

pin_portable_kernels()  # before torch runs a kernel in this process: the same bytes on every machine

#: The public API, one list: each name and the module it lives in. It drives the lazy imports,
#: ``__all__`` and ``dir()``; ``import lstm_plugin`` loads no pandas, onnx, torch or Backtrader, so
#: the command line and a plugin's import start fast. (tests/test_public_api.py holds it to that.)
PUBLIC: dict[str, str] = {
    # configuration and data
    "Config": "lstm_plugin.core.config",
    "load_config": "lstm_plugin.core.config",
    "DataSource": "lstm_plugin.core.data",
    "CSVFolderSource": "lstm_plugin.core.data",
    "FrameSource": "lstm_plugin.core.data",
    "bundled_source": "lstm_plugin.core.data",
    "open_source": "lstm_plugin.core.data",
    "validate_symbol": "lstm_plugin.core.data",
    "Clock": "lstm_plugin.core.clock",
    "ManualClock": "lstm_plugin.core.clock",
    "SystemClock": "lstm_plugin.core.clock",
    # models: train, register, serve
    "ModelTrainer": "lstm_plugin.training.trainer",
    "TrainOutcome": "lstm_plugin.training.trainer",
    "TrainingService": "lstm_plugin.training.service",
    "ModelRegistry": "lstm_plugin.serving.registry",
    "ModelRecord": "lstm_plugin.serving.registry",
    "ForecastService": "lstm_plugin.serving.forecast",
    # portfolios
    "PortfolioManager": "lstm_plugin.portfolio.manager",
    "LSTMEnhancedPortfolioManager": "lstm_plugin.portfolio.enhanced_manager",
    "LSTMIntegration": "lstm_plugin.portfolio.integration",
    # Backtrader (loaded only when one of these is asked for)
    "LSTMRebalanceStrategy": "lstm_plugin.backtrader.strategy",
    "LSTMSignals": "lstm_plugin.backtrader.signals",
    "LSTMForecastAnalyzer": "lstm_plugin.backtrader.analyzer",
    # plugins
    "hookimpl": "lstm_plugin.plugins.hookspecs",
    "PluginManager": "lstm_plugin.plugins.manager",
    "get_plugin_manager": "lstm_plugin.plugins.manager",
    # errors
    "LSTMPluginError": "lstm_plugin.core.errors",
    "LSTMPluginWarning": "lstm_plugin.core.errors",
    "ConfigError": "lstm_plugin.core.errors",
    "DataError": "lstm_plugin.core.errors",
    "InsufficientDataError": "lstm_plugin.core.errors",
    "ModelError": "lstm_plugin.core.errors",
    "RegistryError": "lstm_plugin.core.errors",
    "SymbolError": "lstm_plugin.core.errors",
    "UnsafePathError": "lstm_plugin.core.errors",
}

if TYPE_CHECKING:  # what type checkers and editors see; at run time each name loads on first use
    from lstm_plugin.backtrader.analyzer import LSTMForecastAnalyzer
    from lstm_plugin.backtrader.signals import LSTMSignals
    from lstm_plugin.backtrader.strategy import LSTMRebalanceStrategy
    from lstm_plugin.core.clock import Clock, ManualClock, SystemClock
    from lstm_plugin.core.config import Config, load_config
    from lstm_plugin.core.data import (
        CSVFolderSource,
        DataSource,
        FrameSource,
        bundled_source,
        open_source,
        validate_symbol,
    )
    from lstm_plugin.core.errors import (
        ConfigError,
        DataError,
        InsufficientDataError,
        LSTMPluginError,
        LSTMPluginWarning,
        ModelError,
        RegistryError,
        SymbolError,
        UnsafePathError,
    )
    from lstm_plugin.plugins.hookspecs import hookimpl
    from lstm_plugin.plugins.manager import PluginManager, get_plugin_manager
    from lstm_plugin.portfolio.enhanced_manager import LSTMEnhancedPortfolioManager
    from lstm_plugin.portfolio.integration import LSTMIntegration
    from lstm_plugin.portfolio.manager import PortfolioManager
    from lstm_plugin.serving.forecast import ForecastService
    from lstm_plugin.serving.registry import ModelRecord, ModelRegistry
    from lstm_plugin.training.service import TrainingService
    from lstm_plugin.training.trainer import ModelTrainer, TrainOutcome

__all__ = sorted([*PUBLIC, "__version__"])


def __getattr__(name: str) -> Any:
    """``lstm_plugin.X`` imports X's module the first time X is asked for."""
    module = PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'lstm_plugin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return list(__all__)


logging.getLogger(__name__).addHandler(logging.NullHandler())
