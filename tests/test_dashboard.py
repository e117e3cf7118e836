"""The dashboard without a browser: the track record it scores, its pages' data against the commands', its
server's security, and every refusal in one line (the browser tests: test_dashboard_browser.py)."""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from lstm_plugin.cli.main import main
from lstm_plugin.core.clock import ManualClock
from lstm_plugin.dashboard import Board, open_sources, snapshot
from lstm_plugin.serving.forecast import ForecastService
from lstm_plugin.serving.track_record import TRACK_FILE, read_forecasts, score_track, with_outcomes

from .conftest import TINY, write_config

AS_OF = "2016-06-30"
BARS = 41 - 2  # business days from 2016-01-04 to 2016-02-29, less two market holidays


def _frame(bars: list[str], symbol: str = "X", horizon: int = 2, score=None, expected=None) -> pd.DataFrame:
    n = len(bars)
    return pd.DataFrame(
        {
            "sha256": "s" * 64,
            "model_type": "specific",
            "name": symbol,
            "symbol": symbol,
            "bar": bars,
            "horizon": horizon,
            "score": np.ones(n) if score is None else score,
            "expected": np.linspace(-1, 1, n) if expected is None else expected,
        }
    )


def test_an_outcome_is_known_only_when_its_bar_is_and_later_prices_change_nothing_before():
    closes = pd.Series([10.0, 11.0, 12.0, 9.0, 9.9], index=pd.bdate_range("2020-01-01", periods=5))
    bars = [f"{d:%Y-%m-%d}" for d in closes.index]
    scored = with_outcomes(_frame(bars), lambda s: closes)
    assert scored["realised"].iloc[:3].tolist() == pytest.approx([12 / 10 - 1, 9 / 11 - 1, 9.9 / 12 - 1])
    assert scored["realised"].iloc[3:].isna().all()  # two bars ahead is not in the data yet
    later = closes.copy()
    later.iloc[-1] = 1000.0  # the future moves: the outcomes it does not decide stay as they were
    rescored = with_outcomes(_frame(bars), lambda s: later)
    assert rescored["realised"].iloc[:2].tolist() == scored["realised"].iloc[:2].tolist()
    assert with_outcomes(_frame(bars), lambda s: None)["realised"].isna().all()  # no data: nothing known


def test_the_track_record_counts_signs_and_ranks_and_widens_for_overlapping_outcomes():
    rng = np.random.default_rng(0)
    closes = pd.Series(
        100 * np.exp(np.cumsum(rng.normal(0, 0.01, 400))), index=pd.bdate_range("2015-01-01", periods=400)
    )
    bars = [f"{d:%Y-%m-%d}" for d in closes.index]
    future = closes.shift(-5) / closes - 1
    score = np.sign(future.fillna(0).to_numpy()) * np.where(rng.random(400) < 0.7, 1, -1)
    frame = with_outcomes(
        _frame(bars, horizon=5, score=score, expected=future.fillna(0).to_numpy()), lambda s: closes
    )
    track = score_track(frame)
    known = frame.dropna(subset=["realised"])
    right = np.sign(known["score"]) == np.sign(known["realised"])
    assert track["n"] == 395 and track["forecasts"] == 400
    assert track["hit_rate"] == pytest.approx(right.mean())
    assert track["hit_low"] < track["hit_rate"] < track["hit_high"]
    assert track["rank_ic"] == pytest.approx(1.0)  # expected is the realised return itself
    assert track["effective_n"] == pytest.approx(395 / 5)  # daily forecasts of 5-bar outcomes
    up = (known["realised"] > 0).mean()
    assert track["base_rate"] == pytest.approx(max(up, 1 - up))
    monthly = with_outcomes(_frame(bars[::21], horizon=5, score=score[::21]), lambda s: closes)
    assert score_track(monthly)["effective_n"] == pytest.approx(score_track(monthly)["n"])  # no overlap
    empty = score_track(with_outcomes(_frame([]), lambda s: closes))
    assert empty["n"] == 0 and empty["hit_rate"] is None and empty["rank_ic"] is None
    assert track["up_calls"] == pytest.approx((known["score"] > 0).mean())
    always_up = score_track(with_outcomes(_frame(bars, horizon=5), lambda s: closes))  # scores all 1.0
    assert always_up["up_calls"] == 1.0 and always_up["hit_rate"] == pytest.approx(
        up / (known["realised"] != 0).mean()
    )


