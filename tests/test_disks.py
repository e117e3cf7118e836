"""A full or read-only disk is ordinary: one line, exit 2, and the state or registry is left as the last
whole step left it — it resumes elsewhere to the very book an uninterrupted run reaches."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lstm_plugin import ModelRegistry

from .conftest import TINY
from .disks import fill, read_only, small_disk

PAPER = {
    "model": {"epochs": 2, "hidden_size": 8, "min_samples": 100},
    "plugins": {"load_entry_points": False},
}


def cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lstm_plugin", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def paper(state: Path, until: str, cwd: Path) -> subprocess.CompletedProcess:
    return cli(
        "paper",
        "--replay-from",
        "2020-01-02",
        "--until",
        until,
        "--symbols",
        "AAPL,KO,MSFT",
        "--state",
        str(state),
        "--models",
        str(cwd / "M"),
        "--config",
        "paper.json",
        "--backend",
        "sync",
        "-q",
        cwd=cwd,
    )


def one_line_exit_2(proc: subprocess.CompletedProcess, *words: str) -> None:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("lstm-plugin: error: ") and all(w in lines[0] for w in words), lines[0]


def book(state: Path, cwd: Path) -> dict:
    status = json.loads(cli("paper", "status", "--state", str(state), "--json", cwd=cwd).stdout)
    return {k: status[k] for k in ("days", "cash", "value", "positions", "orders", "rebalances")}


@pytest.mark.slow
def test_a_disk_that_fills_mid_run_stops_it_in_one_line_and_the_state_resumes_elsewhere(tmp_path):
    (tmp_path / "paper.json").write_text(json.dumps(PAPER))
    assert paper(tmp_path / "reference", "2020-04-30", tmp_path).returncode == 0
    assert paper(tmp_path / "half", "2020-02-14", tmp_path).returncode == 0
    with small_disk(8 * 1024) as disk:
        shutil.copytree(tmp_path / "half", disk / "S")
        fill(disk, leave_kib=96)
        proc = paper(disk / "S", "2020-04-30", tmp_path)
        one_line_exit_2(proc, str(disk / "S"), "the state is intact")
        assert "disk is full" in proc.stderr or "No space left" in proc.stderr
        shutil.copytree(disk / "S", tmp_path / "moved")
    assert paper(tmp_path / "moved", "2020-04-30", tmp_path).returncode == 0
    assert book(tmp_path / "moved", tmp_path) == book(tmp_path / "reference", tmp_path)


@pytest.mark.slow
def test_a_fresh_run_on_a_full_disk_and_a_run_on_a_read_only_one_are_one_line(tmp_path):
    (tmp_path / "paper.json").write_text(json.dumps(PAPER))
    with small_disk(1024) as disk:
        proc = paper(disk / "S", "2020-01-31", tmp_path)
        one_line_exit_2(proc, "the state is intact")
        assert "disk is full" in proc.stderr or "No space left" in proc.stderr
    assert paper(tmp_path / "S", "2020-01-31", tmp_path).returncode == 0
    before = book(tmp_path / "S", tmp_path)
    with small_disk(16 * 1024) as disk:
        shutil.copytree(tmp_path / "S", disk / "S")
        read_only(disk)
        one_line_exit_2(paper(disk / "S", "2020-02-28", tmp_path), "Read-only file system")
        assert book(disk / "S", tmp_path) == before  # status still reads it


def test_a_read_only_registry_refuses_train_and_promote_in_one_line_before_any_work(trained, tmp_path):
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    with small_disk(4 * 1024) as disk:
        shutil.copytree(trained["root"], disk / "M")
        read_only(disk)
        models = str(disk / "M")
        one_line_exit_2(
            cli(
                "train",
                "AAPL",
                "--as-of",
                "2016-06-30",
                "--models",
                models,
                "--config",
                "tiny.json",
                cwd=tmp_path,
            ),
            "cannot write models here: Read-only file system",
        )
        one_line_exit_2(
            cli("promote", "AAPL", "--version", "1", "--discard", "--models", models, cwd=tmp_path),
            "Read-only file system",
        )
        assert ModelRegistry(disk / "M").resolve("specific", "AAPL").version == 1
