"""A walk-forward's progress bar on stderr, so a long run says where it is (``LSTMRebalanceStrategy``'s
``progress``, on by default; ``lstm-plugin backtest`` and ``pretrain`` without ``-q``).

The bar is a plugin: the strategy's own hooks move it at each rebalance and each finished training, so
it costs the run nothing and changes no result. It is the terminal bar (``tqdm``, not a notebook
widget), cleared when the run ends.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from lstm_plugin.plugins.hookspecs import hookimpl

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class WalkForwardProgress:
    """A bar over a walk-forward's ``total`` rebalances: the month of each, and the trainings so far."""

    def __init__(self, total: int, show: bool) -> None:
        from tqdm import tqdm  # the terminal bar: the CLI's, and no widget warning in notebooks

        self.bar = tqdm(
            total=total, desc="lstm walk-forward", unit="rebalance", disable=not show, leave=False
        )
        self.trained = self.reused = 0

    @hookimpl
    def lstm_before_rebalance(
        self, when: pd.Timestamp, symbols: list[str], current: dict[str, float]
    ) -> None:
        self.bar.set_postfix_str(f"{when:%Y-%m} trained {self.trained} reused {self.reused}")
        self.bar.update(1)

    @hookimpl
    def lstm_after_train(self, result: dict[str, Any]) -> None:
        status = (result.get("outcome") or {}).get("status")
        if status == "reused":
            self.reused += 1
        else:
            self.trained += 1

    def close(self) -> None:
        self.bar.close()
