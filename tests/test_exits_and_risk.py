"""Forecast exits and forecast risk: the pure rules, the variants' statistics, bad input, a positive
control where a model that knows the next bars makes exits pay, and a paper run that exits as the
backtest does."""

from __future__ import annotations

import json
import math
import shutil

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from lstm_plugin.backtrader import LSTMRebalanceStrategy, PortfolioRecorder
from lstm_plugin.backtrader.backtest import run_main_job
from lstm_plugin.backtrader.live import PaperSession
from lstm_plugin.backtrader.live.journal import DayRecord, Journal
from lstm_plugin.backtrader.variants import parse_variants, variant_config
from lstm_plugin.cli.main import main
from lstm_plugin.core.config import ConfigError, validate_config
from lstm_plugin.core.data import FrameSource, bundled_source, read_ohlcv_csv
from lstm_plugin.portfolio.forecast_exits import ExitRule, ExitWatch, exit_scores
from lstm_plugin.portfolio.forecast_risk import (
    RiskInputs,
    forecast_exposure,
    realised_volatility,
    reliability_cap,
    size_book,
)
from lstm_plugin.portfolio.performance import drawdown_series
from lstm_plugin.portfolio.variant_statistics import (
    day_series,
    fill_cost,
    paired_differences,
    variant_figures,
)

from .backtrader_runs import UNSEEN, T, bt_config, dated_up_to, perturb, run
from .conftest import TINY, tiny_config, write_config
from .paper_runs import FIVE, SYNC, fills, replay


def forecast(value: float, down: float = 0.2, version: int = 1) -> dict:
    return {
        "status": "success",
        "expected_log_return": value,
        "probabilities": {"down": down, "neutral": 0.3, "up": 0.7 - down},
        "model_version": version,
        "model_type": "specific",
    }


# ---------------------------------------------------------------------- exits, pure
def test_scores_are_cross_sectional_z_or_the_loss_probability():
    bar = {
        "A": forecast(0.03, 0.1),
        "B": forecast(0.0, 0.4),
        "C": forecast(-0.03, 0.7),
        "D": {"status": "error"},
    }
    z = exit_scores(bar, "zscore")
    assert set(z) == {"A", "B", "C"} and z["B"] == pytest.approx(0.0) and z["A"] == pytest.approx(-z["C"])
    assert z["A"] == pytest.approx(0.03 / np.std([0.03, 0.0, -0.03]))
    assert exit_scores(bar, "loss_probability") == {"A": 0.1, "B": 0.4, "C": 0.7}
    assert exit_scores({"A": forecast(0.01), "B": forecast(0.02)}, "zscore") == {}  # too few for a z
    assert exit_scores({s: forecast(0.01) for s in "ABC"}, "zscore") == {}  # no spread


def test_a_holding_exits_after_k_breaching_bars_in_a_row_once_per_holding_period():
    watch = ExitWatch(ExitRule(min_z=-1.0, bars=2, keep=0.5))
    low = {"A": forecast(0.01), "B": forecast(0.011), "C": forecast(0.012), "X": forecast(-0.05)}
    high = {**low, "X": forecast(0.05)}
    assert watch.update(low, ["X", "A"]) == []  # one bar breaching
    assert watch.update(high, ["X", "A"]) == []  # the streak breaks
    assert watch.update(low, ["X"]) == []
    (due,) = watch.update(low, ["X"])
    assert due["symbol"] == "X" and due["keep"] == 0.5 and due["reason"] == "forecast z < -1 for 2 bars"
    assert due["forecast"] == -0.05 and due["model_version"] == 1 and due["score"] < -1
    assert watch.update(low, ["X"]) == [] and watch.update(low, ["X"]) == []  # not again this period
    no_forecast = {k: v for k, v in low.items() if k != "X"}
    watch.reset()
    assert (
        watch.update(low, ["X"]) == [] and watch.update(no_forecast, ["X"]) == []
    )  # no score: streak broken
    assert watch.update(low, ["X"]) == []
    state = watch.state()
    again = ExitWatch(watch.rule)
    again.restore(json.loads(json.dumps(state)))
    assert again.state() == state and [d["symbol"] for d in again.update(low, ["X"])] == ["X"]