def test_served_forecasts_are_recorded_once_each_keyed_by_the_model_file(copy_registry, trained, source):
    registry = copy_registry()
    service = ForecastService(trained["config"], registry, source, ManualClock(AS_OF))
    service.predict_many(["AAPL", "KO"])
    service.predict_many(["AAPL", "KO"], force_refresh=True)  # the same bar again: nothing new
    service.predict_many(["AAPL"], as_of="2016-06-29")
    recorded = read_forecasts(registry.root)
    assert len(recorded) == 3
    aapl, pooled = registry.resolve("specific", "AAPL"), registry.resolve("universal", "DEFAULT")
    by_symbol = recorded.groupby("symbol")["sha256"].unique()
    assert list(by_symbol["AAPL"]) == [aapl.metadata["sha256"]]
    assert list(by_symbol["KO"]) == [pooled.metadata["sha256"]]
    assert set(recorded.loc[recorded.symbol == "KO", "name"]) == {"DEFAULT"}


def test_a_registry_that_cannot_keep_the_record_still_forecasts_and_says_so_once(
    copy_registry, trained, source, caplog
):
    registry = copy_registry()
    (registry.root / TRACK_FILE).mkdir()  # not a database: every write fails
    service = ForecastService(trained["config"], registry, source, ManualClock(AS_OF))
    with caplog.at_level(logging.WARNING):
        first = service.predict_many(["AAPL"])
        service.predict_many(["AAPL"], as_of="2016-06-29")
    assert first["AAPL"]["status"] == "success"
    warned = [r.getMessage() for r in caplog.records if "cannot record forecasts" in r.getMessage()]
    assert len(warned) == 1, warned


@pytest.fixture
def served(copy_registry, trained, source, tmp_path):
    """A registry whose models served forecasts over two months, and the config file that made them."""
    registry = copy_registry()
    service = ForecastService(trained["config"], registry, source, ManualClock("2016-08-31"))
    for day in pd.bdate_range("2016-01-04", "2016-02-29"):
        service.predict_many(["AAPL", "MSFT", "KO"], as_of=day)
    config = write_config(tmp_path / "tiny.json", TINY)
    return registry, config


def test_the_models_page_says_what_status_says_with_the_live_figures(served, capsys):
    registry, config = served
    args = ["--models", str(registry.root), "--config", str(config), "--as-of", "2016-08-31"]
    assert main(["status", "--json", *args]) == 0
    status = json.loads(capsys.readouterr().out)
    board = Board(open_sources(registry.root, [], [], config=config, clock=ManualClock("2016-08-31")))
    rows = {row["symbol"]: row for row in board.models()}
    assert rows["DEFAULT"]["model_type"] == "universal" and rows["DEFAULT"]["track"]["n"] > 0
    for symbol, expected in status.items():
        row = rows[symbol]
        assert (row["status"], row["version"], row["age_days"]) == (
            expected["status"],
            expected["model_version"],
            expected["age_days"],
        )
        assert row["reliability"] == expected["reliability"]
        assert row["track"] == expected["track"]
    aapl = rows["AAPL"]["track"]
    assert aapl["forecasts"] == BARS and aapl["n"] == BARS  # every outcome is known by August
    assert status["KO"]["track"] is None  # KO has no model of its own: the pooled one's row has its figures
    assert main(["status", *args]) == 0
    table = capsys.readouterr().out
    assert "hit [95%]" in table.splitlines()[0] and table.splitlines()[-1].startswith("live: ")


def test_a_symbol_page_lists_versions_forecasts_and_calibration_and_nothing_else(served):
    registry, config = served
    board = Board(open_sources(registry.root, [], [], config=config, clock=ManualClock("2016-08-31")))
    page = board.symbol("AAPL")
    assert [v["event"] for v in page["versions"]] == ["promoted"]
    assert len(page["forecasts"]) == BARS and all(f["realised"] is not None for f in page["forecasts"])
    assert sum(bucket["n"] for bucket in page["calibration"]) == BARS
    assert page["forecasts"][0]["age_days"] == pytest.approx(
        (pd.Timestamp("2016-01-04") - pd.Timestamp("2015-12-31")).days
    )
    for name in ("../../etc", "AAPL/../MSFT", "NOPE"):
        assert name not in board.symbol_names()
        with pytest.raises(KeyError):
            board.symbol(name)


def test_snapshot_returns_the_pages_as_data_and_frames(served, tmp_path, monkeypatch):
    registry, config = served
    monkeypatch.chdir(tmp_path)
    taken = snapshot(registry.root, config=config)
    frame = taken.to_frame("models")
    assert {"symbol", "status", "live_hit_rate", "live_rank_ic", "why_flagged"} <= set(frame.columns)
    assert len(frame) == len(taken.models)
    assert taken.paper == [] and taken.backtests == []  # none here, none given
    assert taken.training["available"] is False
    with pytest.raises(ValueError, match="page"):
        taken.to_frame("nope")


