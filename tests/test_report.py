"""The report folder: strict JSON, swapped in whole (a kill never mixes two reports), safe beside other
writers."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_plugin.backtrader.pictures import MIN_BUCKET, drawn_buckets
from lstm_plugin.backtrader.report import (
    MANIFEST,
    REPORT_FILES,
    ReportError,
    check_report_folder,
    comparison_table,
    write_report,
)

REPO = Path(__file__).resolve().parents[1]

RESULT_CODE = """
import numpy as np, pandas as pd
from lstm_plugin.backtrader.backtest import BacktestResult

def make_result(seed, nan=False):
    days = pd.bdate_range("2020-01-01", periods=60)
    values = 100_000 * np.cumprod(1 + np.random.default_rng(seed).normal(0, 0.01, (60, 2)), axis=0)
    equity = pd.DataFrame(values, index=days, columns=["technical", "buy_hold"])
    metrics = {
        name: {
            "final_value": float(equity[name].iloc[-1]), "total_return": 0.01,
            "cagr": float("nan") if nan else 0.02, "volatility": 0.1, "sharpe": float("inf") if nan else 0.5,
            "sortino": 0.6, "max_drawdown": 0.05,
            "calmar": float("nan"), "turnover": 1.0,
        }
        for name in equity
    }
    settings = {
        "symbols": ["AAPL", "MSFT"], "start": "2020-01-01", "end": "2020-03-24", "bars": 60,
        "rebalance": "monthly", "cash": 100_000.0, "commission": 0.001, "slippage": 0.0005, "seed": seed,
    }
    return BacktestResult(settings, {"lstm": None, **metrics}, equity, [], None, {"technical": 1.0})
"""
namespace: dict = {}
exec(RESULT_CODE, namespace)
make_result = namespace["make_result"]


def strict(text: str) -> object:
    def refuse(constant: str) -> None:
        raise ValueError(f"not JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def manifest_holds(folder: Path) -> dict[str, str]:
    """The manifest's digests, after checking that every listed file has them and nothing else is there."""
    digests = strict((folder / MANIFEST).read_text())["files"]
    assert sorted(digests) == sorted(REPORT_FILES)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*REPORT_FILES, MANIFEST])
    for name, digest in digests.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name
    return digests


@pytest.mark.slow
def test_summary_is_strict_json_even_with_nan_metrics(tmp_path):
    folder = write_report(make_result(1, nan=True), tmp_path / "report")
    summary = strict((folder / "summary.json").read_text())
    assert summary["technical"]["cagr"] is None and summary["technical"]["sharpe"] is None
    assert summary["technical"]["volatility"] == 0.1
    manifest_holds(folder)


def test_summary_json_is_the_json_object_and_the_page_links_every_data_file(tmp_path):
    folder = write_report(make_result(1), tmp_path / "report")
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["report"] == str(tmp_path / "report")  # as ``--json`` prints it
    page = (folder / "report.html").read_text()
    for name in REPORT_FILES:
        if name.endswith((".csv", ".json")):
            assert f'<a href="{name}">{name}</a>' in page


def test_model_age_is_how_old_each_answering_model_was_at_its_bar():
    from lstm_plugin.backtrader.analyzer import STALE_DAYS, model_age

    records = [
        {"date": "2020-07-01", "trained_at": "2020-01-01T00:00:00", "status": "success"},  # 182 days
        {"date": "2020-07-02", "trained_at": "2020-01-01T00:00:00", "status": "success"},  # 183 days
        {"date": "2020-07-02", "trained_at": None, "status": "not_available"},
    ]
    assert STALE_DAYS == 182
    assert model_age(records) == {"median_days": 182.5, "over_6_months": 0.5, "forecasts": 2}
    assert model_age(records[2:]) == {"median_days": None, "over_6_months": None, "forecasts": 0}


def test_calibration_draws_only_buckets_with_enough_forecasts():
    rows = [
        {"bucket": b, "n": n}
        for b, n in (("0.3", 1), ("0.4", MIN_BUCKET - 1), ("0.5", MIN_BUCKET), ("0.6", 90))
    ]
    assert [row["bucket"] for row in drawn_buckets(rows)] == ["0.5", "0.6"]


