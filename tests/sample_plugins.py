"""Plugins used by the tests, written as a third party would write them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import nn

from lstm_plugin import hookimpl


class TenDayMomentum:
    """Adds one causal feature."""

    @hookimpl
    def lstm_features(self, ohlcv: pd.DataFrame, config) -> pd.DataFrame:
        log_close = np.log(ohlcv["close"].to_numpy())
        values = np.full(len(ohlcv), np.nan)
        values[10:] = log_close[10:] - log_close[:-10]
        return pd.DataFrame({"ret_10": values}, index=ohlcv.index)


class GRUCore(nn.Module):
    def __init__(self, n_features: int, hidden: int) -> None:
        super().__init__()
        self.gru = nn.GRU(n_features, hidden, batch_first=True)
        self.head = nn.Linear(hidden, 4)

    def forward(self, x: torch.Tensor):
        out, _ = self.gru(x)
        y = self.head(out[:, -1, :])
        return y[:, :3], y[:, 3]


class GRUModel:
    """Replaces the built-in LSTM (firstresult)."""

    built = 0

    @hookimpl
    def lstm_build_model(self, n_features: int, config):
        GRUModel.built += 1
        return GRUCore(n_features, config.hidden_size)


class Exploding:
    """A plugin whose hooks raise: it must be reported and skipped."""

    @hookimpl
    def lstm_features(self, ohlcv, config):
        raise RuntimeError("boom")

    @hookimpl
    def lstm_build_model(self, n_features, config):
        raise RuntimeError("boom")


class Misspelled:
    @hookimpl
    def lstm_featurse(self, ohlcv, config):  # typo: no such hook
        return None


misspelled = Misspelled()


class FailingCore(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor):
        raise RuntimeError("out of memory in the training worker")


class FailingTraining:
    """The model it builds raises during training: a worker-side failure, not a plugin failure."""

    @hookimpl
    def lstm_build_model(self, n_features, config):
        return FailingCore()


class DiesOnce:
    """Kills the worker process the first time a model is built (as an OOM kill would)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    @hookimpl
    def lstm_build_model(self, n_features, config):
        import os

        if not os.path.exists(self.marker):
            open(self.marker, "w").close()
            os._exit(3)
        return None


class FavourSymbol:
    """Adds ``amount`` points to one symbol's combined score (lstm_adjust_score)."""

    def __init__(self, symbol: str, amount: float) -> None:
        self.symbol, self.amount = symbol, amount
        self.seen: list[tuple[str, float]] = []

    @hookimpl
    def lstm_adjust_score(self, symbol, score, analysis):
        self.seen.append((symbol, score))
        return self.amount if symbol == self.symbol else None


class BadScoreAdjuster:
    """Returns something that is not a number, then raises: both are reported and ignored."""

    @hookimpl
    def lstm_adjust_score(self, symbol, score, analysis):
        if symbol == "KO":
            raise RuntimeError("boom")
        return "ten"


class RebalanceSpy:
    """Records every rebalance, training and error; optionally keeps only one symbol in the targets."""

    def __init__(self, keep_only: str | None = None) -> None:
        self.keep_only = keep_only
        self.before: list[tuple] = []
        self.after: list[tuple] = []
        self.trained: list[dict] = []
        self.errors: list[tuple] = []

    @hookimpl
    def lstm_before_rebalance(self, when, symbols, current):
        self.before.append((when, list(symbols), dict(current)))

    @hookimpl
    def lstm_after_rebalance(self, when, targets, analyses):
        self.after.append((when, dict(targets)))
        if self.keep_only is None:
            return None
        return {self.keep_only: 0.5} if self.keep_only in analyses else {}

    @hookimpl
    def lstm_after_train(self, result):
        self.trained.append(result)

    @hookimpl
    def lstm_on_error(self, where, error, context):
        self.errors.append((where, error, context))


class GreedyTargets:
    """Returns targets that are not allowed (over 100 %): reported and ignored."""

    @hookimpl
    def lstm_after_rebalance(self, when, targets, analyses):
        return {symbol: 0.9 for symbol in targets}


class ExplodingRebalance:
    @hookimpl
    def lstm_after_rebalance(self, when, targets, analyses):
        raise RuntimeError("boom")


class PeekAhead:
    """A deliberately leaky feature: the next bar's return. The honesty tests must catch it."""

    @hookimpl
    def lstm_features(self, ohlcv, config):
        close = ohlcv["close"]
        return pd.DataFrame({"next_ret": np.log(close.shift(-1) / close)}, index=ohlcv.index)


class TrainingPeek:
    """A leak on the training side only: a training at T sees bar T+1.

    Given a frame cut before the end of the run's data (a training's), every row gets the return
    of the bar after the frame's last one, read from the run's full bars: unknown at T. Serving
    frames reach the end of the data and get zeros, so the leak can only travel through the
    trained weights. The honesty tests must catch it.
    """

    def __init__(self, frames: dict[str, pd.DataFrame]) -> None:
        self.frames = frames

    def _full(self, ohlcv: pd.DataFrame) -> pd.DataFrame | None:
        first, close = ohlcv.index[0], float(ohlcv["close"].iloc[0])
        for frame in self.frames.values():
            if first in frame.index and np.isclose(float(frame.loc[first, "close"]), close, rtol=1e-9):
                return frame
        return None

    @hookimpl
    def lstm_features(self, ohlcv, config):
        full = self._full(ohlcv)
        if full is None or ohlcv.index[-1] >= full.index[-1]:
            return pd.DataFrame({"peek": 0.0}, index=ohlcv.index)
        position = full.index.get_loc(ohlcv.index[-1])
        ahead = float(np.log(full["close"].iloc[position + 1] / full["close"].iloc[position]))
        return pd.DataFrame({"peek": ahead}, index=ohlcv.index)


class TextFeature:
    """A feature column of strings: refused, naming the plugin and the column."""

    @hookimpl
    def lstm_features(self, ohlcv, config):
        return pd.DataFrame({"mood": ["calm"] * len(ohlcv)}, index=ohlcv.index)


class TextModel:
    """``lstm_build_model`` returning a string: refused, naming the plugin."""

    @hookimpl
    def lstm_build_model(self, n_features, config):
        return "a very good model"


class SleepyFeatures:
    """``lstm_features`` that hangs while a marker file exists (a network call that never returns)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    @hookimpl
    def lstm_features(self, ohlcv, config):
        import os
        import time

        while os.path.exists(self.marker):
            time.sleep(0.2)
        return None
