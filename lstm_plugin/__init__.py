"""lstm_plugin: per-symbol LSTM forecasts for Backtrader, trained in PyTorch and served from ONNX.

Quick use::

    from lstm_plugin import load_config, open_source, ModelRegistry, ModelTrainer, ForecastService,
    TrainingService
    from lstm_plugin.core.clock import ManualClock

    config = load_config()                       # or load_config("config/lstm_config.json")
    source = open_source()                       # the bundled data; open_source("my_csv_dir")
    registry = ModelRegistry("lstm_models")
    ModelTrainer(config, source, registry).train_specific("AAPL", as_of="2015-12-31")
    forecasts = ForecastService(config, registry, source, clock=ManualClock("2016-03-31"))
    forecasts.get_lstm_prediction("AAPL")        # {'status': 'success', 'predicted_direction': ...}

    # prioritised training on worker processes (scripts: inside ``if __name__ == "__main__":``)
    with TrainingService(config, source, registry, backend="local") as service:
        service.request_model_training(["KO", "XOM"], category="portfolio")
        service.drain()

Writing a plugin
----------------
A plugin is any object or module with functions marked ``@hookimpl`` whose names and arguments
match :mod:`lstm_plugin.plugins.hookspecs`::

    import numpy as np
    import pandas as pd
    from lstm_plugin import hookimpl

    @hookimpl
    def lstm_features(ohlcv, config):
        # causal: value at bar t uses bars <= t only
        return pd.DataFrame({"ret_10": np.log(ohlcv["close"]).diff(10)}, index=ohlcv.index)

Register it for every run through the entry-point group ``lstm_plugin`` in your package's
``setup.cfg``::

    [options.entry_points]
    lstm_plugin =
        my_features = my_package.my_plugin

or for one run with ``get_plugin_manager(plugins=[my_plugin])``. A plugin that fails to load or
raises inside a hook is reported in a warning and skipped; the built-ins keep working.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from lstm_plugin.core.kernels import pin_portable_kernels
from lstm_plugin.core.version import __version__

pin_portable_kernels()  # before torch runs a kernel in this process: the same bytes on every machine

if TYPE_CHECKING:  # what type checkers and editors see; at run time each name loads on first use
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
    from lstm_plugin.plugins.hookspecs import hookimpl, hookspec
    from lstm_plugin.plugins.manager import PluginManager, get_plugin_manager
    from lstm_plugin.portfolio.enhanced_manager import LSTMEnhancedPortfolioManager
    from lstm_plugin.portfolio.integration import LSTMIntegration
    from lstm_plugin.portfolio.manager import PortfolioManager
    from lstm_plugin.serving.forecast import ForecastService
    from lstm_plugin.serving.registry import ModelRecord, ModelRegistry
    from lstm_plugin.training.service import TrainingService
    from lstm_plugin.training.trainer import ModelTrainer, TrainOutcome

#: Where each public name lives, imported on first use: ``import lstm_plugin`` loads no pandas, onnx
#: or torch, so the command line and a plugin's import start fast.
_LAZY = {
    "CSVFolderSource": "lstm_plugin.core.data",
    "Clock": "lstm_plugin.core.clock",
    "Config": "lstm_plugin.core.config",
    "ConfigError": "lstm_plugin.core.errors",
    "DataError": "lstm_plugin.core.errors",
    "DataSource": "lstm_plugin.core.data",
    "ForecastService": "lstm_plugin.serving.forecast",
    "FrameSource": "lstm_plugin.core.data",
    "InsufficientDataError": "lstm_plugin.core.errors",
    "LSTMEnhancedPortfolioManager": "lstm_plugin.portfolio.enhanced_manager",
    "LSTMIntegration": "lstm_plugin.portfolio.integration",
    "LSTMPluginError": "lstm_plugin.core.errors",
    "LSTMPluginWarning": "lstm_plugin.core.errors",
    "ManualClock": "lstm_plugin.core.clock",
    "ModelError": "lstm_plugin.core.errors",
    "ModelRecord": "lstm_plugin.serving.registry",
    "ModelRegistry": "lstm_plugin.serving.registry",
    "ModelTrainer": "lstm_plugin.training.trainer",
    "PluginManager": "lstm_plugin.plugins.manager",
    "PortfolioManager": "lstm_plugin.portfolio.manager",
    "RegistryError": "lstm_plugin.core.errors",
    "SymbolError": "lstm_plugin.core.errors",
    "SystemClock": "lstm_plugin.core.clock",
    "TrainOutcome": "lstm_plugin.training.trainer",
    "TrainingService": "lstm_plugin.training.service",
    "UnsafePathError": "lstm_plugin.core.errors",
    "bundled_source": "lstm_plugin.core.data",
    "get_plugin_manager": "lstm_plugin.plugins.manager",
    "hookimpl": "lstm_plugin.plugins.hookspecs",
    "hookspec": "lstm_plugin.plugins.hookspecs",
    "load_config": "lstm_plugin.core.config",
    "open_source": "lstm_plugin.core.data",
    "validate_symbol": "lstm_plugin.core.data",
}


def __getattr__(name: str) -> Any:
    """``lstm_plugin.X`` imports X's module the first time X is asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lstm_plugin' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "CSVFolderSource",
    "Clock",
    "Config",
    "ConfigError",
    "DataError",
    "DataSource",
    "ForecastService",
    "FrameSource",
    "InsufficientDataError",
    "LSTMEnhancedPortfolioManager",
    "LSTMIntegration",
    "LSTMPluginError",
    "LSTMPluginWarning",
    "ManualClock",
    "ModelError",
    "ModelRecord",
    "ModelRegistry",
    "ModelTrainer",
    "PluginManager",
    "PortfolioManager",
    "RegistryError",
    "SymbolError",
    "SystemClock",
    "TrainOutcome",
    "TrainingService",
    "UnsafePathError",
    "__version__",
    "bundled_source",
    "get_plugin_manager",
    "hookimpl",
    "hookspec",
    "load_config",
    "open_source",
    "validate_symbol",
]
