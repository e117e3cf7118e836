"""What the commands print holds up at the edges: a closed or full stdout, a backtest of a few days or of a
trillion dollars, a model with too few test samples, a walk-forward whose trainings all fail — one line
where something is wrong, never a traceback, a warning or a ``nan``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_plugin import ModelRegistry, ModelTrainer

from .conftest import TINY, tiny_config, write_config


def cli(*args: str, cwd: Path, stdout: int | None = subprocess.PIPE) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lstm_plugin", *args],
        cwd=cwd,
        stdout=stdout,
        stderr=subprocess.PIPE,
        text=True,
        timeout=600,
    )


def backtest(folder: Path, start: str, end: str, *extra: str, config: dict | None = None):
    """``lstm-plugin backtest`` of AAPL and MSFT over ``start .. end``, quiet, with the tiny config (or
    ``config``)."""
    write_config(folder / "c.json", config or TINY)
    span = ["--symbols", "AAPL,MSFT", "--start", start, "--end", end]
    return cli("backtest", *span, "--out", "out", "--config", "c.json", "-q", *extra, cwd=folder)


@pytest.mark.parametrize("args", [["schema"], ["status", "--as-of", "2016-01-04"], ["paper", "status"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(trained, tmp_path, args):
    (tmp_path / "S").mkdir()
    if args[0] == "paper":
        args = [*args, "--state", str(tmp_path / "S")]
        from lstm_plugin.backtrader.live import Journal
        from lstm_plugin.backtrader.live.state import check_identity

        journal = Journal(tmp_path / "S")  # a paper run that has not traded yet
        identity = {"config": "x", "settings": {}, "symbols": ["AAPL"], "start": "2020-01-02", "cash": 1e5}
        check_identity(journal, {**identity, "run_id": "r"}, tiny_config(), tmp_path / "S")
        journal.close()
    else:
        args = [*args, "--models", str(trained["root"])] if args[0] == "status" else args
    child = subprocess.Popen(
        [sys.executable, "-m", "lstm_plugin", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # `| head -0`: nobody reads
    err = child.stderr.read().decode()
    assert child.wait(120) == 141 and err == ""  # 128 + SIGPIPE, as Unix tools end


@pytest.mark.parametrize("args", [["schema"], ["status", "--json"]])
def test_a_full_disk_under_stdout_is_one_line(trained, tmp_path, args):
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    with open("/dev/full", "w") as full:
        proc = (
            cli(*args, "--models", str(trained["root"]), cwd=tmp_path, stdout=full)
            if args[0] == "status"
            else (cli(*args, cwd=tmp_path, stdout=full))
        )
    assert proc.returncode == 2
    assert proc.stderr.strip() == "lstm-plugin: error: cannot write the output: No space left on device"


@pytest.mark.slow
def test_a_three_day_backtest_says_it_has_too_few_days_for_an_interval(tmp_path):
    proc = backtest(tmp_path, "2020-03-02", "2020-03-04", "--no-lstm")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "  95% interval   too few days for an interval (3 days; at least 20)" in proc.stdout
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["technical"]["sharpe_low"] is None and summary["technical"]["sharpe_high"] is None


@pytest.mark.slow
def test_a_one_bar_backtest_leaks_no_warning(tmp_path):
    proc = backtest(tmp_path, "2020-03-07", "2020-03-09", "--backend", "sync")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert "(1 bar)," in proc.stdout and "(1 day; at least 20)" in proc.stdout


@pytest.mark.slow
def test_a_trillion_dollar_book_keeps_its_columns_apart(tmp_path):
    proc = backtest(
        tmp_path, "2020-01-02", "2020-03-31", "--no-lstm", config={**TINY, "backtest": {"cash": 1e12}}
    )
    assert proc.returncode == 0, proc.stderr
    header, final = proc.stdout.splitlines()[1:3]
    cells = final.split()
    assert final.startswith("final value") and len(cells) == 4  # two words, then one figure per strategy
    assert all(cell.count(",") >= 3 for cell in cells[2:]), final  # each some 900,000,000,000: whole
    assert header.split() == ["technical", "buy_hold"]


def test_too_few_test_samples_is_one_line_naming_the_setting(tmp_path):
    write_config(
        tmp_path / "ms1.json", {"model": {"min_samples": 1}, "plugins": {"load_entry_points": False}}
    )
    proc = cli(
        "train",
        "AAPL",
        "--as-of",
        "2000-03-22",
        "--config",
        "ms1.json",
        "--models",
        "M",
        "--backend",
        "sync",
        cwd=tmp_path,
    )
    assert proc.returncode == 2 and "nan" not in proc.stdout.lower()
    line = proc.stderr.strip()
    assert line.startswith(
        "lstm-plugin: error: train › AAPL › specific AAPL @ 2000-03-22 › insufficient data ›"
    )
    assert "its test segment would hold 2 samples, fewer than model.min_test_samples (20)" in line
    assert not (tmp_path / "M" / "specific" / "AAPL").exists() or not list(
        (tmp_path / "M" / "specific" / "AAPL").glob("v*.json")
    )


@pytest.mark.slow
def test_a_walk_forward_whose_trainings_fail_says_why(tmp_path):
    write_config(tmp_path / "tiny.json", TINY)
    proc = cli(
        "pretrain",
        "--start",
        "1999-11-01",
        "--end",
        "1999-12-31",
        "--symbols",
        "AAPL,MSFT",
        "--config",
        "tiny.json",
        "--models",
        "M",
        "-q",
        cwd=tmp_path,
    )
    assert proc.returncode == 0
    first, reason = proc.stdout.strip().splitlines()
    assert "failed 2" in first
    assert reason.startswith("failed: DEFAULT @ 1999-11-01: ") and "insufficient data" in reason
    assert all(line.startswith("lstm-plugin: WARNING: ") for line in proc.stderr.splitlines()), proc.stderr


def test_two_runs_that_train_the_same_model_at_once_register_it_once(source, tmp_path):
    """Both find nothing to reuse and train; the second to publish finds the first's version (under the
    lock)."""
    from lstm_plugin.training.jobs import run_training_job

    registry = ModelRegistry(tmp_path)
    first, second = (
        ModelTrainer(tiny_config(), source, ModelRegistry(tmp_path), progress=False) for _ in range(2)
    )
    jobs = [t.prepare_universal(["AAPL", "KO", "XOM"], as_of="2015-12-31") for t in (first, second)]
    results = [run_training_job(job) for job in jobs]  # trained side by side
    assert results[0].training_key == results[1].training_key and not any(r.reused for r in results)
    published = [first.publish(results[0]), second.publish(results[1])]
    assert [p.reused for p in published] == [False, True]
    assert [r.version for r in registry.records("universal", "DEFAULT")] == [1]


@pytest.mark.slow
def test_every_label_says_what_it_measures_and_the_forecast_interval_respects_the_overlap(tmp_path):
    """Weekly rebalances of 21-bar forecasts: each outcome overlaps the next four, so the rank IC's interval
    is the overlap-aware one; and every figure's label names its convention and its count."""
    import pandas as pd

    from lstm_plugin.core.statistics import estimate_mean

    config = {**TINY, "model": {**TINY["model"], "horizon": 21}, "backtest": {"rebalance": "weekly"}}
    write_config(tmp_path / "c.json", config)
    span = ["--symbols", "AAPL,MSFT,KO,XOM", "--start", "2019-07-01", "--end", "2020-06-30"]
    proc = cli(
        "backtest", *span, "--out", "out", "--config", "c.json", "-q", "--backend", "sync", cwd=tmp_path
    )
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    forecast = json.loads((tmp_path / "out" / "summary.json").read_text())["forecast"]
    outcomes = pd.read_csv(tmp_path / "out" / "outcomes.csv").dropna(subset=["realized"])
    per_date = [
        day.expected_log_return.rank().corr(day.realized.rank())
        for _, day in outcomes.groupby("date")
        if len(day) >= 3
    ]
    aware, naive = estimate_mean(per_date, overlap=5), estimate_mean(per_date, overlap=1)
    assert (forecast["rank_ic_low"], forecast["rank_ic_high"]) == pytest.approx((aware["low"], aware["high"]))
    assert forecast["rank_ic_low"] != pytest.approx(naive["low"])

    lines = proc.stdout.splitlines()
    for label in ("Sharpe (risk-free 0)", "Calmar (CAGR / max DD)", "turnover / year, one-way"):
        assert any(line.startswith(label) for line in lines), label
    assert (
        f"up/down calls right {forecast['hit_rate']:.3f} of {forecast['n_directional']} (neutral"
        in proc.stdout
    )
    assert "forecast evidence: the mean over days of each day's rank IC across symbols" in proc.stdout
    sign = next(line for line in lines if line.startswith("sign of the expected return right, every (day, "))
    assert " of 1,0" in sign and "hit rate" not in proc.stdout
