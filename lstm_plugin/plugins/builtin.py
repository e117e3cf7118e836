"""Built-in behaviour, registered as the default plugin so the hooks are the real code path."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lstm_plugin.model.baselines import BUILTIN_BASELINES, Baseline
from lstm_plugin.model.features import builtin_features
from lstm_plugin.plugins.hookspecs import hookimpl

if TYPE_CHECKING:
    import pandas as pd

    from lstm_plugin.core.config import ModelSection
    from lstm_plugin.training.queue import JobView

NAME = "lstm_plugin.builtin"
logger = logging.getLogger("lstm_plugin.events")


@hookimpl(tryfirst=True)
def lstm_features(ohlcv: pd.DataFrame, config: ModelSection) -> pd.DataFrame:
    """The ten documented built-in features (see :mod:`lstm_plugin.model.features`)."""
    return builtin_features(ohlcv)


@hookimpl(trylast=True)
def lstm_build_model(n_features: int, config: ModelSection) -> Any:
    """The default :class:`~lstm_plugin.model.network.LSTMCore`, or a ``GRUCore`` with ``model.cell: gru``
    (torch imported only when training)."""
    from lstm_plugin.model.network import GRUCore, LSTMCore

    core = GRUCore if config.cell == "gru" else LSTMCore
    return core(n_features, config.hidden_size, config.num_layers, config.dropout)


@hookimpl(tryfirst=True)
def lstm_baselines() -> list[Baseline]:
    """Momentum 12-1, one-month reversal and the walk-forward ridge (:mod:`lstm_plugin.model.baselines`)."""
    return list(BUILTIN_BASELINES)


@hookimpl(trylast=True)
def lstm_after_train(result: JobView) -> None:
    """Log each finished training (the default; plugins add their own reactions)."""
    outcome: Mapping[str, Any] = result.get("outcome") or {}
    logger.info(
        "%s %s/%s v%s trained at %s",
        outcome.get("status"),
        result.get("model_type"),
        result.get("symbol"),
        outcome.get("model_version"),
        outcome.get("trained_at"),
    )


@hookimpl(trylast=True)
def lstm_on_error(where: str, error: str, context: dict[str, Any]) -> None:
    """Log the failure as a warning (the default)."""
    logger.warning("%s failed: %s %s", where, error, context or "")
