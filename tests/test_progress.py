"""Long work says where it is: a walk-forward in a user's cerebro shows a bar over its rebalances on stderr
(off with ``progress=False``), and a training service that waits for running trainings when its ``with``
block ends says what it waits for, instead of sitting silent."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from lstm_plugin import ManualClock, ModelRegistry
from lstm_plugin.training.service import TrainingService

from .backtrader_runs import csv_dir, run  # noqa: F401 - csv_dir is a fixture
from .conftest import tiny_config
from .sample_plugins import SleepyFeatures


@pytest.mark.slow
def test_a_walk_forward_shows_its_rebalances_on_stderr_unless_asked_not_to(csv_dir, tmp_path, capsys):
    run(csv_dir, tmp_path / "models", start="2007-01-03")
    shown = capsys.readouterr().err
    assert "lstm walk-forward" in shown and "rebalance" in shown, shown
    assert "2007-06 trained" in shown  # the month of the rebalance and the trainings so far
    run(csv_dir, tmp_path / "models", start="2007-01-03", progress=False)
    assert "walk-forward" not in capsys.readouterr().err


@pytest.mark.slow
def test_leaving_a_services_with_block_while_a_training_runs_says_what_it_waits_for(source, tmp_path, caplog):
    marker = tmp_path / "hang"
    marker.write_text("x")
    config = tiny_config(lstm_service={"universal": {"enabled": False}, "training_threads": 1})
    with (
        caplog.at_level(logging.WARNING, logger="lstm_plugin"),
        TrainingService(
            config,
            source,
            ModelRegistry(tmp_path / "models"),
            clock=ManualClock("2015-12-31"),
            backend="local",
            plugins=[SleepyFeatures(str(marker))],
        ) as service,
    ):
        service.request_model_training(["KO"])
        deadline = time.monotonic() + 120
        while not service.update(automatic=False)["running"] and time.monotonic() < deadline:
            time.sleep(0.2)
        assert [job["symbol"] for job in service.snapshot()["in_flight"]] == ["KO"]
        threading.Timer(2.0, marker.unlink).start()  # the training finishes while the block waits
    said = [r.getMessage() for r in caplog.records]
    assert any("waiting for 1 training to finish (specific/KO); Ctrl-C stops them" in m for m in said), said
    assert [d["symbol"] for d in service.snapshot()["done"]] == ["KO"]


def test_a_command_run_in_process_leaves_the_training_loggers_as_it_found_them(tmp_path, capsys):
    """``main`` in a notebook or a test: the quieting of training events is for the command only."""
    from lstm_plugin.cli.args import TRAINING_LOGGERS
    from lstm_plugin.cli.main import main

    before = {name: logging.getLogger(name).level for name in TRAINING_LOGGERS}
    span = ["--symbols", "AAPL,MSFT", "--start", "2020-01-02", "--end", "2020-03-31", "--no-lstm", "-q"]
    assert main(["backtest", *span, "--out", str(tmp_path / "r"), "--models", str(tmp_path / "m")]) == 0
    assert {name: logging.getLogger(name).level for name in TRAINING_LOGGERS} == before
