"""Hostile-input builders for report folders, backtest arguments and status (``tests/test_hostile.py``)."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from lstm_plugin import ModelRegistry

from .hostile_builders import (
    MODELS,
    Case,
    aapl_lines,
    damage_newest,
    predict_with_data,
)


def backtest(out: str = "out") -> list[str]:
    return [
        "backtest",
        "--no-lstm",
        "--symbols",
        "AAPL,MSFT",
        "--start",
        "2020-01-02",
        "--end",
        "2020-02-28",
        "--out",
        out,
        "-q",
    ]


def report_case(name: str, setup: Callable[[Path], str], message: str, **options) -> Case:
    def prepare(folder: Path) -> list[str]:
        return backtest(setup(folder))

    return Case(f"report-{name}", prepare, 2, message, **options)


def out_is_file(folder: Path) -> str:
    (folder / "out").write_text("a file")
    return "out"


def out_holds_foreign(folder: Path) -> str:
    (folder / "out").mkdir()
    (folder / "out" / "notes.txt").write_text("mine")
    return "out"


def out_is_link(folder: Path) -> str:
    (folder / "real").mkdir()
    os.symlink(folder / "real", folder / "out")
    return "out"


def link_inside(name: str) -> Callable[[Path], str]:
    def setup(folder: Path) -> str:
        (folder / "precious.txt").write_text("precious")
        (folder / "out").mkdir()
        os.symlink(folder / "precious.txt", folder / "out" / name)
        return "out"

    return setup


def ten_rows_train(folder: Path) -> list[str]:
    """The default model (window 30) on a 10-row file: too little data, said as such."""
    (folder / "default.json").write_text("{}")
    predict_with_data({"AAPL.csv": aapl_lines(10)})(folder)
    return [
        "train",
        "AAPL",
        "--as-of",
        "2000-01-01",
        "--backend",
        "sync",
        "--config",
        "default.json",
        "--data",
        "data",
    ]


def status_after_damage(folder: Path) -> list[str]:
    damage_newest(lambda m, p: dict(m, trained_at="yesterday-ish"))(folder)
    return ["status", "AAPL", "MSFT", "--as-of", "2016-07-05", "--json"]


def status_from_v1(proc: subprocess.CompletedProcess, folder: Path) -> None:
    result = json.loads(proc.stdout)
    assert result["AAPL"]["model_version"] == 1 and result["MSFT"]["model_version"] == 1


def lstm_backtest_into_file(folder: Path) -> list[str]:
    """The LSTM run would train models within seconds: none may be trained before --out is refused."""
    out_is_file(folder)
    return [arg for arg in backtest() if arg != "--no-lstm"]


def nothing_trained(proc: subprocess.CompletedProcess, folder: Path) -> None:
    registry = ModelRegistry(folder / "M")
    assert [[r.version for r in registry.records(*key)] for key in MODELS] == [[1], [1], [1]]


def plain(args: list[str]) -> Callable[[Path], list[str]]:
    return lambda folder: list(args)


def success_json(proc: subprocess.CompletedProcess, folder: Path) -> None:
    result = json.loads(proc.stdout)
    assert result["AAPL"]["status"] == "success", result
