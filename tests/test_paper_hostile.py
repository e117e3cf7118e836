"""The second hostile trial on paper runs: a lost or damaged journal never trades again, a broken heartbeat
or a foreign SQLite file is one line, the run's identity ignores what does not decide (symbol order,
retention, backends), an accepted disagreement stays settled, and a journal of the previous version
resumes."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lstm_plugin.backtrader.live import DirectorySource, PaperSession
from lstm_plugin.backtrader.live.sqlite import StateError
from lstm_plugin.backtrader.live.state import legacy_fingerprint
from lstm_plugin.cli.main import main
from lstm_plugin.core.config import validate_config
from lstm_plugin.core.data import bundled_source
from lstm_plugin.plugins.hookspecs import hookimpl

from .conftest import TINY, write_config
from .paper_runs import replay

CONFIG = {**TINY, "lstm_service": {"backend": "sync"}}
SYMBOLS = "AAPL,KO,MSFT"


def paper_args(
    folder: Path, until: str = "2020-02-28", symbols: str = SYMBOLS, config: str = "tiny.json"
) -> list:
    return [
        "paper",
        "--replay-from",
        "2020-01-02",
        "--until",
        until,
        "--symbols",
        symbols,
        "--state",
        str(folder / "S"),
        "--models",
        str(folder / "models"),
        "--config",
        str(folder / config),
        "-q",
    ]


@pytest.fixture(scope="module")
def base(tmp_path_factory) -> Path:
    """A replay of 2020-01-02 .. 2020-02-14 (the tiny config, sync trainings): copied by each test."""
    folder = tmp_path_factory.mktemp("paper_base")
    write_config(folder / "tiny.json", CONFIG)
    assert main(paper_args(folder, "2020-02-14")) == 0
    return folder


@pytest.fixture
def run(base, tmp_path) -> Path:
    for name in ("S", "models"):
        shutil.copytree(base / name, tmp_path / name)
    shutil.copy(base / "tiny.json", tmp_path / "tiny.json")
    return tmp_path


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lstm-plugin: error: "), err
    return lines[0]


def sql(folder: Path, statement: str) -> None:
    with sqlite3.connect(folder / "S" / "journal.sqlite") as db:
        db.execute(statement)


class OrderLog:
    """A broker adapter that remembers every order it was handed."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    @hookimpl
    def lstm_paper_day(self, when, orders, fills, book) -> None:
        self.sent += [o["client_id"] for o in orders]


def empty_journal(folder: Path) -> None:
    (folder / "S" / "journal.sqlite").write_bytes(b"")


def wal_only(folder: Path) -> None:
    (folder / "S" / "journal.sqlite").unlink()
    (folder / "S" / "journal.sqlite-wal").write_bytes(b"\0" * 4096)


def deleted(folder: Path) -> None:
    for name in ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm"):
        (folder / "S" / name).unlink(missing_ok=True)


@pytest.mark.parametrize("lose", [empty_journal, wal_only, deleted], ids=["emptied", "wal-only", "deleted"])
def test_a_lost_journal_is_refused_and_no_order_is_sent_again(run, capsys, lose):
    bars = (run / "S" / "bars.sqlite").read_bytes()
    lose(run)
    capsys.readouterr()
    assert main(paper_args(run)) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "the journal was lost or replaced" in line and "restore journal.sqlite" in line
    assert (run / "S" / "bars.sqlite").read_bytes() == bars
    adapter = OrderLog()
    with pytest.raises(StateError, match="the journal was lost or replaced"):
        PaperSession(
            run / "S",
            replay(SYMBOLS.split(","), until="2020-02-28"),
            config=validate_config(CONFIG),
            registry=run / "models",
            plugins=[adapter],
        )
    assert adapter.sent == []


@pytest.mark.parametrize("table", ["decisions", "meta", "days"])
def test_a_journal_that_lost_a_table_is_damaged(run, capsys, table):
    sql(run, f"DROP TABLE {table}")
    capsys.readouterr()
    assert main(paper_args(run)) == 2
    assert f"damaged: its {table} table is missing" in one_error_line(capsys.readouterr().err)
    assert main(["paper", "status", "--state", str(run / "S")]) == 2
    assert f"its {table} table is missing" in one_error_line(capsys.readouterr().err)


def test_a_journal_restored_from_an_older_backup_is_refused(run, capsys):
    for table in ("days", "positions", "decisions"):
        sql(run, f"DELETE FROM {table} WHERE date > '2020-01-31'")
    capsys.readouterr()
    assert main(paper_args(run)) == 2
    assert "the bar store released 10 days (2020-02-03 .. 2020-02-14)" in one_error_line(
        capsys.readouterr().err
    )


