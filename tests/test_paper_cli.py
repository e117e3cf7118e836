"""``lstm-plugin paper`` and ``paper status``: the README command, resume, signals, and every refusal in one
line."""

from __future__ import annotations

import fcntl
import json
import signal
import sqlite3
import subprocess
import sys

import pytest

from lstm_plugin.cli.main import main
from lstm_plugin.core.data import bundled_source

from .conftest import TINY, write_config

README_ARGS = [
    "paper",
    "--replay-from",
    "2020-01-02",
    "--until",
    "2020-06-30",
    "--speed",
    "0",
    "--symbols",
    "AAPL,MSFT,KO,XOM,JNJ",
]


def readme_args(until: str = "2020-06-30", speed: str = "0") -> list[str]:
    args = list(README_ARGS)
    args[args.index("--until") + 1], args[args.index("--speed") + 1] = until, speed
    return args


@pytest.fixture
def run(tmp_path):
    """``lstm-plugin paper ...`` in this process with the tiny config and a registry in ``tmp_path``."""
    config = write_config(tmp_path / "tiny.json", {**TINY, "lstm_service": {"backend": "sync"}})

    def paper(*args: str, state: str = "S") -> int:
        extra = [] if "--config" in args else ["--config", str(config)]
        return main([*args, "--state", str(tmp_path / state), "--models", str(tmp_path / "models"), *extra])

    return paper


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lstm-plugin: error: "), err
    return lines[0]


