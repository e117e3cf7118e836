"""The main job end to end: ``lstm-plugin backtest`` on CSV files the project has never seen, its
report folder, its honesty, its errors, the original entry point (main_lstm_integration.py) and the quickstart
notebook."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_plugin.cli.main import main

from .conftest import UNSEEN_SIX, run_notebook_cells, write_config

REPO = Path(__file__).resolve().parents[1]
METRIC_KEYS = {"final_value", "cagr", "sharpe", "sortino", "max_drawdown", "calmar", "turnover"}
FORECAST_KEYS = {"hit_rate", "ic", "rank_ic", "n_predictions", "model_usage"}
SMALL = {
    "model": {
        "window": 10,
        "hidden_size": 8,
        "epochs": 6,
        "patience": 3,
        "lookback_years": 3.0,
        "min_samples": 200,
    },
    "lstm": {"force_retrain_days": 180},
    "lstm_service": {
        "retraining": {"force_retrain_age_days": 180},
        "universal": {"retrain_days": 365},
        "enable_monitoring": False,
    },
    "portfolio": {"num_symbols": 3, "max_weight": 0.4},
    "plugins": {"load_entry_points": False},
}


@pytest.fixture(scope="module")
def small_config(tmp_path_factory) -> Path:
    return write_config(tmp_path_factory.mktemp("config") / "small.json", SMALL)


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("main_job_models")


def backtest(capsys, *args: str) -> tuple[int, dict, str]:
    code = main(["backtest", *args])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 and "--json" in args else {}), captured.err


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow
def test_backtest_on_unseen_csv_files(capsys, tmp_path, unseen_six_dir, small_config, models):
    out = tmp_path / "report"
    code, result, err = backtest(
        capsys,
        "--data",
        str(unseen_six_dir),
        "--symbols",
        ",".join(UNSEEN_SIX),
        "--start",
        "2008-01-01",
        "--end",
        "2014-12-31",
        "--out",
        str(out),
        "--json",
        "--config",
        str(small_config),
        "--models",
        str(models),
    )
    assert code == 0, err
    for name in ("lstm", "technical", "buy_hold"):
        assert set(result[name]) >= METRIC_KEYS and result[name]["final_value"] > 0
    assert set(result["forecast"]) >= FORECAST_KEYS and result["forecast"]["n_predictions"] > 0
    assert set(result["forecast"]["model_usage"]) == {"specific", "universal", "none"}
    assert result["settings"]["start"] == "2008-01-02" and result["settings"]["end"] == "2014-12-31"
    assert result["buy_hold"]["turnover"] < result["technical"]["turnover"]
    assert {p.name for p in out.iterdir()} >= {
        "predictions.csv",
        "outcomes.csv",
        "orders.csv",
        "equity.csv",
        "summary.json",
        "equity.png",
        "ic.png",
        "calibration.png",
        "report.html",
    }
    predictions = read_rows(out / "predictions.csv")
    assert {
        "date",
        "symbol",
        "model_type",
        "model_version",
        "predicted_direction",
        "confidence",
        "price_change_pct",
    } <= set(predictions[0])
    assert len(predictions) == len(UNSEEN_SIX) * result["forecast"]["rebalances"]
    orders = read_rows(out / "orders.csv")
    assert {"date", "symbol", "size", "price", "value", "strategy"} <= set(orders[0])
    assert {o["strategy"] for o in orders} == {"lstm", "technical", "buy_hold"}
    equity = pd.read_csv(out / "equity.csv")
    assert (
        list(equity.columns) == ["date", "lstm", "technical", "buy_hold"]
        and equity["date"].iloc[0] == "2008-01-02"
    )
    assert equity["lstm"].iloc[-1] == pytest.approx(result["lstm"]["final_value"])
    for picture in ("equity.png", "ic.png", "calibration.png"):
        assert (out / picture).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((out / "summary.json").read_text())
    assert summary == result  # the object --json prints, ``report`` included
    assert "equity.png" in (out / "report.html").read_text()
    for name in ("predictions.csv", "orders.csv", "equity.csv", "summary.json"):
        assert f'<a href="{name}">{name}</a>' in (out / "report.html").read_text()
    training = result["forecast"]
    assert training["promoted"] + training["shelved"] >= training["trained"] > 0
    assert sum(training["shelved_rules"].values()) == training["shelved"]
    age = training["model_age"]
    assert age["forecasts"] > 0 and 0 <= age["over_6_months"] <= 1 and age["median_days"] >= 0
    for name in ("lstm", "technical", "buy_hold"):  # every estimate carries its 95 % interval
        assert result[name]["sharpe_low"] <= result[name]["sharpe"] <= result[name]["sharpe_high"]
    forecast, difference = result["forecast"], result["lstm_minus_technical_sharpe"]
    assert forecast["rank_ic_low"] <= forecast["rank_ic"] <= forecast["rank_ic_high"]
    assert forecast["ic_low"] <= forecast["ic"] <= forecast["ic_high"] and forecast["ic_t"] is not None
    assert difference["low"] <= difference["value"] <= difference["high"]
    assert difference["value"] == pytest.approx(result["lstm"]["sharpe"] - result["technical"]["sharpe"])
    html = (out / "report.html").read_text()
    assert "95% interval" in html and "lstm - technical Sharpe" in html
    check_evidence(result, out)


def check_evidence(result: dict, out: Path) -> None:
    """The forecast section: the LSTM and each baseline at both horizons, daily and on rebalance days."""
    evidence = result["forecast"]["evidence"]
    assert evidence["horizons"]["model"] == 5 and 15 <= evidence["horizons"]["holding"] <= 23  # monthly
    assert list(evidence["forecasters"]) == ["lstm", "momentum_12_1", "reversal_1m", "ridge"]
    assert list(evidence["differences"]) == ["momentum_12_1", "reversal_1m", "ridge"]
    for figures in evidence["forecasters"].values():
        for label in ("model", "holding"):
            daily, rebalance = figures[label]["daily"], figures[label]["rebalance"]
            assert daily["low"] <= daily["value"] <= daily["high"] and daily["n"] > 5 * rebalance["n"] > 0
    lstm = evidence["forecasters"]["lstm"]["model"]
    assert lstm["rebalance"]["value"] == pytest.approx(result["forecast"]["rank_ic"])  # the same forecasts
    assert lstm["rebalance"]["low"] == pytest.approx(result["forecast"]["rank_ic_low"])
    assert 0 < lstm["base_rate"] <= 1 and 0 < lstm["hit_rate"] <= 1
    daily = pd.read_csv(out / "forecasts_daily.csv")
    outcomes = pd.read_csv(out / "outcomes_daily.csv")
    assert list(daily.columns) == [
        "date", "symbol", "model_type", "model_version", "lstm", "momentum_12_1", "reversal_1m", "ridge",
    ]  # fmt: skip
    holding = evidence["horizons"]["holding"]
    assert list(outcomes.columns) == ["date", "symbol", "realized_5", f"realized_{holding}"]
    assert len(daily) == len(outcomes) > 5 * len(read_rows(out / "predictions.csv"))
    rebalance_rows = daily.merge(pd.read_csv(out / "predictions.csv"), on=["date", "symbol"])
    assert np.allclose(rebalance_rows["lstm"], rebalance_rows["expected_log_return"])


@pytest.mark.slow
def test_the_evidence_only_watches(capsys, tmp_path, unseen_six_dir, small_config, models):
    """Without daily evaluation and baselines (and so, cheaper) the trades are the same, to the bit."""
    reports = {}
    for name, extra in (("with", []), ("without", ["--baselines", "none"])):
        config = small_config
        if name == "without":
            config = write_config(tmp_path / "off.json", {**SMALL, "backtest": {"daily_evaluation": False}})
        common = ["--data", str(unseen_six_dir), "--start", "2008-01-01", "--end", "2010-12-31"]
        code, result, err = backtest(
            capsys, *common, "--out", str(tmp_path / name), "--config", str(config), "--models", str(models),
            "--json", *extra,
        )  # fmt: skip
        assert code == 0, err
        reports[name] = result
    assert reports["without"]["forecast"]["evidence"] is None
    assert reports["without"]["settings"]["baselines"] == []
    for file in ("predictions.csv", "orders.csv", "equity.csv"):
        assert (tmp_path / "with" / file).read_bytes() == (tmp_path / "without" / file).read_bytes()
    assert len(read_rows(tmp_path / "without" / "forecasts_daily.csv")) == 0


def perturbed_copy(folder: Path, target: Path, after: str) -> Path:
    """The same CSV files with every row after ``after`` replaced by noise."""
    target.mkdir()
    rng = np.random.default_rng(11)
    for file in folder.glob("*.csv"):
        frame = pd.read_csv(file)
        later = frame["Date"] > after
        noise = np.exp(np.cumsum(rng.normal(0, 0.03, later.sum())))
        for column in ("Open", "High", "Low", "Close", "Adj Close"):
            frame.loc[later, column] = (frame.loc[later, column].iloc[0] * noise).round(4)
        frame.loc[later, "High"] = frame.loc[later, ["Open", "High", "Low", "Close"]].max(axis=1)
        frame.loc[later, "Low"] = frame.loc[later, ["Open", "High", "Low", "Close"]].min(axis=1)
        frame.to_csv(target / file.name, index=False)
    return target


@pytest.mark.slow
def test_prices_after_a_date_change_no_row_before_it(capsys, tmp_path, unseen_six_dir, small_config, models):
    T = "2009-06-01"
    noisy = perturbed_copy(unseen_six_dir, tmp_path / "noisy", T)
    reports = {}
    for name, folder in (("honest", unseen_six_dir), ("noisy", noisy)):
        code, _, err = backtest(
            capsys,
            "--data",
            str(folder),
            "--start",
            "2008-01-01",
            "--end",
            "2010-12-31",
            "--out",
            str(tmp_path / f"{name}_report"),
            "--config",
            str(small_config),
            "--models",
            str(models),
            "-q",
        )
        assert code == 0, err
        reports[name] = tmp_path / f"{name}_report"
    for file in ("predictions.csv", "orders.csv", "equity.csv", "forecasts_daily.csv"):
        honest, noisy_rows = (read_rows(reports[n] / file) for n in ("honest", "noisy"))
        before = [r for r in honest if r["date"] <= T]
        assert before and before == [r for r in noisy_rows if r["date"] <= T], file
        assert [r for r in honest if r["date"] > T] != [r for r in noisy_rows if r["date"] > T], file


@pytest.mark.slow
def test_an_excess_target_at_the_holding_horizon_with_an_ensemble_and_an_earned_weight_reads_no_future(
    capsys, tmp_path, unseen_six_dir
):
    """The new settings through the whole job, each run training into its own empty registry."""
    T = "2009-03-02"
    ensemble = [{"window": 10, "hidden_size": 8}, {"cell": "gru", "window": 5, "hidden_size": 6}]
    new = {"target": "excess", "horizon": "rebalance", "ensemble": ensemble, "ensemble_weights": "ic"}
    sections = {**SMALL, "model": {**SMALL["model"], **new}}
    config = write_config(
        tmp_path / "excess.json", {**sections, "lstm": {**SMALL["lstm"], "weight_mode": "adaptive"}}
    )
    noisy = perturbed_copy(unseen_six_dir, tmp_path / "noisy", T)
    for name, folder in (("honest", unseen_six_dir), ("noisy", noisy)):
        common = ["--data", str(folder), "--start", "2008-01-01", "--end", "2009-12-31", "-q"]
        places = ["--out", str(tmp_path / f"{name}_report"), "--models", str(tmp_path / f"{name}_models")]
        code, _, err = backtest(capsys, *common, *places, "--config", str(config))
        assert code == 0, err
    summary = json.loads((tmp_path / "honest_report" / "summary.json").read_text())
    assert summary["forecast"]["evidence"]["horizons"] == {"model": 21, "holding": 21}
    assert summary["forecast"]["weight"]["mode"] == "adaptive" and summary["forecast"]["n_predictions"] > 0
    for file in ("predictions.csv", "forecasts_daily.csv", "orders.csv", "equity.csv"):
        honest, noisy_rows = (read_rows(tmp_path / f"{n}_report" / file) for n in ("honest", "noisy"))
        before = [r for r in honest if r["date"] <= T]
        assert before and before == [r for r in noisy_rows if r["date"] <= T], file


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=600
    )


@pytest.mark.slow
def test_bad_inputs_exit_2_with_one_line(tmp_path, unseen_six_dir, small_config):
    broken = tmp_path / "broken"
    shutil.copytree(unseen_six_dir, broken)
    lines = (broken / "AMD.csv").read_text().splitlines()
    lines[100] = lines[100].split(",")[0] + ",x,1,1,1,1,100"
    (broken / "AMD.csv").write_text("\n".join(lines) + "\n")
    typo = tmp_path / "typo.json"
    typo.write_text(json.dumps({"lstm": {"wieght": 0.3}}))
    cases = {
        "unknown symbol": (["--data", str(unseen_six_dir), "--symbols", "ABT,ZZZZ"], "unknown symbol ZZZZ"),
        "end before start": (
            ["--data", str(unseen_six_dir), "--start", "2010-01-01", "--end", "2009-01-01"],
            "--end › must be after --start",
        ),
        "broken CSV": (
            ["--data", str(broken), "--start", "2008-01-01", "--end", "2008-12-31"],
            "AMD.csv › line 101",
        ),
        "config typo": (["--config", str(typo)], "lstm.wieght › unknown key (did you mean 'weight'?)"),
        "bad date": (["--start", "last tuesday"], "--start › must be a date"),
    }
    for name, (args, message) in cases.items():
        done = run_cli("-m", "lstm_plugin", "backtest", *args, "--out", str(tmp_path / "never"), cwd=tmp_path)
        assert done.returncode == 2, (name, done.stderr)
        assert (
            done.stderr.count("\n") == 1
            and done.stderr.startswith("lstm-plugin: error: ")
            and message in done.stderr
        ), (name, done.stderr)
        assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (tmp_path / "never").exists()


@pytest.mark.slow
def test_the_original_entry_point_runs_the_same_job(tmp_path, unseen_six_dir, small_config, models):
    common = [
        "--data",
        str(unseen_six_dir),
        "--symbols",
        "ABT,AMD,DIS",
        "--start",
        "2009-01-02",
        "--end",
        "2009-12-31",
        "--models",
        str(models),
        "--json",
        "-q",
    ]
    with_lstm = run_cli(
        str(REPO / "main_lstm_integration.py"),
        "--lstm-config",
        str(small_config),
        *common,
        "--out",
        "a",
        cwd=tmp_path,
    )
    assert with_lstm.returncode == 0, with_lstm.stderr
    result = json.loads(with_lstm.stdout)
    assert result["lstm"]["final_value"] > 0 and result["forecast"]["n_predictions"] > 0
    original = run_cli(str(REPO / "main_lstm_integration.py"), *common, "--out", "b", cwd=tmp_path)
    assert original.returncode == 0, original.stderr
    technical = json.loads(original.stdout)
    assert technical["lstm"] is None and technical["forecast"] is None
    assert technical["buy_hold"] == result["buy_hold"]


@pytest.mark.slow
def test_the_quickstart_notebook_runs_top_to_bottom(tmp_path):
    cells = run_notebook_cells("quickstart.ipynb", tmp_path)
    outputs = [output for cell in cells for output in cell]
    text = "".join(o.get("text", "") for o in outputs)
    assert "final value" in text and "KO:" in text and "right sign" in text
    images = [i for i, cell in enumerate(cells) if any("image/png" in o.get("data", {}) for o in cell)]
    # the equity picture (report written before it) and the last cell's chart: writing the report must not
    # switch the notebook away from inline plotting
    assert len(images) == 2 and images[-1] == len(cells) - 1, images