@pytest.mark.slow
def test_a_second_report_replaces_the_first_whole(tmp_path):
    folder = tmp_path / "report"
    first = manifest_holds(write_report(make_result(1), folder))
    second = manifest_holds(write_report(make_result(2), folder))
    assert first["equity.csv"] != second["equity.csv"]
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no staging or retired folder left


KILLER = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    {result_code}
    from lstm_plugin.backtrader import report
    written = []
    real = Path.write_bytes
    def dying(self, data):
        real(self, data)
        written.append(self.name)
        if len(written) == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)
    Path.write_bytes = dying
    report.write_report(make_result(2), sys.argv[1])
    """
)


@pytest.mark.slow
@pytest.mark.parametrize("files_written", [1, 3, 6])
def test_a_run_killed_while_writing_leaves_the_old_report_whole(tmp_path, files_written):
    folder = tmp_path / "report"
    before = manifest_holds(write_report(make_result(1), folder))
    script = KILLER.format(result_code=textwrap.indent(RESULT_CODE, "").strip())
    proc = subprocess.run(
        [sys.executable, "-c", script, str(folder), str(files_written)], capture_output=True, cwd=REPO
    )
    assert proc.returncode == -9, proc.stderr.decode()
    assert manifest_holds(folder) == before  # the old report, untouched: nothing of the new one
    assert any(p.name.startswith(".report.") for p in tmp_path.iterdir())  # the dead run's staging folder
    after = manifest_holds(write_report(make_result(3), folder))  # the next run cleans it up
    assert after != before and [p.name for p in tmp_path.iterdir()] == ["report"]


@pytest.mark.slow
def test_two_writers_of_one_folder_never_fail_or_mix(tmp_path):
    folder = tmp_path / "report"
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        try:
            for _ in range(25):
                write_report(make_result(seed), folder)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(seed,)) for seed in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    manifest_holds(folder)
    assert strict((folder / "summary.json").read_text())["settings"]["seed"] in (1, 2)
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


@pytest.mark.parametrize(
    "setup, message",
    [
        (lambda d: (d / "out").write_text("x"), r"out is a file, not a folder"),
        (
            lambda d: ((d / "out").mkdir(), (d / "out" / "mine.txt").write_text("x")),
            r"out holds mine\.txt, which is not part of a report",
        ),
        (lambda d: ((d / "real").mkdir(), (d / "out").symlink_to(d / "real")), r"out is a symbolic link"),
        (
            lambda d: ((d / "out").mkdir(), (d / "out" / "summary.json").symlink_to(d / "x")),
            r"out holds summary\.json",
        ),
        (lambda d: ((d / "out").mkdir(), (d / "out" / "equity.png").mkdir()), r"out holds equity\.png"),
    ],
)
def test_unsafe_folders_are_refused_before_any_work(tmp_path, monkeypatch, setup, message):
    monkeypatch.chdir(tmp_path)
    setup(tmp_path)
    with pytest.raises(ReportError, match=message):
        check_report_folder("out")


def test_a_folder_of_report_files_or_a_new_one_is_accepted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert check_report_folder("new/deeper") == Path("new/deeper")
    write_report(make_result(1), "old")
    assert check_report_folder("old") == Path("old")
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # the probe is gone


def test_the_folder_name_is_kept_as_given(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert write_report(make_result(1), "lstm_report") == Path("lstm_report")
    assert np.isfinite(pd.read_csv(tmp_path / "lstm_report" / "equity.csv")["technical"]).all()


def test_a_universe_of_survivors_is_called_out_and_one_with_a_dropout_is_not():
    from lstm_plugin.backtrader.backtest import survivorship_caveat

    days = pd.bdate_range("2020-01-01", periods=10)
    full = pd.DataFrame({"close": range(10)}, index=days)
    caveat = survivorship_caveat({"A": full, "B": full}, days)
    assert len(caveat) == 1 and "survivorship: all 2 symbols still trade on 2020-01-14" in caveat[0]
    assert survivorship_caveat({"A": full, "B": full.iloc[:6]}, days) == []
    summary = make_result(1).summary()
    summary["caveats"] = caveat
    assert comparison_table(summary).splitlines()[-1] == f"caveat: {caveat[0]}"
