"""Crash and resume: a paper run SIGKILLed anywhere ends, once restarted, with the journal of an uninterrupted
run."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lstm_plugin.backtrader.live import Journal

from .conftest import TINY, write_config

CHILD = Path(__file__).with_name("paper_child.py")
ARGS = [
    "paper",
    "--replay-from",
    "2020-01-02",
    "--until",
    "2020-03-31",
    "--speed",
    "0",
    "--symbols",
    "AAPL,MSFT,KO",
    "--backend",
    "sync",
    "--quiet",
]


def run_paper(point: str, state: Path, models: Path, config: Path) -> subprocess.CompletedProcess:
    command = [
        sys.executable,
        str(CHILD),
        point,
        *ARGS,
        "--state",
        str(state),
        "--models",
        str(models),
        "--config",
        str(config),
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def book(state: Path) -> dict[str, Any]:
    """The journal without what differs between processes (run numbers, training events)."""
    journal = Journal(state, readonly=True)
    run_id = journal.meta()["run_id"]

    def local(row: dict[str, Any]) -> dict[str, Any]:  # client ids start with the state's own random run id
        return dict(row, client_id=row["client_id"].removeprefix(f"{run_id}:"))

    try:
        return {
            "orders": [
                local(
                    {
                        k: o[k]
                        for k in ("client_id", "date", "symbol", "size", "target", "status", "status_date")
                    }
                )
                for o in journal.rows("orders")
            ],
            "fills": [local(f) for f in journal.rows("fills")],
            "days": [
                {k: d[k] for k in ("date", "cash", "value", "rebalanced")} for d in journal.rows("days")
            ],
            "positions": journal.rows("positions"),
            "decisions": [
                {k: d[k] for k in ("date", "targets", "forecasts", "models")}
                for d in journal.rows("decisions")
            ],
            "exits": [local(e) for e in journal.rows("exits")],
            "exit_watch": journal.rows("exit_watch"),
            "runs": len(journal.rows("runs")),
        }
    finally:
        journal.close()


#: forecast exits on, so every kill also lands between the exit watch's bars (docs/exits-and-risk.md)
EXITS = {"lstm": {"exits": {"enabled": True, "min_z": -0.5, "bars": 2}}}


@pytest.fixture(scope="module")
def config_file(tmp_path_factory) -> Path:
    return write_config(tmp_path_factory.mktemp("config") / "paper.json", {**TINY, **EXITS})


@pytest.fixture(scope="module")
def reference(tmp_path_factory, config_file) -> tuple[dict[str, Any], Path]:
    """An uninterrupted run from a cold registry: its journal, and the registry it leaves (warm)."""
    root = tmp_path_factory.mktemp("reference")
    done = run_paper("none:0", root / "state", root / "models", config_file)
    assert done.returncode == 0, done.stderr
    journal = book(root / "state")
    assert journal["exits"] and journal["exit_watch"]  # the kills below land among exits too
    return journal, root / "models"


def same_journal(resumed: dict[str, Any], reference: dict[str, Any]) -> None:
    for table in ("orders", "fills", "days", "positions", "decisions", "exits", "exit_watch"):
        assert resumed[table] == reference[table], table


@pytest.mark.slow
@pytest.mark.parametrize("point", ["commit:1", "order:1", "order:4", "commit:30", "commit:61"])
def test_a_run_killed_and_restarted_ends_as_an_uninterrupted_one(point, reference, config_file, tmp_path):
    expected, warm = reference
    models = tmp_path / "models"
    shutil.copytree(warm, models)
    killed = run_paper(point, tmp_path / "state", models, config_file)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert book(tmp_path / "state")["days"] != expected["days"]  # it did stop short
    resumed = run_paper("none:0", tmp_path / "state", models, config_file)
    assert resumed.returncode == 0, resumed.stderr
    same_journal(book(tmp_path / "state"), expected)


@pytest.mark.slow
def test_two_restarts_killed_on_the_same_bar_never_order_twice(reference, config_file, tmp_path):
    expected, warm = reference
    models = tmp_path / "models"
    shutil.copytree(warm, models)
    state = tmp_path / "state"
    # the first rebalance sends 3 orders: the 5th is the second rebalance's (2020-02-03), and the
    # restarted run redoes that bar first, so its 2nd order dies on the same bar again
    for point in ("order:5", "order:2"):
        assert run_paper(point, state, models, config_file).returncode == -signal.SIGKILL
        assert [d["date"] for d in book(state)["decisions"]] == ["2020-01-02"]
    assert run_paper("none:0", state, models, config_file).returncode == 0
    after = book(state)
    same_journal(after, expected)
    ids = [o["client_id"] for o in after["orders"]]
    assert len(ids) == len(set(ids)) == len(expected["orders"])


def test_a_run_killed_in_a_model_publish_retrains_and_ends_the_same(reference, config_file, tmp_path):
    expected, _ = reference
    models, state = tmp_path / "models", tmp_path / "state"
    killed = run_paper("publish:2", state, models, config_file)
    assert killed.returncode == -signal.SIGKILL
    orphans = [p for p in models.rglob("*.onnx") if not p.with_suffix(".json").exists()]
    assert orphans, "the kill should leave a model file without its metadata"
    assert run_paper("none:0", state, models, config_file).returncode == 0
    same_journal(book(state), expected)


@pytest.mark.slow
def test_a_finished_replay_run_again_changes_nothing(reference, config_file, tmp_path):
    expected, warm = reference
    models, state = tmp_path / "models", tmp_path / "state"
    shutil.copytree(warm, models)
    assert run_paper("none:0", state, models, config_file).returncode == 0
    before = book(state)
    again = run_paper("none:0", state, models, config_file)
    assert again.returncode == 0
    assert book(state) == before
    same_journal(before, expected)