def _app(board, token=None, hosts=None, base_url="http://testserver"):
    from starlette.testclient import TestClient

    from lstm_plugin.dashboard.server import build_app

    return TestClient(build_app(board, token, hosts), base_url=base_url)


def test_every_answer_forbids_inline_script_and_no_request_reaches_a_path(served):
    registry, config = served
    client = _app(Board(open_sources(registry.root, [], [], config=config, clock=ManualClock("2016-08-31"))))
    for path in ("/models", "/api/models", "/static/dashboard.js", "/symbol/AAPL", "/api/symbol/AAPL"):
        answer = client.get(path)
        assert answer.status_code == 200, path
        policy = answer.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    for path in (
        "/api/symbol/..%2F..%2Fetc",
        "/api/symbol/NOPE",
        "/static/..%2F__init__.py",
        "/static/page.html",
        "/api/backtests/0/equity.png",
        "/api/backtests/0/..%2F..%2Fsummary.json",
        "/api/nope",
    ):
        assert client.get(path).status_code == 404, path


def test_off_loopback_every_request_needs_the_token(served):
    registry, config = served
    client = _app(Board(open_sources(registry.root, [], [], config=config)), token="s3cret")
    assert client.get("/api/models").status_code == 401
    assert client.get("/models").status_code == 401  # the form that sets the cookie
    assert client.get("/api/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/models", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert client.post("/login", data={"token": "wrong"}).status_code == 401
    assert client.post("/login", content=b"token=" + b"x" * 5000).status_code == 413
    logged = client.post("/login", data={"token": "s3cret"}, follow_redirects=False)
    assert logged.status_code == 303
    assert client.get("/api/models").status_code == 200  # the cookie now


def test_on_loopback_a_request_for_another_host_name_is_refused(served):
    """DNS rebinding: a web page points its own name at 127.0.0.1 to read the API; its Host gives it away."""
    from lstm_plugin.dashboard.server import loopback_names

    registry, config = served
    board = Board(open_sources(registry.root, [], [], config=config, clock=ManualClock("2016-08-31")))
    names = loopback_names("127.0.0.1")
    for base_url in ("http://127.0.0.1:8050", "http://localhost:8050", "http://[::1]:8050"):
        assert _app(board, hosts=names, base_url=base_url).get("/api/training").status_code == 200, base_url
    refused = _app(board, hosts=names, base_url="http://attacker.example:8050").get("/api/models")
    assert refused.status_code == 400 and "symbol" not in refused.text


def test_a_source_that_breaks_while_serving_gets_its_own_panel(served, tmp_path):
    registry, config = served
    report = tmp_path / "report"
    report.mkdir()
    (report / "manifest.json").write_text("{}")
    (report / "summary.json").write_text(json.dumps({"lstm": {"final_value": 1.0}, "settings": {}}))
    board = Board(open_sources(registry.root, [], [report], config=config, clock=ManualClock("2016-08-31")))
    client = _app(board)
    assert client.get("/api/backtests").json()[0]["runs"][0]["final_value"] == 1.0
    assert client.get("/api/backtests").json()[0]["variants"] == []  # a report without --variants
    variants = {
        "base": {"figures": {"sharpe": 0.8}, "exits": 0, "vs_base": None},
        "exits": "damaged",
        "x": {},
    }
    (report / "summary.json").write_text(json.dumps({"lstm": {}, "settings": {}, "variants": variants}))
    shown = client.get("/api/backtests").json()[0]["variants"]
    assert [v["name"] for v in shown] == ["base", "x"] and shown[0]["sharpe"] == 0.8
    assert shown[0]["vs_base"]["sharpe"] == {} and shown[1]["exits"] is None
    (report / "summary.json").write_text("{not json")
    broken = client.get("/api/backtests")
    assert broken.status_code == 200 and "summary.json" in broken.json()[0]["error"]
    assert client.get("/api/models").status_code == 200 and isinstance(client.get("/api/models").json(), list)


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("lstm-plugin: error: "), err
    return lines[0]


def test_bad_folders_ports_and_tokens_are_one_line_at_start(served, tmp_path, capsys, monkeypatch):
    registry, config = served
    base = ["dashboard", "--config", str(config), "--models", str(registry.root)]
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "notes.txt").write_text("x")
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "journal.sqlite").write_bytes(b"SQLite format 3\x00" + b"\xff" * 2000)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    with sqlite3.connect(foreign / "journal.sqlite") as db:
        db.execute("CREATE TABLE songs (title TEXT)")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    monkeypatch.delenv("LSTM_PLUGIN_DASHBOARD_TOKEN", raising=False)
    cases = [
        (["dashboard", "--config", str(config), "--models", str(tmp_path / "missing")], "does not exist"),
        (["dashboard", "--config", str(config), "--models", str(tmp_path / "plain")], "not a model registry"),
        ([*base, "--state", str(tmp_path / "plain")], "not a paper state folder"),
        ([*base, "--state", str(damaged)], "damaged"),
        ([*base, "--state", str(foreign)], "not a paper journal"),
        ([*base, "--reports", str(tmp_path / "plain")], "not a backtest report folder"),
        ([*base, "--port", str(taken.getsockname()[1])], "in use"),
        ([*base, "--port", "70000"], "not a port number"),
        ([*base, "--host", "0.0.0.0"], "give a token"),
        ([*base, "--host", "0.0.0.0", "--token-file", str(tmp_path / "missing")], "--token-file"),
    ]
    try:
        for args, expected in cases:
            assert main(args) == 2, args
            assert expected in one_error_line(capsys.readouterr().err), args
    finally:
        taken.close()


