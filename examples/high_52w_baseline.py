"""A baseline plugin: nearness to the 52-week high (George & Hwang 2004), measured beside the LSTM.

A stock whose close is near its highest close of the last year tends to keep doing better than
one far below it. The score at bar t is ``c[t] / max(c[t-251 .. t])``: 1 at a new high, lower
below it, from bars ≤ t only. It ranks symbols but forecasts no return, so it has no hit rate.

Use it for one run with ``LSTMRebalanceStrategy(..., plugins=[high_52w_baseline])`` and
``LSTMForecastAnalyzer(baselines=("momentum_12_1", "high_52w"))``, or for every run by naming
this module under the ``lstm_plugin`` entry-point group of your package and adding ``high_52w`` to
``backtest.baselines`` (or ``--baselines``). See docs/forecast-evidence.md, *Adding a baseline*.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from lstm_plugin.model.baselines import Baseline, BaselineInputs
from lstm_plugin.plugins.hookspecs import hookimpl

YEAR = 252


@dataclass(frozen=True)
class High52Week:
    """The baseline itself: any object with ``name``, ``forecasts_returns`` and ``panel``."""

    name: str = "high_52w"
    forecasts_returns: bool = False

    def panel(self, inputs: BaselineInputs) -> pd.DataFrame:
        return pd.DataFrame(
            {s: c / c.rolling(YEAR, min_periods=YEAR).max() for s, c in inputs.closes.items()}
        ).sort_index()


@hookimpl
def lstm_baselines() -> list[Baseline]:
    return [High52Week()]
