"""Same command, same result: a backtest into a registry that other runs already used — other symbols,
other spans, other configs, an explicit training — gives the bytes it gives into an empty registry
(docs/models.md, *Shared registries*)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lstm_plugin.backtrader.report import REPORT_FILES
from lstm_plugin.cli.main import main

from .conftest import write_config
from .test_main_job import SMALL

pytestmark = pytest.mark.slow

SYMBOLS = "AAPL,KO,XOM,MSFT"
SPAN = ("--start", "2016-01-04", "--end", "2016-12-30")
#: report files that must not change by a byte
SAME_BYTES = [name for name in REPORT_FILES if name.endswith(".csv")]


def backtest(capsys, models: Path, out: Path, config: Path, *args: str) -> dict:
    code = main(
        [
            "backtest",
            "--json",
            "--backend",
            "sync",
            "--config",
            str(config),
            "--models",
            str(models),
            "--out",
            str(out),
            *args,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def comparable(summary: dict) -> dict:
    """The summary without what may differ: timings, the registry's path, and whether a training was
    fitted here or found registered."""
    summary = json.loads(json.dumps(summary))
    summary.pop("seconds"), summary.pop("report", None), summary["settings"].pop("registry")
    for key in ("trained", "reused"):
        summary["forecast"].pop(key)
    return summary


def test_earlier_runs_in_the_registry_change_nothing(capsys, tmp_path):
    config = write_config(tmp_path / "small.json", SMALL)
    other = write_config(tmp_path / "other.json", dict(SMALL, model=dict(SMALL["model"], hidden_size=12)))
    empty = backtest(capsys, tmp_path / "empty", tmp_path / "a", config, "--symbols", SYMBOLS, *SPAN)

    shared = tmp_path / "shared"
    backtest(capsys, shared, tmp_path / "r1", config, "--symbols", "AAPL,KO", *SPAN)  # other symbols
    backtest(
        capsys,
        shared,
        tmp_path / "r2",
        config,
        "--symbols",
        SYMBOLS,
        "--start",
        "2015-07-01",
        "--end",
        "2016-08-31",
    )  # another span
    backtest(capsys, shared, tmp_path / "r3", other, "--symbols", SYMBOLS, *SPAN)  # another config
    assert (
        main(
            [
                "train",
                "XOM",
                "--universal",
                "--as-of",
                "2016-02-01",
                "--config",
                str(config),
                "--models",
                str(shared),
                "-q",
                "--json",
            ]
        )
        == 0
    )  # an explicit training
    capsys.readouterr()
    again = backtest(capsys, shared, tmp_path / "b", config, "--symbols", SYMBOLS, *SPAN)

    assert again["forecast"]["reused"] > 0  # the shared registry held some of this run's trainings
    assert comparable(again) == comparable(empty)
    for name in SAME_BYTES:
        assert (tmp_path / "b" / name).read_bytes() == (tmp_path / "a" / name).read_bytes(), name

    rerun = backtest(capsys, shared, tmp_path / "c", config, "--symbols", SYMBOLS, *SPAN)
    assert rerun["forecast"]["trained"] == 0  # a warm rerun fits nothing
    assert comparable(rerun) == comparable(empty)
