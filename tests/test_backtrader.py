"""Backtrader integration on real data the package does not bundle: the strategy, the helper, the
analyzer, walk-forward training, and the honesty rules of docs/backtrader.md."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lstm_plugin import ModelRegistry

from .backtrader_runs import (  # noqa: F401 - csv_dir, first_run, frames, registry_dir are fixtures
    FROM,
    REPO,
    SECTIONS,
    START,
    TO,
    UNSEEN,
    T,
    bt_config,
    csv_dir,
    dated_up_to,
    first_run,
    frames,
    perturb,
    registry_dir,
    run,
)
from .sample_plugins import (
    PeekAhead,
    TrainingPeek,
)

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
    assert second["training"]["trained"] == 0
    jobs = first["training"]["trained"] + first["training"]["reused"]
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
    daily = honest["daily"][honest["daily"]["date"] <= pd.Timestamp(T)]
    assert len(daily) > 200 and daily[["lstm", "momentum_12_1", "reversal_1m", "ridge"]].notna().all().all()
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


def test_write_yahoo_csvs_gives_files_backtraders_yahoo_feed_reads(tmp_path, source):
    """docs/backtrader.md's first step: the bundled bars as Yahoo-style CSVs, read by Backtrader as is."""
    import datetime as dt

    import backtrader as bt

    from lstm_plugin.backtrader import write_yahoo_csvs

    (path,) = write_yahoo_csvs(tmp_path / "my_csvs", ["KO"], source)
    assert path == tmp_path / "my_csvs" / "KO.csv"
    feed = bt.feeds.YahooFinanceCSVData(
        dataname=str(path), adjclose=True, fromdate=dt.datetime(2010, 1, 4), todate=dt.datetime(2011, 1, 1)
    )
    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(feed, name="KO")
    cerebro.addstrategy(bt.Strategy)
    cerebro.run()
    expected = source.load("KO").loc["2010-01-04":"2010-12-31"]
    closes = np.asarray(feed.close.array)
    assert len(closes) == len(expected)
    # the feed rounds adjusted prices to cents (its ``decimals=2``)
    np.testing.assert_allclose(closes, expected["close"].to_numpy(), rtol=0, atol=0.0051)
