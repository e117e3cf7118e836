"""Backtrader integration, continued: rebalance schedules, feeds that start late or stop, the hooks, and the
runnable strategy copies (shared runs in ``tests/backtrader_runs.py``)."""

from __future__ import annotations

import datetime as dt
import json
import math
import subprocess
import sys

import pandas as pd
import pytest

from lstm_plugin.core.data import read_ohlcv_csv
from lstm_plugin.portfolio.rebalancing import order_sequence, rebalance_due

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
    ExplodingRebalance,
    FailingTraining,
    GreedyTargets,
    RebalanceSpy,
)


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
    assert len(spy.trained) == sum(analysis["training"][k] for k in ("trained", "reused"))
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
@pytest.mark.parametrize("script", ["lstm_rebalance.py", "crossover_with_lstm.py", "forecast_exits.py"])
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
            *(["--trail", "0.05"] if script == "forecast_exits.py" else []),  # a calm year: a tight stop
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout)
    assert summary["final_value"] > 0 and summary["orders"] > 0
    if script == "forecast_exits.py":  # both exits fired over the year, each counted by why
        assert summary["exits"].get("forecast", 0) > 0 and summary["exits"].get("trailing stop", 0) > 0