def test_without_the_extra_the_command_says_how_to_install_it(tmp_path):
    script = (
        "import sys; sys.modules['uvicorn'] = None; sys.modules['starlette'] = None\n"
        "from lstm_plugin.cli.main import main; sys.exit(main(['dashboard']))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert done.returncode == 2
    assert "pip install" in one_error_line(done.stderr) and "[dashboard]" in done.stderr


def test_the_track_record_file_is_read_without_a_lock_while_it_is_written(served):
    registry, _ = served
    writer = sqlite3.connect(registry.root / TRACK_FILE, timeout=5)
    writer.execute("BEGIN IMMEDIATE")  # a writer holds its lock mid-transaction
    writer.execute("DELETE FROM forecasts")
    try:
        assert len(read_forecasts(registry.root)) == 3 * BARS  # the last committed state, at once
    finally:
        writer.rollback()
        writer.close()


@pytest.mark.slow
def test_a_day_being_written_never_fails_the_paper_page_which_shows_the_day_before(tmp_path):
    config = write_config(tmp_path / "tiny.json", {**TINY, "lstm_service": {"backend": "sync"}})
    state = tmp_path / "S"
    args = [
        "paper",
        "--replay-from",
        "2020-01-02",
        "--until",
        "2020-01-15",
        "--speed",
        "0",
        "--symbols",
        "AAPL,KO",
    ]
    assert main([*args, "--state", str(state), "--models", str(tmp_path / "M"), "--config", str(config)]) == 0
    board = Board(open_sources(tmp_path / "M", [state], [], config=config))
    before = board.paper()[0]
    writer = sqlite3.connect(state / "journal.sqlite", timeout=5)
    writer.execute("BEGIN IMMEDIATE")  # a run mid-commit: its lock held, its day not yet there
    writer.execute("INSERT INTO days VALUES ('2020-01-16', 1, 1.0, 1.0, 0, '[]')")
    try:
        during = board.paper()[0]
    finally:
        writer.rollback()
        writer.close()
    assert "error" not in during and during["days"] == before["days"] and during["value"] == before["value"]


def test_stale_scheduled_and_training_say_what_status_says(served, tmp_path, capsys):
    registry, _ = served
    stale = write_config(tmp_path / "stale.json", {**TINY, "lstm": {"max_model_age_days": 100}})
    service = {"backend": "local", "closed": False, "counts": {}, "done": [], "failed": []}
    service["queue"] = [{"symbol": "MSFT", "model_type": "specific", "category": "portfolio", "priority": 10}]
    service["in_flight"] = [
        {"symbol": "KO", "model_type": "specific", "category": "scanning", "priority": 30}
    ]
    (registry.root / "service.json").write_text(json.dumps(service))
    args = ["--models", str(registry.root), "--config", str(stale), "--as-of", "2016-08-31"]
    assert main(["status", "--json", *args]) == 0
    status = json.loads(capsys.readouterr().out)
    board = Board(open_sources(registry.root, [], [], config=stale, clock=ManualClock("2016-08-31")))
    rows = {row["symbol"]: row for row in board.models()}
    assert status["AAPL"]["status"] == rows["AAPL"]["status"] == "stale"  # 244 days old, over 100
    assert status["MSFT"]["status"] == rows["MSFT"]["status"] == "scheduled"
    assert status["KO"]["status"] == rows["KO"]["status"] == "training"
    assert board.training()["tiers"][0]["jobs"][0]["symbol"] == "MSFT"
    (registry.root / "service.json").write_text(json.dumps(dict(service, closed=True)))  # it shut down
    assert main(["status", "--json", *args]) == 0
    assert json.loads(capsys.readouterr().out)["MSFT"]["status"] == "stale"