def test_the_loss_probability_rule():
    watch = ExitWatch(ExitRule(signal="loss_probability", max_loss_probability=0.6, bars=1))
    bar = {"A": forecast(0.0, 0.65), "B": forecast(0.0, 0.5)}
    assert [d["symbol"] for d in watch.update(bar, ["A", "B"])] == ["A"]
    assert ExitRule(signal="loss_probability", max_loss_probability=0.6, bars=1).describe() == (
        "forecast P(down) > 0.6 for 1 bar"
    )


# ---------------------------------------------------------------------- risk, pure
def settings(**changes):
    return tiny_config(lstm={"risk": changes}).lstm.risk


def test_the_exposure_follows_the_mean_forecast_and_the_reliability():
    assert forecast_exposure(0.01, None, 0.01, 0.6) == 1.0
    assert forecast_exposure(-0.005, None, 0.01, 0.6) == pytest.approx(0.5)
    assert forecast_exposure(-0.02, None, 0.01, 0.6) == 0.0
    assert forecast_exposure(0.0, 0.3, 0.01, 0.6) == pytest.approx(0.5)
    assert forecast_exposure(None, 0.9, 0.01, 0.6) is None
    targets = {"A": 0.5, "B": 0.5}
    sized, report = size_book(
        targets, settings(exposure=True, min_exposure=0.3), RiskInputs(-0.008), 0.6, 0.6
    )
    assert report["exposure"] == pytest.approx(0.3) and sized == pytest.approx({"A": 0.15, "B": 0.15})
    same, report = size_book(targets, settings(), RiskInputs(-0.5), 0.6, 0.6)  # every part off
    assert same == targets and report["exposure"] == 1.0


def test_the_cap_shrinks_with_the_live_hit_rate():
    assert reliability_cap(0.55, 0.2, 0.25, 0.55) == pytest.approx(0.2)
    assert reliability_cap(0.45, 0.2, 0.25, 0.55) == pytest.approx(0.05)
    assert reliability_cap(0.525, 0.2, 0.25, 0.55) == pytest.approx(0.125)
    assert reliability_cap(None, 0.2, 0.25, 0.55) == 0.2
    inputs = RiskInputs(0.0, hit_rate={"A": 0.45, "B": 0.6})
    sized, report = size_book({"A": 0.2, "B": 0.2}, settings(reliability_cap=True), inputs, 0.2, 0.6)
    assert sized == pytest.approx({"A": 0.05, "B": 0.2}) and report["capped"] == {"A": pytest.approx(0.05)}


def test_volatility_targeting_scales_to_the_target_on_realised_volatility():
    rng = np.random.default_rng(0)
    returns = rng.normal(0, 0.02, (63, 2))
    weights = np.array([0.5, 0.5])
    realised = realised_volatility(returns, weights)
    assert realised == pytest.approx(float((returns @ weights).std(ddof=1)) * math.sqrt(252))
    inputs = RiskInputs(returns=returns, return_symbols=("A", "B"))
    sized, report = size_book(
        {"A": 0.4, "B": 0.4}, settings(volatility_targeting=True, target_volatility=0.1), inputs, 0.5, 0.6
    )
    assert report["volatility_scale"] == pytest.approx(0.1 / realised)
    assert sized["A"] == pytest.approx(0.4 * max(0.3, 0.1 / realised))
    assert realised_volatility(returns[:3], weights) is None


# ---------------------------------------------------------------------- variants
def test_variant_names_and_their_configs():
    assert parse_variants("exits+risk,risk, exits ,base") == ["base", "exits+risk", "risk", "exits"]
    assert parse_variants(["risk+exits", "vol"]) == ["base", "exits+risk", "vol"]
    for bad in ("foo", "", "exits+exits", "exits+", "Base"):
        with pytest.raises(ValueError, match="--variants › unknown variant"):
            parse_variants(bad)
    config = tiny_config(
        lstm={"exits": {"enabled": True, "min_z": -0.5}, "risk": {"volatility_targeting": True}}
    )
    base, both = variant_config(config, "base"), variant_config(config, "exits+risk")
    assert not base.lstm.exits.enabled and not base.lstm.risk.active
    assert both.lstm.exits.enabled and both.lstm.exits.min_z == -0.5
    assert (
        both.lstm.risk.exposure and both.lstm.risk.reliability_cap and not both.lstm.risk.volatility_targeting
    )
    assert both.model == config.model  # the same models serve every variant


