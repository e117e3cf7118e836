"""lstm_plugin: per-symbol LSTM forecasts for Backtrader, trained in PyTorch and served from ONNX.

Quick use::

    from lstm_plugin import load_config, open_source, ModelRegistry, ModelTrainer, ForecastService, TrainingService
    from lstm_plugin.clock import ManualClock

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
match :mod:`lstm_plugin.hookspecs`::

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

import logging

__version__ = "0.1.0"

from .clock import Clock, ManualClock, SystemClock  # noqa: E402
from .config import Config, load_config  # noqa: E402
from .data import (  # noqa: E402
    CSVFolderSource,
    DataSource,
    FrameSource,
    bundled_source,
    open_source,
    validate_symbol,
)
from .errors import (  # noqa: E402
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
from .forecast import ForecastService  # noqa: E402
from .lstm_enhanced_manager import LSTMEnhancedPortfolioManager  # noqa: E402
from .lstm_integration import LSTMIntegration  # noqa: E402
from .portfolio import PortfolioManager  # noqa: E402
from .hookspecs import hookimpl, hookspec  # noqa: E402
from .plugins import PluginManager, get_plugin_manager  # noqa: E402
from .registry import ModelRecord, ModelRegistry  # noqa: E402
from .service import TrainingService  # noqa: E402
from .trainer import ModelTrainer, TrainOutcome  # noqa: E402

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "Clock", "ManualClock", "SystemClock",
    "Config", "load_config",
    "DataSource", "CSVFolderSource", "FrameSource", "bundled_source", "open_source", "validate_symbol",
    "LSTMPluginError", "LSTMPluginWarning", "ConfigError", "DataError", "InsufficientDataError", "ModelError", "RegistryError", "SymbolError",
    "UnsafePathError",
    "ForecastService", "ModelRecord", "ModelRegistry", "ModelTrainer", "TrainOutcome", "TrainingService",
    "PortfolioManager", "LSTMEnhancedPortfolioManager", "LSTMIntegration",
    "PluginManager", "get_plugin_manager", "hookimpl", "hookspec",
]
