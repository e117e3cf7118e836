"""Targets and horizons: ``model.target: excess`` and ``model.horizon: "rebalance"``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_plugin import ModelRegistry, ModelTrainer
from lstm_plugin.core.config import ModelSection, config_schema, validate_config
from lstm_plugin.core.data import FrameSource
from lstm_plugin.core.errors import ConfigError, ModelError
from lstm_plugin.model.features import forward_log_return
from lstm_plugin.model.samples import compute_features, training_samples, universe_forward_mean
from lstm_plugin.plugins.manager import get_plugin_manager

from .conftest import tiny_config


@pytest.mark.parametrize(("rule", "bars"), [("monthly", 21), ("weekly", 5), (10, 10), (400, 252)])
def test_a_rebalance_horizon_is_the_holding_period(rule, bars):
    config = validate_config({"model": {"horizon": "rebalance"}, "backtest": {"rebalance": rule}})
    assert config.model.horizon == bars


def test_a_rebalance_horizon_is_only_a_config_file_word():
    with pytest.raises(ConfigError, match=r"model\.horizon"):
        validate_config({"model": {"horizon": "weekly"}})
    with pytest.raises(ValueError):
        ModelSection(horizon="rebalance")
    schema = config_schema()["$defs"]["ModelSection"]["properties"]["horizon"]
    assert {"const": "rebalance"} in schema["anyOf"]
    assert validate_config({"model": {"target": "excess"}}).model.target == "excess"
    with pytest.raises(ConfigError, match=r"model\.target"):
        validate_config({"model": {"target": "alpha"}})


def test_the_benchmark_is_the_mean_forward_log_return_on_each_symbols_own_bars():
    days = pd.bdate_range("2020-01-01", periods=6)
    a = pd.Series([1.0, 2.0, 4.0, 8.0, 16.0, 32.0], index=days)
    b = pd.Series([1.0, 1.0, 1.0, 1.0], index=days[[0, 1, 3, 5]])  # no bars on days 2 and 4
    mean = universe_forward_mean({"A": a, "B": b}, 1)
    assert mean.iloc[0] == pytest.approx(np.log(2) / 2)  # A doubles, B is flat
    assert mean.loc[days[1]] == pytest.approx(np.log(2) / 2)  # B's next bar is day 3: flat still
    assert np.isnan(mean.loc[days[2]])  # only A knows it
    assert np.isnan(mean.iloc[-1])


def test_excess_labels_are_the_symbols_forward_return_minus_the_benchmark(source):
    model = tiny_config(model={"target": "excess"}).model
    bars = source.load("AAPL", end="2015-12-31").iloc[-400:]
    features = compute_features(bars, get_plugin_manager(tiny_config().plugins), model, "AAPL")
    closes = {s: source.load(s, end="2015-12-31")["close"].iloc[-400:] for s in ("AAPL", "MSFT", "KO")}
    benchmark = universe_forward_mean(closes, model.horizon)
    excess = training_samples(bars, features, model, benchmark)
    plain = training_samples(bars, features, model.model_copy(update={"target": "return"}))
    own = pd.Series(forward_log_return(bars["close"].to_numpy(), model.horizon), index=bars.index)
    dates = pd.DatetimeIndex(excess.dates)
    assert np.allclose(excess.returns, (own - benchmark).loc[dates].to_numpy())
    assert len(excess) == len(plain) and np.allclose(excess.windows, plain.windows)
    with pytest.raises(ModelError, match="benchmark"):
        training_samples(bars, features, model)


def scaled(frame: pd.DataFrame, factor: np.ndarray) -> pd.DataFrame:
    """The bars with every price multiplied by ``factor`` (one value per bar)."""
    return frame.assign(**{c: frame[c] * factor for c in ("open", "high", "low", "close")})


@pytest.mark.slow
def test_an_excess_model_depends_on_the_universe_up_to_its_training_time_only(source, tmp_path):
    config = tiny_config(model={"target": "excess"}, data={"symbols": ["AAPL", "MSFT", "KO", "XOM"]})
    frames = {s: source.load(s) for s in config.data.symbols}

    def train(frames, name):
        registry = ModelRegistry(tmp_path / name)
        trainer = ModelTrainer(config, FrameSource(frames), registry, progress=False)
        outcome = trainer.train_specific("AAPL", as_of="2015-12-31")
        return outcome.record.metadata, outcome.record.onnx_path.read_bytes()

    honest, honest_bytes = train(frames, "honest")
    assert honest["model_config"]["target"] == "excess"
    after = {s: np.where(f.index > "2015-12-31", 2.0, 1.0) for s, f in frames.items()}
    again, again_bytes = train({s: scaled(f, after[s]) for s, f in frames.items()}, "later")
    assert again["training_key"] == honest["training_key"] and again_bytes == honest_bytes
    earlier = dict(frames, KO=scaled(frames["KO"], np.linspace(1.0, 1.5, len(frames["KO"]))))
    moved, _ = train(earlier, "earlier")
    assert moved["training_key"] != honest["training_key"]  # another symbol's past shapes the labels