def test_paired_differences_of_a_variant_with_itself_are_zero_and_drawdowns_match():
    days = pd.bdate_range("2020-01-01", periods=120)
    rng = np.random.default_rng(1)
    equity = pd.Series(100_000 * np.cumprod(1 + rng.normal(0, 0.01, 120)), index=days)
    fill = {"date": f"{days[5]:%Y-%m-%d}", "size": 10, "value": 1000.0, "commission": 1.0}
    series = day_series(equity, 100_000, [fill], 0.0005)
    assert fill_cost(fill, 0.0005) == pytest.approx(1.0 + 1000 * 0.0005 / 1.0005)
    assert (
        series.traded[5] == pytest.approx(1000 / equity.iloc[4]) and series.traded.sum() == series.traded[5]
    )
    differences = paired_differences(series, series)
    assert all(d["value"] == 0 and d["low"] == 0 and d["high"] == 0 for d in differences.values())
    figures = variant_figures(series, 1.5)
    assert figures["max_drawdown"] == pytest.approx(float(drawdown_series(equity, 100_000).max()))


# ---------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"exits": {"min_z": -6}}, "lstm.exits.min_z › must be between -5 and 5 (got: -6)"),
        ({"exits": {"max_loss_probability": 1.2}}, "lstm.exits.max_loss_probability › must be between"),
        ({"exits": {"bars": 0}}, "lstm.exits.bars › must be between 1 and 252 (got: 0)"),
        ({"exits": {"keep": 1}}, "lstm.exits.keep › must be between 0 and 0.95"),
        ({"risk": {"min_exposure": 1.5}}, "lstm.risk.min_exposure › must be between 0 and 1 (got: 1.5)"),
        ({"risk": {"target_volatility": 0}}, "lstm.risk.target_volatility › must be between"),
        ({"exits": {"signal": "maybe"}}, "lstm.exits.signal ›"),
    ],
)
def test_bad_settings_are_one_line_at_exit_2(tmp_path, capsys, payload, message):
    with pytest.raises(ConfigError, match="config › " + message.replace("(", r"\(").replace(")", r"\)")):
        validate_config({"lstm": payload})
    config = write_config(tmp_path / "c.json", {"lstm": payload})
    code = main(["backtest", "--config", str(config), "--out", str(tmp_path / "r"), "-q"])
    err = capsys.readouterr().err
    assert code == 2 and message.split(" ›")[0] in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists()


