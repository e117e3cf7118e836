"""Backtrader integration on real data the package does not bundle: the strategy, the helper, the
analyzer, walk-forward training, and the honesty rules of docs/backtrader.md."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys
from pathlib import Path

import backtrader as bt
import numpy as np
import pandas as pd
import pytest

from lstm_plugin import ModelRegistry
from lstm_plugin.backtrader import LSTMForecastAnalyzer, LSTMRebalanceStrategy
from lstm_plugin.core.data import read_ohlcv_csv
from lstm_plugin.portfolio.rebalancing import order_sequence, rebalance_due

from .conftest import UNSEEN_SIX, tiny_config
from .sample_plugins import (
    ExplodingRebalance,
    FailingTraining,
    GreedyTargets,
    PeekAhead,
    RebalanceSpy,
    TrainingPeek,
)

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


def dated_up_to(analysis: dict, when: str) -> tuple[list, list]:
    """Forecasts dated <= when (without the realised return, which is read later) and orders created <=
    when."""
    limit = pd.Timestamp(when).isoformat()
    records = [
        {k: v for k, v in r.items() if k != "realized"} for r in analysis["records"] if r["date"] <= limit
    ]
    orders = [(o["created"], o["symbol"], o["size"]) for o in analysis["orders"] if o["created"] <= when]
    fills = [o for o in analysis["orders"] if o["date"] <= when]
    return records, orders + fills


@pytest.fixture(scope="module")
def first_run(csv_dir, registry_dir):
    return run(csv_dir, registry_dir)


# ---------------------------------------------------------------------- a user's script
ANALYSIS_KEYS = {
    "n_rebalances",
    "n_predictions",
    "n_evaluated",
    "n_directional",
    "hit_rate",
    "base_rate",
    "ic",
    "rank_ic",
    "ic_by_date",
    "calibration",
    "model_usage",
    "training",
    "records",
    "orders",
}


@pytest.mark.slow
def test_a_users_cerebro_on_unseen_csv_files(first_run):
    strategy, analysis, value = first_run
    assert set(analysis) >= ANALYSIS_KEYS
    assert analysis["n_rebalances"] == 30  # the first bar of every month, 2005-01 .. 2007-06
    assert analysis["n_predictions"] > 100 and analysis["orders"]
    assert analysis["model_usage"]["universal"] > 0 and analysis["model_usage"]["specific"] > 0
    training = analysis["training"]
    assert training["trained"] > 0 and training["reused"] == 0 and training["failed"] == 0
    assert all(event["date"] >= "2005-01-03" for event in training["events"])
    assert (
        set(analysis["ic"]) == {"mean", "std", "icir", "dates", "low", "high", "t"}
        and analysis["ic"]["dates"] > 10
    )
    assert analysis["ic"]["low"] <= analysis["ic"]["mean"] <= analysis["ic"]["high"]
    assert all(r["date"] <= "2007-06-29T00:00:00" for r in analysis["records"])
    assert value > 0 and math.isfinite(value)


def test_models_become_specific_as_they_are_trained(first_run):
    records = first_run[1]["records"]
    first_day = min(r["date"] for r in records)
    assert {r["model_type"] for r in records if r["date"] == first_day} == {
        "universal"
    }  # nothing of their own yet
    assert {r["model_type"] for r in records if r["date"] == max(r["date"] for r in records)} == {"specific"}


def test_a_second_identical_run_reuses_every_model(first_run, csv_dir, registry_dir):
    _, first, value = first_run
    _, second, again = run(csv_dir, registry_dir)
    assert second["training"]["trained"] == second["training"]["candidate"] == 0
    jobs = first["training"]["trained"] + first["training"]["candidate"] + first["training"]["reused"]
    assert second["training"]["reused"] == jobs
    assert second["records"] == first["records"] and second["orders"] == first["orders"] and again == value


@pytest.mark.parametrize(("preload", "runonce"), [(True, False), (False, False)])
def test_engine_modes_give_the_same_orders(first_run, csv_dir, registry_dir, preload, runonce):
    _, reference, value = first_run
    _, analysis, again = run(csv_dir, registry_dir, preload=preload, runonce=runonce)
    assert (
        analysis["orders"] == reference["orders"]
        and analysis["records"] == reference["records"]
        and again == value
    )


def test_sells_go_before_buys_and_costs_are_charged(first_run, frames):
    orders = first_run[1]["orders"]
    by_day: dict[str, list] = {}
    for order in orders:
        by_day.setdefault(order["date"], []).append(order)
    for day_orders in by_day.values():
        sizes = [o["size"] for o in day_orders]
        assert sizes == sorted(sizes, key=lambda size: size > 0), "a buy was filled before a sale"
    order = orders[0]
    bar = (
        frames[order["symbol"]].loc[order["date"]].round(2)
    )  # Backtrader's Yahoo feed rounds adjusted prices to cents
    slip = 1.0005 if order["size"] > 0 else 0.9995
    assert order["price"] == pytest.approx(min(max(bar["open"] * slip, bar["low"]), bar["high"]))
    assert order["commission"] == pytest.approx(abs(order["size"]) * order["price"] * 0.001)
    assert order["created"] < order["date"]  # sent at a close, filled at the next open: no cheat-on-close


# ---------------------------------------------------------------------- honesty
@pytest.mark.slow
def test_future_prices_change_nothing_dated_before_them(first_run, frames, tmp_path):
    """Each run trains into its own empty registry, so the trainings themselves are compared too."""
    _, honest, _ = run(frames, tmp_path / "honest")
    assert honest["records"] == first_run[1]["records"]  # CSV feeds and DataFrame feeds agree
    _, perturbed, _ = run(perturb(frames, T), tmp_path / "perturbed")
    before, before_perturbed = dated_up_to(honest, T), dated_up_to(perturbed, T)
    assert before[0] and before[1]
    assert before_perturbed == before  # every forecast and order dated <= T, to the bit
    assert dated_up_to(perturbed, "2007-06-29") != dated_up_to(
        honest, "2007-06-29"
    )  # the noise did change the rest


@pytest.mark.slow
def test_a_leaky_feature_is_caught_by_the_same_check(frames, tmp_path):
    config = bt_config()
    short = {s: f.loc[:"2006-12-29"] for s, f in frames.items()}
    _, honest, _ = run(short, tmp_path / "leaky", config=config, plugins=(PeekAhead(),))
    _, perturbed, _ = run(perturb(short, T), tmp_path / "leaky", config=config, plugins=(PeekAhead(),))
    assert (
        "next_ret"
        in ModelRegistry(tmp_path / "leaky").records("universal", "DEFAULT")[0].metadata["features"]
    )
    assert dated_up_to(perturbed, T)[0] != dated_up_to(honest, T)[0]  # the detector fires


@pytest.mark.slow
def test_a_training_side_leak_is_caught_by_the_same_check(frames, tmp_path):
    """Positive control for training: a feature that lets a training at T see bar T+1, and only training.

    The run starts at T, so every model serving there was trained there, on the leak.
    """
    config = bt_config(lstm={"max_training_models": 7})
    short = {s: f.loc[:"2006-07-31"] for s, f in frames.items()}

    def forecasts_at_t(bars, name, leak):
        plugins = (TrainingPeek(bars),) if leak else ()
        return dated_up_to(run(bars, tmp_path / name, config=config, start=T, plugins=plugins)[1], T)[0]

    noisy = perturb(short, T)
    assert forecasts_at_t(noisy, "clean-noisy", False) == forecasts_at_t(short, "clean", False)
    leaky = forecasts_at_t(short, "leaky", True)
    assert "peek" in ModelRegistry(tmp_path / "leaky").records("specific", UNSEEN[0])[0].metadata["features"]
    assert forecasts_at_t(noisy, "leaky-noisy", True) != leaky  # the detector fires on the weights alone


def test_every_forecast_comes_from_a_model_trained_before_it(first_run, registry_dir, frames):
    registry = ModelRegistry(registry_dir)
    checked = 0
    for record in first_run[1]["records"]:
        if record["status"] != "success":
            continue
        name = record["symbol"] if record["model_type"] == "specific" else "DEFAULT"
        model = next(
            r for r in registry.records(record["model_type"], name) if r.version == record["model_version"]
        )
        meta = model.metadata
        assert meta["trained_at"] <= record["date"] and meta["data_end"] <= meta["trained_at"]
        index = frames[meta["symbols"][0]].index
        last_label = index.get_loc(pd.Timestamp(meta["train_end"])) + meta["horizon"]
        assert index[last_label] <= pd.Timestamp(meta["data_end"])
        checked += 1
    assert checked == first_run[1]["n_predictions"]


# ---------------------------------------------------------------------- the analyzer
def test_analyzer_figures_equal_an_independent_computation(first_run):
    analysis = first_run[1]
    frame = pd.DataFrame(analysis["records"])
    usable = frame[(frame.status == "success") & frame.realized.notna()]
    calls = usable[usable.predicted_direction.isin(["up", "down"])]
    hits = ((calls.predicted_direction == "up") & (calls.realized > 0)) | (
        (calls.predicted_direction == "down") & (calls.realized < 0)
    )
    assert analysis["hit_rate"] == pytest.approx(hits.mean())
    assert analysis["base_rate"] == pytest.approx(
        max((calls.realized > 0).mean(), (calls.realized < 0).mean())
    )
    ics, rank_ics = [], []
    for _, group in usable.groupby("date"):
        if len(group) < 3 or group.expected_log_return.nunique() < 2 or group.realized.nunique() < 2:
            continue
        ics.append(group.expected_log_return.corr(group.realized))
        rank_ics.append(
            group.expected_log_return.rank().corr(group.realized.rank())
        )  # Spearman, by definition
    assert analysis["ic"]["mean"] == pytest.approx(np.mean(ics)) and analysis["ic"]["dates"] == len(ics)
    assert analysis["ic"]["std"] == pytest.approx(np.std(ics, ddof=1))
    assert analysis["ic"]["icir"] == pytest.approx(np.mean(ics) / np.std(ics, ddof=1))
    assert analysis["rank_ic"]["mean"] == pytest.approx(np.mean(rank_ics))
    bucket = np.digitize(usable.confidence, [0.4, 0.5, 0.6, 0.7])
    actual = np.where(
        np.log1p(usable.realized) > 0.01, "up", np.where(np.log1p(usable.realized) < -0.01, "down", "neutral")
    )
    correct = actual == usable.predicted_direction.to_numpy()
    for i, row in enumerate(analysis["calibration"]):
        assert row["n"] == int((bucket == i).sum())
        if row["n"]:
            assert row["accuracy"] == pytest.approx(correct[bucket == i].mean())
            assert row["mean_confidence"] == pytest.approx(usable.confidence[bucket == i].mean())
    usage = frame.model_type.fillna("none").value_counts()
    assert analysis["model_usage"] == {k: int(usage.get(k, 0)) for k in ("specific", "universal", "none")}


# ---------------------------------------------------------------------- schedule and odd feeds
def test_rebalance_rules():
    d = dt.date
    assert rebalance_due(None, d(2020, 1, 15), 0, "monthly")
    assert not rebalance_due(d(2020, 1, 2), d(2020, 1, 31), 20, "monthly") and rebalance_due(
        d(2020, 1, 31), d(2020, 2, 3), 1, "monthly"
    )
    assert not rebalance_due(d(2020, 1, 6), d(2020, 1, 10), 4, "weekly") and rebalance_due(
        d(2020, 1, 10), d(2020, 1, 13), 1, "weekly"
    )
    assert not rebalance_due(d(2020, 1, 6), d(2020, 1, 10), 4, 5) and rebalance_due(
        d(2020, 1, 6), d(2020, 1, 13), 5, 5
    )
    with pytest.raises(ValueError, match="rebalance"):
        rebalance_due(d(2020, 1, 6), d(2020, 1, 7), 1, "daily")
    assert order_sequence({"A": 0.5, "B": 0.2}, {"B": 0.4, "C": 0.3}) == [("A", 0.0), ("C", 0.3), ("B", 0.4)]


@pytest.mark.slow
def test_weekly_and_every_n_bars(first_run, csv_dir, registry_dir):
    weekly = run(csv_dir, registry_dir, rebalance="weekly", train=False)[1]
    every = run(csv_dir, registry_dir, rebalance=21, train=False)[1]
    trading = read_ohlcv_csv(csv_dir / "ABT.csv").loc[START:TO].index
    assert weekly["n_rebalances"] == len({tuple(day.isocalendar()[:2]) for day in trading})
    assert every["n_rebalances"] == math.ceil(len(trading) / 21)
    assert weekly["training"]["trained"] == every["training"]["trained"] == 0  # train=False


@pytest.mark.slow
def test_symbols_that_start_late_or_stop(frames, registry_dir):
    odd = dict(frames)
    odd["AMD"] = frames["AMD"].loc["2005-06-01":]  # too little history to be scanned until mid-2006
    odd["MMM"] = frames["MMM"].loc[:"2006-03-31"]  # stops trading
    strategy, analysis, value = run(odd, registry_dir)
    amd = [o for o in analysis["orders"] if o["symbol"] == "AMD"]
    assert all(o["created"] >= "2006-06-01" for o in amd)
    mmm = [o for o in analysis["orders"] if o["symbol"] == "MMM"]
    assert all(o["created"] <= "2006-03-31" for o in mmm)
    assert math.isfinite(value)


# ---------------------------------------------------------------------- hooks
def test_rebalance_and_training_hooks(frames, registry_dir, caplog):
    spy = RebalanceSpy(keep_only="ABT")
    short = {s: f.loc[:"2005-12-30"] for s, f in frames.items()}
    _, analysis, _ = run(short, registry_dir, plugins=(spy, GreedyTargets(), ExplodingRebalance()))
    assert len(spy.before) == len(spy.after) == analysis["n_rebalances"] == 12
    when, symbols, current = spy.before[1]
    assert when == pd.Timestamp("2005-02-01") and set(symbols) == set(UNSEEN) and set(current) <= {"ABT"}
    assert {o["symbol"] for o in analysis["orders"]} <= {"ABT"}  # the plugin's targets were traded
    assert "returned an invalid targets from lstm_after_rebalance; ignored" in caplog.text
    assert "failed in lstm_after_rebalance and was skipped" in caplog.text
    assert len(spy.trained) == sum(analysis["training"][k] for k in ("trained", "reused", "candidate"))
    assert {t["state"] for t in spy.trained} == {"done"}


def test_failed_training_is_reported_and_the_run_goes_on(frames, tmp_path):
    spy = RebalanceSpy()
    short = {s: f.loc[:"2005-04-29"] for s, f in frames.items()}
    _, analysis, value = run(short, tmp_path / "failing", plugins=(spy, FailingTraining()))
    assert analysis["training"]["failed"] > 0 and analysis["n_predictions"] == 0
    assert analysis["model_usage"]["none"] == len(analysis["records"]) > 0
    assert {where for where, _, _ in spy.errors} == {"training"}
    assert analysis["orders"] and math.isfinite(value)  # the technical selection still trades


def test_a_plugin_installed_through_a_real_entry_point(tmp_path, monkeypatch, frames, registry_dir):
    site = tmp_path / "site"
    (site / "rebalance_counter-1.0.dist-info").mkdir(parents=True)
    (site / "rebalance_counter-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: rebalance-counter\nVersion: 1.0\n"
    )
    (site / "rebalance_counter-1.0.dist-info" / "entry_points.txt").write_text(
        "[lstm_plugin]\ncounter = rebalance_counter\n"
    )
    (site / "rebalance_counter.py").write_text(
        "from lstm_plugin import hookimpl\ncalls = []\n\n@hookimpl\ndef lstm_before_rebalance(when, symbols, "
        "current):\n    calls.append(when)\n"
    )
    monkeypatch.syspath_prepend(str(site))
    config = bt_config(plugins={"load_entry_points": True})
    short = {s: f.loc[:"2005-03-31"] for s, f in frames.items()}
    run(short, registry_dir, config=config, analyzer=False)
    import rebalance_counter

    assert [w.strftime("%Y-%m-%d") for w in rebalance_counter.calls] == [
        "2005-01-03",
        "2005-02-01",
        "2005-03-01",
    ]


# ---------------------------------------------------------------------- the runnable copies
@pytest.mark.slow
@pytest.mark.parametrize("script", ["lstm_rebalance.py", "crossover_with_lstm.py"])
def test_the_strategies_folder_runs(script, csv_dir, registry_dir, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(json.loads(bt_config().model_dump_json(by_alias=True, exclude={"schema_"}))))
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "strategies" / script),
            "--data",
            str(csv_dir),
            "--symbols",
            ",".join(UNSEEN),
            "--start",
            "2005-01-03",
            "--end",
            "2005-12-30",
            "--config",
            str(config),
            "--models",
            str(registry_dir),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["final_value"] > 0 and summary["orders"] > 0