@pytest.mark.parametrize(
    "content, shown",
    [
        ("[1, 2, 3]", "not a JSON object (a list)"),
        ('"x"', "not a JSON object (a str)"),
        ('{"training": "zzz", "state": 5}', "fields of the wrong type left out: state, training"),
        ("{", "unreadable"),
    ],
)
def test_a_garbled_heartbeat_is_reported_by_status_not_a_traceback(run, capsys, content, shown):
    (run / "S" / "heartbeat.json").write_text(content)
    capsys.readouterr()
    assert main(["paper", "status", "--state", str(run / "S")]) == 0
    assert f"heartbeat.json: {shown}" in capsys.readouterr().out
    assert main(["paper", "status", "--state", str(run / "S"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["days"] == 31


def test_a_heartbeat_that_is_a_folder_stops_the_run_before_it_trades(run, capsys):
    journal = (run / "S" / "journal.sqlite").read_bytes()
    (run / "S" / "heartbeat.json").unlink()
    (run / "S" / "heartbeat.json").mkdir()
    capsys.readouterr()
    assert main(paper_args(run)) == 2
    assert "heartbeat.json › is not a file; remove it" in one_error_line(capsys.readouterr().err)
    assert (run / "S" / "journal.sqlite").read_bytes() == journal


@pytest.mark.parametrize("kind", ["empty", "foreign"])
def test_status_of_a_file_that_is_no_journal_is_one_line(tmp_path, capsys, kind):
    write_config(tmp_path / "tiny.json", CONFIG)
    (tmp_path / "S").mkdir()
    path = tmp_path / "S" / "journal.sqlite"
    if kind == "empty":
        path.write_bytes(b"")
    else:
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE songs (title TEXT)")
    assert main(["paper", "status", "--state", str(tmp_path / "S")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert (
        "empty: no paper journal here" if kind == "empty" else "not a paper journal (it holds tables songs)"
    ) in line
    assert main(paper_args(tmp_path, symbols="AAPL")) == (0 if kind == "empty" else 2)  # an empty file is new


def test_what_does_not_decide_is_not_part_of_the_run(run, capsys):
    """The symbols in another order, another retention, other backends and Ray settings: the same run."""
    write_config(
        run / "other.json",
        {
            **CONFIG,
            "registry": {"keep_versions": 7},
            "backtest": {"backend": "local", "workers": 2},
            "lstm_service": {"backend": "sync", "ray": {"num_cpus": 3}},
        },
    )
    assert main(paper_args(run, symbols="MSFT,AAPL,KO", config="other.json")) == 0
    capsys.readouterr()
    write_config(run / "weight.json", {**CONFIG, "lstm": {"weight": 0.5}})
    assert main(paper_args(run, "2020-03-13", config="weight.json")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "another config: lstm.weight (was 0.3, now 0.5)" in line


def test_an_accepted_disagreement_stays_settled(run, capsys):
    sql(run, "UPDATE positions SET size = size + 7 WHERE date = '2020-02-14' AND symbol = 'AAPL'")
    capsys.readouterr()
    assert main(paper_args(run)) == 2
    assert "--accept-state" in one_error_line(capsys.readouterr().err)
    assert main([*paper_args(run), "--accept-state"]) == 0
    assert main(paper_args(run, "2020-03-13")) == 0  # settled once: no flag needed again
    with sqlite3.connect(run / "S" / "journal.sqlite") as db:
        kinds = [r[0] for r in db.execute("SELECT kind FROM events")]
    assert kinds.count("accepted_state") == 1


def test_a_journal_of_the_previous_version_resumes(run, capsys):
    """Journals written before the settings were stored carry only that version's fingerprint."""
    assert legacy_fingerprint(validate_config(CONFIG)) == "ee9c6a006545b3ed"  # what 0.1.0 computed
    assert legacy_fingerprint(validate_config({**TINY, "lstm": {"weight": 0.5}})) == "e30e51b220012c29"
    sql(run, "DELETE FROM meta WHERE key = 'settings'")
    sql(run, "UPDATE meta SET value = '\"ee9c6a006545b3ed\"' WHERE key = 'config'")
    sql(run, "DROP TABLE deliveries")  # that version journaled no deliveries either
    assert main(paper_args(run)) == 0
    with sqlite3.connect(run / "S" / "journal.sqlite") as db:
        assert db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 40


@pytest.mark.parametrize("poll", ["inf", "1e10", "nan", "0", "-1"])
def test_a_poll_interval_out_of_bounds_is_one_line(tmp_path, capsys, poll):
    (tmp_path / "in").mkdir()
    assert (
        main(["paper", "--watch", str(tmp_path / "in"), "--poll", poll, "--state", str(tmp_path / "S")]) == 2
    )
    assert "--poll › must be more than 0 and at most 86400 seconds" in one_error_line(capsys.readouterr().err)


def test_the_heartbeat_names_the_last_bar_while_a_watched_folder_is_waited_for(tmp_path):
    data = bundled_source()
    folder = tmp_path / "incoming"
    folder.mkdir()
    for symbol in ("AAPL", "KO"):
        frame = data.load(symbol).loc[:"2020-02-14"].reset_index()
        frame.columns = ["Date", "Open", "High", "Low", "Close", "Volume"]
        frame.iloc[:-10].to_csv(folder / f"{symbol}.csv", index=False, date_format="%Y-%m-%d")
    beats: list[dict] = []
    with PaperSession(
        tmp_path / "S",
        DirectorySource(folder, ["AAPL", "KO"]),
        config=validate_config(CONFIG),
        registry=tmp_path / "models",
        poll_seconds=0,
    ) as session:
        session.run(limit=0)  # the history only
        for symbol in ("AAPL", "KO"):
            frame = data.load(symbol).loc[:"2020-02-14"].reset_index()
            frame.columns = ["Date", "Open", "High", "Low", "Close", "Volume"]
            frame.iloc[-10:].to_csv(
                folder / f"{symbol}.csv", index=False, header=False, mode="a", date_format="%Y-%m-%d"
            )

        def waiting(why: str) -> None:
            beats.append(json.loads((tmp_path / "S" / "heartbeat.json").read_text()))
            session.request_stop()

        session.on_wait = waiting
        session.run()
    assert beats and beats[0]["state"] == "waiting for bars" and beats[0]["last_bar"] == "2020-02-14"


ADAPTER = """
import json, os, time
from lstm_plugin import hookimpl

def _log(entry):
    with open(os.environ["ADAPTER_LOG"], "a") as stream:
        stream.write(json.dumps(entry) + "\\n")

@hookimpl
def lstm_paper_day(when, orders, fills, book):
    _log({"day": f"{when:%Y-%m-%d}", "orders": [o["client_id"] for o in orders]})
    if orders and os.environ.get("ADAPTER_SLEEP") == "day":
        _log({"sleeping": f"{when:%Y-%m-%d}"})
        time.sleep(600)

@hookimpl
def lstm_before_rebalance(when, symbols, current):
    if os.environ.get("ADAPTER_SLEEP") == "rebalance" and f"{when:%Y-%m}" == "2020-02":
        _log({"sleeping": "rebalance"})
        time.sleep(600)
"""


def installed_adapter(folder: Path) -> dict[str, str]:
    """A broker adapter installed as a real plugin (an ``lstm_plugin`` entry point); the environment that
    finds it."""
    site = folder / "site"
    (site / "sleepy_adapter-1.0.dist-info").mkdir(parents=True)
    (site / "sleepy_adapter.py").write_text(ADAPTER)
    info = site / "sleepy_adapter-1.0.dist-info"
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: sleepy-adapter\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[lstm_plugin]\nsleepy = sleepy_adapter\n")
    return dict(os.environ, PYTHONPATH=str(site), ADAPTER_LOG=str(folder / "adapter.log"))


def adapter_log(folder: Path) -> list[dict]:
    path = folder / "adapter.log"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def start_paper(folder: Path, env: dict[str, str], until: str) -> subprocess.Popen:
    write_config(folder / "plugged.json", {**CONFIG, "plugins": {"load_entry_points": True}})
    args = paper_args(folder, until, config="plugged.json")
    return subprocess.Popen(
        [sys.executable, "-m", "lstm_plugin", *args], env=env, stderr=subprocess.PIPE, text=True
    )


def wait_for_sleep(folder: Path, child: subprocess.Popen) -> None:
    deadline = time.monotonic() + 300
    while not any("sleeping" in e for e in adapter_log(folder)):
        assert child.poll() is None and time.monotonic() < deadline, "the plugin never ran"
        time.sleep(0.1)


@pytest.mark.slow
def test_a_stop_signal_ends_a_run_whose_adapter_hangs_and_the_next_start_hands_the_day_over_again(tmp_path):
    env = installed_adapter(tmp_path)
    write_config(tmp_path / "tiny.json", CONFIG)
    child = start_paper(tmp_path, dict(env, ADAPTER_SLEEP="day"), "2020-02-28")
    wait_for_sleep(tmp_path, child)
    child.send_signal(signal.SIGTERM)  # one signal: the day is committed, the adapter is cut short
    _, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM and err.strip().splitlines()[-1].endswith("(SIGTERM)"), (
        err
    )
    cut = next(e for e in adapter_log(tmp_path) if "sleeping" in e)["sleeping"]
    resumed = start_paper(tmp_path, env, "2020-02-28")
    assert resumed.wait(300) == 0, resumed.stderr.read() if resumed.stderr else ""
    handed = [e for e in adapter_log(tmp_path) if "day" in e]
    days = [e["day"] for e in handed]
    assert days.count(cut) == 2 and days[-1] == "2020-02-28"  # the cut day again, first thing, then the rest
    orders = [cid for e in handed for cid in e["orders"]]
    again = next(e["orders"] for e in handed[days.index(cut) + 1 :] if e["day"] == cut)
    assert again and all(orders.count(cid) == 2 for cid in again)  # the same client ids: idempotent
    assert all(orders.count(cid) == 1 for cid in orders if cid not in again)


@pytest.mark.slow
def test_a_second_sigterm_exits_143(tmp_path):
    env = installed_adapter(tmp_path)
    child = start_paper(tmp_path, dict(env, ADAPTER_SLEEP="rebalance"), "2020-02-28")
    wait_for_sleep(tmp_path, child)
    child.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=60)
    assert child.returncode == 128 + signal.SIGTERM, err
    assert err.strip().splitlines()[-1] == "lstm-plugin: terminated"