def test_an_unknown_variant_is_one_line_at_exit_2_before_any_work(tmp_path, capsys):
    code = main(
        ["backtest", "--variants", "base,exit", "--out", str(tmp_path / "r"), "--models", str(tmp_path / "m")]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--variants › unknown variant 'exit'" in err and err.count("\n") == 1
    assert not (tmp_path / "r").exists() and not (tmp_path / "m").exists()
    code = main(["backtest", "--variants", "exits", "--no-lstm", "--out", str(tmp_path / "r"), "-q"])
    assert code == 2 and "drop --no-lstm" in capsys.readouterr().err


# ---------------------------------------------------------------------- positive control
def crash_market(seed: int, symbols: int = 8, bars: int = 700) -> dict[str, pd.DataFrame]:
    """Random walks with drift, each hit by sudden 25 % falls over 5 bars at random times."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2015-01-01", periods=bars)
    frames = {}
    for i in range(symbols):
        steps = rng.normal(0.0006, 0.01, bars)
        for start in rng.choice(np.arange(300, bars - 10), size=4, replace=False):
            steps[start : start + 5] += math.log(0.75) / 5
        close = 50 * np.exp(np.cumsum(steps))
        frames[f"S{i}"] = pd.DataFrame(
            {"open": close, "high": close * 1.005, "low": close * 0.995, "close": close, "volume": 1e6},
            index=days,
        )
    return frames


class OracleExits(LSTMRebalanceStrategy):
    """The LSTM strategy whose every-bar forecasts come from a model that knows the next 5 bars."""

    params = (("frames", None),)

    def __init__(self) -> None:
        super().__init__()
        self.lstm.observe = self.oracle

    def oracle(self) -> dict:
        today = self.lstm.today()
        bar = {}
        for symbol in self.lstm.tradable():
            close = self.p.frames[symbol]["close"]
            at = close.index.get_loc(today)
            ahead = float(np.log(close.iloc[min(at + 5, len(close) - 1)] / close.iloc[at]))
            bar[symbol] = forecast(ahead)
        return bar


def control_run(frames, exits: bool, tmp_path):
    config = tiny_config(
        lstm={"exits": {"enabled": exits, "min_z": -1.0, "bars": 1}},
        portfolio={"num_symbols": 4, "min_score": 0, "max_weight": 0.25},
        **SYNC,
    )
    cerebro = bt.Cerebro(stdstats=False)
    for symbol, frame in frames.items():
        cerebro.adddata(bt.feeds.PandasData(dataname=frame), name=symbol)
    cerebro.broker.setcash(100_000)
    start = f"{frames['S0'].index[300]:%Y-%m-%d}"
    cerebro.addstrategy(
        OracleExits,
        frames=frames,
        config=config,
        registry=str(tmp_path / "m"),
        source=FrameSource(frames),
        train=False,
        start=start,
        progress=False,
    )
    cerebro.addanalyzer(PortfolioRecorder, _name="portfolio", start=start)
    recorded = cerebro.run()[0].analyzers.portfolio.get_analysis()
    return day_series(recorded["equity"], 100_000, recorded["orders"], config.backtest.slippage), recorded


@pytest.mark.parametrize("seed", [0, 1])
def test_a_model_that_knows_the_next_bars_makes_the_exit_variant_measurably_better(tmp_path, seed):
    """The positive control: with forecasts that see 5 bars ahead, exits leave holdings before their
    falls, and the paired Sharpe difference's whole 95 % interval is above 0. Exits fill at the next
    open, with costs, and only between rebalances."""
    frames = crash_market(seed)
    base, _ = control_run(frames, False, tmp_path / "base")
    exits, recorded = control_run(frames, True, tmp_path / "exits")
    difference = paired_differences(exits, base)["sharpe"]
    assert difference["value"] > 0.5 and difference["low"] > 0, difference
    exited = [o for o in recorded["orders"] if o["reason"] == "exit"]
    assert exited and all(o["size"] < 0 and o["commission"] > 0 for o in exited)
    assert all(o["created"] < o["date"] for o in exited)  # sent at a close, filled at the next open
    assert all(
        o["exit_reason"] == "forecast z < -1 for 1 bar" and isinstance(o["forecast"], float) for o in exited
    )


# ---------------------------------------------------------------------- journal and paper
def test_the_journal_keeps_the_exit_watch_and_each_exit(tmp_path):
    journal = Journal(tmp_path)
    journal.begin_run(["test"])
    order = {"client_id": "r:2020-01-03:A", "symbol": "A", "size": -10, "target": 0.0}
    exit_row = {
        "client_id": order["client_id"],
        "symbol": "A",
        "reason": "forecast z < -1 for 2 bars",
        "score": -1.4,
        "forecast": -0.02,
        "model_type": "specific",
        "model_version": 3,
        "keep": 0.0,
    }
    watch = {"streaks": {"B": 1}, "exited": ["A"]}
    day = pd.Timestamp("2020-01-03")
    journal.commit_day(DayRecord(day, 1000.0, 1000.0, {}, orders=[order], exits=[exit_row], exit_watch=watch))
    assert journal.book(1000.0).exit_watch == watch
    (row,) = journal.rows("exits")
    assert row["reason"] == exit_row["reason"] and row["model_version"] == 3 and row["date"] == "2020-01-03"
    journal.close()


@pytest.mark.slow
def test_a_paper_replay_exits_exactly_as_the_backtest(tmp_path):
    config = tiny_config(lstm={"exits": {"enabled": True, "min_z": -0.5, "bars": 1}}, **SYNC)
    result = run_main_job(
        config, bundled_source(), tmp_path / "warm", FIVE, "2020-01-02", "2020-04-30", progress=False
    )
    expected = sorted(
        (
            {k: o[k] for k in ("date", "created", "symbol", "size", "price", "commission")}
            for o in result.orders
            if o["strategy"] == "lstm"
        ),
        key=lambda r: (r["date"], r["symbol"]),
    )
    backtest_exits = [o for o in result.orders if o["strategy"] == "lstm" and o["reason"] == "exit"]
    assert backtest_exits
    models = tmp_path / "models"
    shutil.copytree(tmp_path / "warm", models)
    with PaperSession(tmp_path / "state", replay(), config=config, registry=models) as session:
        session.run()
        paper_fills, journal_exits = fills(session), session.journal.rows("exits")
    assert paper_fills == expected
    assert sorted((e["date"], e["symbol"], e["model_version"]) for e in journal_exits) == sorted(
        (o["created"], o["symbol"], o["model_version"]) for o in backtest_exits
    )
    assert all(
        e["reason"] == "forecast z < -0.5 for 1 bar" and e["forecast"] is not None for e in journal_exits
    )


# ---------------------------------------------------------------------- honesty
@pytest.mark.slow
def test_future_prices_change_nothing_dated_before_them_with_exits_and_risk_on(unseen_six_dir, tmp_path):
    """The future-perturbation check on a run with every exit and risk part on, each run training into
    its own empty registry: forecasts, orders (exits among them) and fills dated up to T are the same
    to the bit."""
    frames = {s: read_ohlcv_csv(unseen_six_dir / f"{s}.csv").loc[:"2006-12-29"] for s in UNSEEN}
    every_part = {
        "exposure": True,
        "reliability_cap": True,
        "volatility_targeting": True,
        "target_volatility": 0.1,
    }
    config = bt_config(lstm={"exits": {"enabled": True, "min_z": -0.5, "bars": 1}, "risk": every_part})
    strategy, honest, _ = run(frames, tmp_path / "honest", config=config)
    _, noisy, _ = run(perturb(frames, T), tmp_path / "noisy", config=config)
    exits = [o for o in honest["orders"] if o["reason"] == "exit" and o["created"] <= T]
    assert exits and {o["reason"] for o in honest["orders"]} == {"exit", "rebalance"}
    assert dated_up_to(noisy, T) == dated_up_to(honest, T)
    assert dated_up_to(noisy, "2006-12-29") != dated_up_to(honest, "2006-12-29")


# ---------------------------------------------------------------------- the main job's variants
def test_the_variants_run_side_by_side_on_models_trained_once(tmp_path, capsys):
    config = write_config(
        tmp_path / "c.json",
        {**json.loads(json.dumps(TINY)), "lstm": {"exits": {"min_z": -0.5, "bars": 1}}, **SYNC},
    )
    report, models = tmp_path / "report", tmp_path / "models"
    args = ["--symbols", "AAPL,MSFT,KO,XOM,JNJ", "--start", "2020-01-02", "--end", "2020-06-30"]
    places = ["--config", str(config), "--out", str(report), "--models", str(models)]
    code = main(["backtest", *args, *places, "--variants", "exits+risk,exits,vol+risk,risk", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0
    variants = summary["variants"]
    assert list(variants) == ["base", "exits+risk", "exits", "risk+vol", "risk"]
    assert summary["settings"]["variants"] == list(variants)
    trained = summary["forecast"]["trained"]
    assert trained > 0 and len(list(models.rglob("*.onnx"))) == trained  # the variants trained nothing
    assert variants["base"]["vs_base"] is None and variants["base"]["seconds"] == 0  # base is the lstm run
    assert variants["base"]["figures"]["sharpe"] == pytest.approx(summary["lstm"]["sharpe"])
    assert variants["exits"]["exits"] > 0 and variants["risk"]["exits"] == 0
    assert variants["exits"]["vs_base"]["turnover"]["value"] > 0  # exits trade more
    for name in ("exits", "risk", "risk+vol"):
        for figure in ("sharpe", "max_drawdown", "turnover", "costs"):
            estimate = variants[name]["vs_base"][figure]
            assert estimate["low"] <= estimate["value"] <= estimate["high"], (name, figure)
    assert variants["risk"]["exposure"]["least"] >= 0.3 and variants["exits"]["exposure"] is None
    equity = pd.read_csv(report / "equity.csv", index_col="date")
    assert list(equity.columns) == ["lstm", "technical", "buy_hold", *(f"lstm[{n}]" for n in variants)]
    assert equity["lstm[base]"].equals(equity["lstm"])
    orders = pd.read_csv(report / "orders.csv")
    exits = orders[(orders["strategy"] == "lstm[exits]") & (orders["reason"] == "exit")]
    assert len(exits) == variants["exits"]["exits"] and exits["model_version"].notna().all()
    assert (exits["exit_reason"] == "forecast z < -0.5 for 1 bar").all() and exits["forecast"].notna().all()
    assert set(orders.loc[orders["strategy"] == "buy_hold", "reason"]) == {"buy_and_hold"}
    code = main(["backtest", *args, *places, "--variants", "exits", "-q"])
    table = capsys.readouterr().out
    assert code == 0 and "variants of the lstm strategy on the same models" in table
    assert "  - base, 95% interval" in table and "exits filled" in table