@pytest.mark.slow
def test_the_readme_command_runs_prints_a_line_a_day_and_a_second_run_is_a_no_op(run, capsys, tmp_path):
    assert run(*README_ARGS) == 0
    out = capsys.readouterr().out.splitlines()
    days = [line for line in out if line[:4] == "2020"]
    assert len(days) == 125 and days[0].startswith("2020-01-02") and days[-1].startswith("2020-06-30")
    assert sum("rebalance:" in line for line in days) == 6
    assert run(*README_ARGS) == 0
    again = capsys.readouterr().out
    assert "nothing to do" in again and not any(line[:4] == "2020" for line in again.splitlines())
    assert main(["paper", "status", "--state", str(tmp_path / "S"), "--json"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert (
        status["last_bar"] == "2020-06-30"
        and status["days"] == 125
        and status["rebalances"] == 6
        and status["runs"] == 1
    )
    closes = {s: bundled_source().load(s).loc["2020-06-30", "close"] for s in status["positions"]}
    assert status["value"] == pytest.approx(
        status["cash"] + sum(p["size"] * closes[s] for s, p in status["positions"].items()), rel=1e-12
    )
    assert set(status["models"]) <= {"AAPL", "MSFT", "KO", "XOM", "JNJ"} and all(
        len(m["sha256"]) == 64 for m in status["models"].values()
    )
    assert status["heartbeat"]["state"] == "finished"


@pytest.mark.slow
def test_a_longer_until_continues_where_the_journal_stops(run, capsys, tmp_path):
    assert run(*readme_args("2020-02-28")) == 0
    capsys.readouterr()
    assert run(*readme_args("2020-03-31")) == 0
    days = [line for line in capsys.readouterr().out.splitlines() if line[:4] == "2020"]
    assert days[0].startswith("2020-03-02") and days[-1].startswith("2020-03-31")


@pytest.mark.slow
def test_a_csv_folder_the_project_has_never_seen(run, capsys, unseen_csv_dir):
    assert (
        run(
            "paper",
            "--data",
            str(unseen_csv_dir),
            "--replay-from",
            "2019-06-03",
            "--until",
            "2019-08-30",
            "--symbols",
            "ABT,AMD,DIS",
        )
        == 0
    )
    days = [line for line in capsys.readouterr().out.splitlines() if line[:4] == "2019"]
    assert len(days) == 64 and "rebalance:" in days[0]


def test_a_corrupt_journal_exits_2_in_one_line_and_is_left_as_it_was(run, capsys, tmp_path):
    state = tmp_path / "S"
    state.mkdir()
    garbage = b"SQLite format 3\x00" + bytes(range(256)) * 8
    (state / "journal.sqlite").write_bytes(garbage)
    assert run(*README_ARGS) == 2
    assert "damaged" in one_error_line(capsys.readouterr().err)
    assert (state / "journal.sqlite").read_bytes() == garbage
    assert main(["paper", "status", "--state", str(state)]) == 2
    assert "damaged" in one_error_line(capsys.readouterr().err)


def test_a_state_folder_in_use_by_another_run_exits_2(run, capsys, tmp_path):
    state = tmp_path / "S"
    state.mkdir()
    with open(state / "paper.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242")
        held.flush()
        assert run(*README_ARGS) == 2
    assert "in use by pid 4242" in one_error_line(capsys.readouterr().err)


@pytest.mark.slow
def test_a_state_folder_of_another_config_exits_2_and_loses_nothing(run, capsys, tmp_path):
    assert run(*readme_args("2020-01-31")) == 0
    journal = (tmp_path / "S" / "journal.sqlite").read_bytes()
    other = write_config(tmp_path / "other.json", {**TINY, "lstm": {"weight": 0.5}})
    capsys.readouterr()
    assert run(*README_ARGS, "--config", str(other)) == 2
    assert "another config" in one_error_line(capsys.readouterr().err)
    assert (tmp_path / "S" / "journal.sqlite").read_bytes() == journal


@pytest.mark.slow
def test_a_book_that_disagrees_with_its_fills_is_refused_unless_accepted(run, capsys, tmp_path):
    assert run(*readme_args("2020-01-31")) == 0
    with sqlite3.connect(tmp_path / "S" / "journal.sqlite") as db:
        last = db.execute("SELECT max(date) FROM positions").fetchone()[0]
        db.execute(
            "UPDATE positions SET size = size + 7 WHERE date = ? AND symbol = (SELECT min(symbol) FROM "
            "positions WHERE date = ?)",
            (last, last),
        )
    capsys.readouterr()
    with sqlite3.connect(tmp_path / "S" / "journal.sqlite") as db:
        before = [
            db.execute(f"SELECT * FROM {t}").fetchall()
            for t in ("days", "orders", "fills", "positions", "runs")
        ]
    assert run(*readme_args("2020-02-28")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "reconciliation" in line and "the fills add up to" in line and "--accept-state" in line
    with sqlite3.connect(tmp_path / "S" / "journal.sqlite") as db:  # refused before anything was written
        assert [
            db.execute(f"SELECT * FROM {t}").fetchall()
            for t in ("days", "orders", "fills", "positions", "runs")
        ] == before
    assert run(*readme_args("2020-02-28"), "--accept-state") == 0
    capsys.readouterr()
    assert main(["paper", "status", "--state", str(tmp_path / "S"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["last_bar"] == "2020-02-28"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--speed", "-1"], "--speed"),
        (["--until", "2019-01-01"], "--until"),
        (["--replay-from", "yesterday-ish"], "--replay-from"),
        (["--symbols", "AAPL,,MSFT"], "--symbols"),
        (["--symbols", "../../etc"], "symbol"),
        (["--watch", "/nonexistent/folder"], "nonexistent"),
    ],
)
def test_bad_arguments_exit_2_in_one_line(run, capsys, args, message):
    base = ["paper", "--replay-from", "2020-01-02", "--symbols", "AAPL"]
    merged = base[:]
    for i in range(0, len(args), 2):
        if args[i] in merged:
            merged[merged.index(args[i]) + 1] = args[i + 1]
        else:
            merged += args[i : i + 2]
    if "--watch" in merged:
        merged = ["paper", *args]
    assert run(*merged) == 2
    assert message in one_error_line(capsys.readouterr().err)


@pytest.mark.slow
def test_sigterm_stops_after_the_day_in_progress_and_the_run_resumes(tmp_path):
    config = write_config(tmp_path / "tiny.json", {**TINY, "lstm_service": {"backend": "sync"}})
    command = [
        sys.executable,
        "-m",
        "lstm_plugin",
        *readme_args("2020-02-28", speed="20"),
        "--state",
        str(tmp_path / "S"),
        "--models",
        str(tmp_path / "models"),
        "--config",
        str(config),
    ]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    assert child.stdout is not None
    for line in child.stdout:
        lines.append(line)
        if len(lines) == 5:
            child.send_signal(signal.SIGTERM)
            break
    rest, err = child.communicate(timeout=120)
    assert child.returncode == 128 + signal.SIGTERM, err
    assert "stopped cleanly (SIGTERM)" in err
    done = [line for line in lines + rest.splitlines() if line[:4] == "2020"]
    assert 5 <= len(done) < 40
    beat = json.loads((tmp_path / "S" / "heartbeat.json").read_text())
    assert beat["state"] == "stopped" and beat["last_bar"] == done[-1][:10]
    resumed = subprocess.run(
        [c if c != "20" else "0" for c in command], capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    after = [line for line in resumed.stdout.splitlines() if line[:4] == "2020"]
    assert len(done) + len(after) == 40 and after[-1].startswith("2020-02-28")


@pytest.mark.slow
def test_a_journal_another_process_holds_locked_exits_2(run, capsys, tmp_path):
    assert run(*readme_args("2020-01-31")) == 0
    capsys.readouterr()
    holder = sqlite3.connect(tmp_path / "S" / "journal.sqlite", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert run(*readme_args("2020-02-28")) == 2
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert "locked by another process" in one_error_line(capsys.readouterr().err)
    assert run(*readme_args("2020-02-28")) == 0  # once the other process lets go, the run continues


def test_status_of_a_folder_without_a_paper_run_exits_2(capsys, tmp_path):
    assert main(["paper", "status", "--state", str(tmp_path / "nothing"), "--json"]) == 2
    assert "no paper run here" in one_error_line(capsys.readouterr().err)
    assert capsys.readouterr().out == ""


@pytest.mark.slow
def test_paper_without_arguments_replays_the_last_year_into_lstm_paper(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    # every bundled symbol (no data.symbols); the LSTM off keeps it to seconds: this is about the defaults
    write_config(tmp_path / "lstm_config.json", {**TINY, "lstm": {"enabled": False}})
    assert main(["paper", "--config", "lstm_config.json"]) == 0  # state ./lstm_paper, models ./lstm_models
    days = [line for line in capsys.readouterr().out.splitlines() if line[:2] == "20"]
    assert days[0].startswith("2020-04-21") and days[-1].startswith("2021-04-21") and "rebalance:" in days[0]
    assert (tmp_path / "lstm_paper" / "journal.sqlite").is_file()
    assert main(["paper", "status", "--json"]) == 0
    assert len(json.loads(capsys.readouterr().out)["symbols"]) == 24
