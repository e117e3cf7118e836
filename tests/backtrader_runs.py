"""What the Backtrader tests share: the unbundled stocks as feeds, one run as a user writes it, the
future-perturbation helpers and the module-scoped first run (fixtures imported by each test module)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from lstm_plugin.backtrader import LSTMForecastAnalyzer, LSTMRebalanceStrategy
from lstm_plugin.core.data import read_ohlcv_csv

from .conftest import UNSEEN_SIX, tiny_config

REPO = Path(__file__).resolve().parents[1]
UNSEEN = UNSEEN_SIX
FROM, TO, START = dt.datetime(2004, 1, 1), dt.datetime(2007, 6, 29), "2005-01-03"
T = "2006-06-01"  # a rebalance day: prices after it are perturbed
SECTIONS = {
    "lstm": {"force_retrain_days": 180, "max_training_models": 3},
    "lstm_service": {
        "retraining": {"force_retrain_age_days": 180},
        "universal": {"retrain_days": 365},
        "enable_monitoring": False,
    },
    "portfolio": {"num_symbols": 3, "max_weight": 0.4},
}


def bt_config(**overrides):
    sections = json.loads(json.dumps(SECTIONS))
    for name, values in overrides.items():
        sections.setdefault(name, {}).update(values)
    return tiny_config(**sections)


@pytest.fixture(scope="module")
def csv_dir(unseen_six_dir) -> Path:
    return unseen_six_dir


@pytest.fixture(scope="module")
def frames(csv_dir) -> dict[str, pd.DataFrame]:
    return {s: read_ohlcv_csv(csv_dir / f"{s}.csv") for s in UNSEEN}


@pytest.fixture(scope="module")
def registry_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("bt_models")


def run(feeds, registry, config=None, analyzer=True, preload=True, runonce=True, start=START, **params):
    """One cerebro run, as a user writes it; ``feeds`` is a CSV folder or ``{symbol: DataFrame}``."""
    cerebro = bt.Cerebro(preload=preload, runonce=runonce, stdstats=False)
    if isinstance(feeds, Path):
        for symbol in UNSEEN:
            cerebro.adddata(
                bt.feeds.YahooFinanceCSVData(
                    dataname=str(feeds / f"{symbol}.csv"), fromdate=FROM, todate=TO, adjclose=True
                ),
                name=symbol,
            )
    else:
        for symbol, frame in feeds.items():
            cerebro.adddata(bt.feeds.PandasData(dataname=frame, fromdate=FROM, todate=TO), name=symbol)
    cerebro.broker.setcash(100_000)
    cerebro.addstrategy(
        LSTMRebalanceStrategy, config=config or bt_config(), registry=str(registry), start=start, **params
    )
    if analyzer:
        cerebro.addanalyzer(LSTMForecastAnalyzer, _name="lstm")
    strategy = cerebro.run()[0]
    return strategy, (strategy.analyzers.lstm.get_analysis() if analyzer else None), cerebro.broker.getvalue()


def perturb(frames: dict[str, pd.DataFrame], after: str, seed: int = 0) -> dict[str, pd.DataFrame]:
    """Every bar after ``after`` replaced by noise (a random walk around the last honest price)."""
    rng = np.random.default_rng(seed)
    noisy = {}
    for symbol, frame in frames.items():
        frame = frame.copy()
        later = frame.index > pd.Timestamp(after)
        factor = np.exp(np.cumsum(rng.normal(0, 0.03, later.sum())))
        for column in ("open", "high", "low", "close"):
            frame.loc[later, column] = (
                frame.loc[later, column].iloc[0] * factor * rng.uniform(0.99, 1.01, later.sum())
            )
        frame.loc[later, "high"] = frame.loc[later, ["open", "high", "low", "close"]].max(axis=1)
        frame.loc[later, "low"] = frame.loc[later, ["open", "high", "low", "close"]].min(axis=1)
        frame.loc[later, "volume"] = frame.loc[later, "volume"] * rng.uniform(0.5, 1.5, later.sum())
        noisy[symbol] = frame
    return noisy


def dated_up_to(analysis: dict, when: str) -> tuple[list, list, str]:
    """Forecasts dated <= when (without the realised return, which is read later), orders created <=
    when, and the daily forecasts (LSTM and baselines) dated <= when."""
    limit = pd.Timestamp(when).isoformat()
    records = [
        {k: v for k, v in r.items() if k != "realized"} for r in analysis["records"] if r["date"] <= limit
    ]
    orders = [(o["created"], o["symbol"], o["size"]) for o in analysis["orders"] if o["created"] <= when]
    fills = [o for o in analysis["orders"] if o["date"] <= when]
    daily = analysis["daily"]  # every bar's LSTM forecast and each baseline's score, as exact text
    daily_text = daily[daily["date"] <= pd.Timestamp(when)].to_csv(index=False)
    return records, orders + fills, daily_text


@pytest.fixture(scope="module")
def first_run(csv_dir, registry_dir):
    return run(csv_dir, registry_dir)
