"""A new baseline added through the ``lstm_baselines`` hook: ``examples/high_52w_baseline.py`` alone.

Its maths and causality, its registration beside the built-ins (and what a bad plugin's offer
gets), and a real Backtrader run whose evidence table shows it when it is configured, and only then.
"""

from __future__ import annotations

import functools
import importlib.util
import logging
import sys
from pathlib import Path
from types import ModuleType

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from lstm_plugin.backtrader import LSTMForecastAnalyzer, LSTMRebalanceStrategy
from lstm_plugin.backtrader.summary_table import evidence_lines
from lstm_plugin.core.config_trading import BUILTIN_BASELINE_NAMES
from lstm_plugin.core.errors import ConfigError
from lstm_plugin.model.baselines import BUILTIN_BASELINES, BaselineInputs
from lstm_plugin.plugins.hookspecs import hookimpl
from lstm_plugin.plugins.manager import get_plugin_manager
from lstm_plugin.serving.baselines import available_baselines, check_baselines

from .backtrader_runs import FROM, START, TO, bt_config, csv_dir, frames  # noqa: F401 - csv_dir, frames are fixtures
from .conftest import tiny_config

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "high_52w_baseline.py"
BUILT_IN = [b.name for b in BUILTIN_BASELINES]


@functools.cache
def example() -> ModuleType:
    """The example module, imported from its file as a user's package would import it."""
    spec = importlib.util.spec_from_file_location("high_52w_baseline", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def inputs(closes: dict[str, pd.Series]) -> BaselineInputs:
    bars = {s: pd.DataFrame({"close": c}) for s, c in closes.items()}
    return BaselineInputs(bars, [], tiny_config().model, get_plugin_manager())


def test_the_score_is_the_close_over_the_years_highest_close_and_reads_no_later_bar():
    days = pd.bdate_range("2010-01-04", periods=400)
    rng = np.random.default_rng(3)
    closes = {s: pd.Series(np.exp(np.cumsum(rng.normal(0, 0.02, len(days)))), days) for s in ("A", "B")}
    panel = example().High52Week().panel(inputs(closes))
    t = days[300]
    assert panel.loc[t, "A"] == closes["A"].loc[t] / closes["A"].iloc[49:301].max()
    assert panel.loc[: days[250], "A"].isna().all() and panel.loc[days[251] :, "A"].notna().all()
    moved = {s: c.where(c.index <= t, c * 3.0) for s, c in closes.items()}  # every later price moved
    pd.testing.assert_frame_equal(example().High52Week().panel(inputs(moved)).loc[:t], panel.loc[:t])


class Impostor:
    """A plugin that offers a name already taken and an object that is no baseline."""

    @hookimpl
    def lstm_baselines(self) -> list[object]:
        return [example().High52Week(name="ridge"), object()]


def test_the_hook_adds_it_after_the_built_ins_and_a_bad_offer_is_skipped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        available = available_baselines(get_plugin_manager(plugins=[example(), Impostor()]))
    assert list(available) == [*BUILT_IN, "high_52w"] and list(BUILTIN_BASELINE_NAMES) == BUILT_IN
    assert type(available["ridge"]).__name__ == "WalkForwardRidge"  # the built-in keeps its name
    assert "'ridge' is taken" in caplog.text and "has no name, forecasts_returns and panel" in caplog.text
    assert check_baselines(["high_52w", "ridge", "high_52w"], available) == ("high_52w", "ridge")
    with pytest.raises(ConfigError, match=r"unknown: high_52w \(have: momentum_12_1, reversal_1m"):
        check_baselines(["high_52w"], available_baselines(get_plugin_manager()))


def backtest(frames: dict[str, pd.DataFrame], registry: Path, baselines: tuple[str, ...]) -> dict:
    cerebro = bt.Cerebro(stdstats=False)
    for symbol, frame in frames.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame, fromdate=FROM, todate=TO), name=symbol)
    cerebro.broker.setcash(100_000)
    config = bt_config(lstm_service={"backend": "sync"})
    cerebro.addstrategy(
        LSTMRebalanceStrategy, config=config, registry=str(registry), start=START, plugins=[example()]
    )
    cerebro.addanalyzer(LSTMForecastAnalyzer, _name="lstm", baselines=baselines)
    return cerebro.run()[0].analyzers.lstm.get_analysis()


@pytest.mark.slow
def test_a_backtest_measures_it_when_configured_and_only_then(frames, tmp_path):
    registry = tmp_path / "models"
    measured = backtest(frames, registry, ("momentum_12_1", "high_52w"))["evidence"]
    assert list(measured["forecasters"]) == ["lstm", "momentum_12_1", "high_52w"]
    figures = measured["forecasters"]["high_52w"]["model"]
    assert figures["daily"]["n"] > 100 and np.isfinite(figures["daily"]["value"])
    assert figures["hit_rate"] is None  # it ranks, it forecasts no return
    shown = "\n".join(evidence_lines(measured))
    assert any(line.startswith("high_52w ") for line in shown.splitlines())
    assert any(line.startswith("lstm - high_52w ") for line in shown.splitlines())
    plain = backtest(frames, registry, ("momentum_12_1",))["evidence"]  # the models are reused
    assert list(plain["forecasters"]) == ["lstm", "momentum_12_1"] and "high_52w" not in "\n".join(
        evidence_lines(plain)
    )
    assert plain["forecasters"]["lstm"] == measured["forecasters"]["lstm"]


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ("magic,ridge", "baselines › unknown: magic (have: momentum_12_1, reversal_1m, ridge, or none)"),
        ("Ridge", "--baselines › names like ridge,momentum_12_1, or none (got: 'Ridge')"),
    ],
)
def test_an_unknown_baseline_on_the_command_line_is_one_line_before_anything_runs(
    tmp_path, capsys, given, message
):
    from lstm_plugin.cli.main import main

    out, models = tmp_path / "report", tmp_path / "models"
    code = main(
        ["backtest", "--baselines", given, "--symbols", "AAPL,KO", "--models", str(models), "--out", str(out)]
    )
    error = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and error == [f"lstm-plugin: error: {message}"]
    assert not out.exists() and not list(models.rglob("*.onnx"))
