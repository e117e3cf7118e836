"""Built-in behaviour, registered as the default plugin so the hooks are the real code path."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .features import builtin_features
from .hookspecs import hookimpl

if TYPE_CHECKING:
    import pandas as pd

    from .config import ModelSection

NAME = "lstm_plugin.builtin"


@hookimpl(tryfirst=True)
def lstm_features(ohlcv: pd.DataFrame, config: ModelSection) -> pd.DataFrame:
    """The ten documented built-in features (see :mod:`lstm_plugin.features`)."""
    return builtin_features(ohlcv)


@hookimpl(trylast=True)
def lstm_build_model(n_features: int, config: ModelSection) -> Any:
    """The default :class:`~lstm_plugin.model.LSTMCore` (torch imported only when training)."""
    from .model import LSTMCore

    return LSTMCore(n_features, config.hidden_size, config.num_layers, config.dropout)
