"""Live-paper runs in one process: the same trades as the backtest, the barrier, hot-swapped and stale
models, a failing source, and the state folder's guards."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lstm_plugin.backtrader.backtest import run_main_job
from lstm_plugin.backtrader.live import (
    BarHub,
    BarStore,
    Delivery,
    DirectorySource,
    PaperSession,
    ReplaySource,
    SourceError,
)
from lstm_plugin.cli.paper import plugin_source
from lstm_plugin.core.data import bundled_source
from lstm_plugin.core.errors import LSTMPluginError
from lstm_plugin.plugins.hookspecs import hookimpl
from lstm_plugin.serving.registry import ModelRegistry
from lstm_plugin.training.trainer import ModelTrainer

from .conftest import tiny_config

FIVE = ["AAPL", "MSFT", "KO", "XOM", "JNJ"]
SYNC = {"lstm_service": {"backend": "sync"}}


@pytest.fixture(scope="module")
def backtested(tmp_path_factory):
    """``run_main_job`` over 2020-01..04 from a cold registry, which it leaves warm."""
    root = tmp_path_factory.mktemp("backtested")
    config = tiny_config(**SYNC)
    result = run_main_job(
        config, bundled_source(), root / "models", FIVE, "2020-01-02", "2020-04-30", progress=False
    )
    return {"config": config, "result": result, "models": root / "models"}


def replay(
    symbols: list[str] = FIVE, start: str = "2020-01-02", until: str | None = "2020-04-30"
) -> ReplaySource:
    return ReplaySource(bundled_source(), symbols, start, until, speed=0)


def fills(session: PaperSession) -> list[dict[str, Any]]:
    orders = {o["client_id"]: o for o in session.journal.rows("orders")}
    return sorted(
        (
            {
                "date": f["date"],
                "created": orders[f["client_id"]]["date"],
                "symbol": f["symbol"],
                "size": f["size"],
                "price": f["price"],
                "commission": f["commission"],
            }
            for f in session.journal.rows("fills")
        ),
        key=lambda r: (r["date"], r["symbol"]),
    )


@pytest.mark.slow
def test_a_replay_trades_exactly_as_the_backtest(backtested, tmp_path):
    models = tmp_path / "models"
    shutil.copytree(backtested["models"], models)
    with PaperSession(tmp_path / "state", replay(), config=backtested["config"], registry=models) as session:
        session.run()
        paper_fills, equity, decisions = fills(session), session.equity(), session.journal.rows("decisions")
    result = backtested["result"]
    expected = sorted(
        (
            {k: o[k] for k in ("date", "created", "symbol", "size", "price", "commission")}
            for o in result.orders
            if o["strategy"] == "lstm"
        ),
        key=lambda r: (r["date"], r["symbol"]),
    )
    assert paper_fills == expected and len(expected) > 10
    pd.testing.assert_series_equal(
        equity, result.equity["lstm"], check_names=False, check_index_type=False, rtol=1e-12
    )
    paper_forecasts = sorted(
        (d["date"], s, f["status"], f["model_version"], f["expected_log_return"])
        for d in decisions
        for s, f in d["forecasts"].items()
    )
    backtest_forecasts = sorted(
        (r["date"][:10], r["symbol"], r["status"], r["model_version"], r["expected_log_return"])
        for r in result.forecast["records"]
    )
    assert paper_forecasts == backtest_forecasts
    assert {f[2] for f in paper_forecasts} == {"success"}


class Staggered:
    """Symbol i's bars arrive ``2 * i`` polls after the first symbol's (a feed that lags)."""

    def __init__(self, inner: ReplaySource) -> None:
        self.inner, self.name = inner, "staggered replay"
        self.frames = {s: inner._frames[s] for s in inner.symbols()}
        self.polls = 0

    def symbols(self) -> list[str]:
        return self.inner.symbols()

    def history(self, symbol: str) -> pd.DataFrame:
        return self.inner.history(symbol)

    def seek(self, after: pd.Timestamp) -> None:
        self.frames = {s: f.loc[after + pd.Timedelta(days=1) :] for s, f in self.frames.items()}

    def poll(self) -> Delivery:
        delivery, self.polls = Delivery(), self.polls + 1
        for lag, symbol in enumerate(self.symbols()):
            position = self.polls - 1 - 2 * lag
            frame = self.frames[symbol]
            if 0 <= position < len(frame):
                delivery.bars[symbol] = frame.iloc[[position]]
                delivery.complete_through[symbol] = frame.index[position]
        delivery.finished = all(
            self.polls - 1 - 2 * lag >= len(self.frames[s]) for lag, s in enumerate(self.symbols())
        )
        return delivery


def test_symbols_arriving_staggered_are_released_as_whole_days(tmp_path):
    symbols = ["AAPL", "MSFT", "KO"]
    source = Staggered(replay(symbols, "2020-01-02", "2020-01-31"))
    store = BarStore(tmp_path)
    store.seed({s: source.history(s) for s in symbols})
    hub = BarHub(source, store, symbols, poll_seconds=0)
    for symbol in symbols:
        hub.getdata(symbol)
    days = []
    while not hub.finished:
        day = hub.pump()
        if day is not None:
            days.append(day)
            for feed in hub.feeds.values():
                feed._rows.clear()  # taken by Backtrader
    assert [d.date for d in days] == list(source.inner.calendar)
    assert all(sorted(d.bars) == sorted(symbols) for d in days)
    assert all(frame.index[0] == d.date for d in days for frame in d.bars.values())


@pytest.mark.slow
def test_a_staggered_source_trades_as_a_punctual_one(tmp_path):
    symbols = ["AAPL", "MSFT", "KO"]
    config = tiny_config(**SYNC)
    runs = {}
    for name, source in (
        ("punctual", replay(symbols, until="2020-03-31")),
        ("staggered", Staggered(replay(symbols, until="2020-03-31"))),
    ):
        with PaperSession(
            tmp_path / name, source, config=config, registry=tmp_path / "models", train=False, poll_seconds=0
        ) as session:
            session.run()
            runs[name] = (fills(session), session.equity(), session.counts["mixed_days"])
    assert runs["staggered"][2] == 0 and len(runs["punctual"][0]) > 0
    assert runs["staggered"][0] == runs["punctual"][0]
    pd.testing.assert_series_equal(runs["staggered"][1], runs["punctual"][1])


@pytest.mark.slow
def test_a_model_published_between_rebalances_is_used_at_the_next_and_a_stale_one_gets_no_weight(
    copy_registry, source, tmp_path
):
    registry = copy_registry()
    config = tiny_config(**SYNC, lstm={"max_model_age_days": 45})
    session = PaperSession(
        tmp_path / "state",
        replay(["AAPL", "MSFT", "KO"], "2016-01-04", "2016-03-31"),
        config=config,
        registry=registry.root,
        train=False,
    )
    with session:
        session.step(1)
        first = session.journal.rows("decisions")[-1]
        assert first["date"] == "2016-01-04"
        assert first["models"]["AAPL"]["model"] == "specific/AAPL/v1"
        published = ModelTrainer(config, source, ModelRegistry(registry.root), progress=False).train_specific(
            "AAPL", as_of="2016-01-20"
        )
        assert published.status == "trained"
        new = ModelRegistry(registry.root).resolve("specific", "AAPL", pd.Timestamp("2016-01-20"))
        assert new is not None and new.version == 2
        session.step(20)  # through the February rebalance
        second = session.journal.rows("decisions")[-1]
        assert second["date"] == "2016-02-01"
        assert second["models"]["AAPL"] == {
            **second["models"]["AAPL"],
            "model": "specific/AAPL/v2",
            "sha256": new.metadata["sha256"],
        }
        session.run()
        third = session.journal.rows("decisions")[-1]
    assert third["date"] == "2016-03-01"
    msft = third["forecasts"]["MSFT"]  # trained 2015-12-31: 61 days old
    assert msft["status"] == "stale" and "max_model_age_days" in msft["message"]
    assert msft["score_contribution"] == 0.0 and third["models"]["MSFT"]["status"] == "stale"
    assert (
        third["forecasts"]["AAPL"]["status"] == "success"
        and third["forecasts"]["AAPL"]["score_contribution"] != 0.0
    )


class Flaky:
    """A replay whose polls ``fail`` raise, as a network or a half-copied file would."""

    def __init__(self, inner: ReplaySource, fail: range) -> None:
        self.inner, self.fail, self.polls, self.name = inner, fail, 0, "flaky replay"

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def poll(self) -> Delivery:
        self.polls += 1
        if self.polls in self.fail:
            raise SourceError("connection reset")
        return self.inner.poll()


def test_a_failing_source_disconnects_trades_nothing_and_recovers(tmp_path):
    config = tiny_config(**SYNC)
    runs = {}
    for name, source in (
        ("clean", replay(["AAPL", "KO"], until="2020-02-28")),
        ("flaky", Flaky(replay(["AAPL", "KO"], until="2020-02-28"), range(10, 16))),
    ):
        with PaperSession(
            tmp_path / name, source, config=config, registry=tmp_path / "models", train=False, poll_seconds=0
        ) as session:
            session.run()
            runs[name] = (fills(session), session.equity(), session.journal.rows("events"))
    events = runs["flaky"][2]
    assert [e["kind"] for e in events] == ["disconnected", "reconnected"]
    assert "connection reset" in events[0]["message"]
    assert runs["flaky"][0] == runs["clean"][0]
    pd.testing.assert_series_equal(runs["flaky"][1], runs["clean"][1])


def write_rows(folder: Path, symbol: str, frame: pd.DataFrame, append: bool = False) -> None:
    rows = frame.reset_index()
    rows.columns = ["Date", "Open", "High", "Low", "Close", "Volume"]
    path = folder / f"{symbol}.csv"
    rows.to_csv(
        path,
        mode="a" if append else "w",
        header=not append,
        index=False,
        date_format="%Y-%m-%d",
        float_format="%.17g",
    )


def test_a_watched_folder_waits_for_every_symbol_and_survives_a_half_written_row(tmp_path):
    data = bundled_source()
    folder = tmp_path / "incoming"
    folder.mkdir()
    frames = {s: data.load(s).loc[:"2020-01-10"] for s in ("AAPL", "KO")}
    for symbol, frame in frames.items():
        write_rows(folder, symbol, frame.iloc[:-3])
    source = DirectorySource(folder, ["AAPL", "KO"])
    (tmp_path / "state").mkdir()
    store = BarStore(tmp_path / "state")
    store.seed({s: source.history(s) for s in ("AAPL", "KO")})
    hub = BarHub(source, store, ["AAPL", "KO"], poll_seconds=0)
    for symbol in ("AAPL", "KO"):
        hub.getdata(symbol)
    write_rows(folder, "AAPL", frames["AAPL"].iloc[-3:-2], append=True)
    assert hub.pump() is None and hub.waiting_for() == ["KO"]
    with open(folder / "KO.csv", "a") as half:
        half.write("2020-01-08,58.1,")  # the writer has not finished the row
    assert hub.pump() is None and hub.error and "KO.csv" in hub.error
    assert {feed.status for feed in hub.feeds.values()} == {hub.feeds["KO"].DISCONNECTED}
    write_rows(folder, "KO", frames["KO"].iloc[:-2])  # the writer finishes: KO through 2020-01-08
    day = hub.pump()
    assert day is not None and day.date == frames["AAPL"].index[-3] and sorted(day.bars) == ["AAPL", "KO"]
    assert hub.error is None and store.load("KO").index[-1] == day.date
    pd.testing.assert_frame_equal(store.load("AAPL"), data.load("AAPL").loc[: day.date], check_freq=False)


class VendorFeed:
    """An adapter plugin: a 'vendor' bar source behind ``--source vendor:eod``, and a broker that
    receives every committed day's orders (here it only remembers them)."""

    def __init__(self) -> None:
        self.days: list[tuple[pd.Timestamp, list[dict[str, Any]], dict[str, Any]]] = []

    @hookimpl
    def lstm_bar_source(self, spec: str, symbols: list[str], config: Any) -> Any:
        if spec != "vendor:eod":
            return None
        return ReplaySource(bundled_source(), symbols or ["AAPL", "KO"], "2020-01-02", "2020-02-28")

    @hookimpl
    def lstm_paper_day(
        self,
        when: pd.Timestamp,
        orders: list[dict[str, Any]],
        fills: list[dict[str, Any]],
        book: dict[str, Any],
    ) -> None:
        self.days.append((when, orders, book))


def test_a_plugin_supplies_the_bars_and_receives_every_days_orders(tmp_path):
    adapter = VendorFeed()
    config = tiny_config(**SYNC)
    source = plugin_source("vendor:eod", [], config, extra=[adapter])
    with PaperSession(
        tmp_path / "state",
        source,
        config=config,
        registry=tmp_path / "models",
        train=False,
        plugins=[adapter],
    ) as session:
        session.run()
        orders = session.journal.rows("orders")
        days = session.journal.rows("days")
    assert [d[0] for d in adapter.days] == [pd.Timestamp(d["date"]) for d in days]
    sent = [o["client_id"] for _, day_orders, _ in adapter.days for o in day_orders]
    assert sent == [o["client_id"] for o in orders] and len(sent) == len(set(sent)) > 0
    assert adapter.days[-1][2]["value"] == days[-1]["value"]
    with pytest.raises(LSTMPluginError, match="no plugin provides 'nobody:x'"):
        plugin_source("nobody:x", [], config, extra=[adapter])


@pytest.mark.slow
def test_background_training_never_blocks_a_rebalance_and_its_models_are_picked_up_later(tmp_path):
    config = tiny_config(lstm_service={"backend": "local", "training_threads": 2})
    source = replay(["AAPL", "MSFT", "KO"], "2020-01-02", "2020-03-31")
    with PaperSession(tmp_path / "state", source, config=config, registry=tmp_path / "models") as session:
        session.step(1)  # the first rebalance: trainings go to the workers, the selection does not wait
        first = session.journal.rows("decisions")[0]
        assert {f["status"] for f in first["forecasts"].values()} == {"not_available"} and first[
            "trainings"
        ] == []
        for _ in range(2):  # each month: let the workers finish, then trade to the next rebalance
            assert session.wait_for_training(timeout=300)
            session.step(21)
        decisions = session.journal.rows("decisions")
    assert [d["date"] for d in decisions] == ["2020-01-02", "2020-02-03", "2020-03-02"]
    later = decisions[-1]
    assert {f["status"] for f in later["forecasts"].values()} == {"success"}
    for model in later["models"].values():
        assert pd.Timestamp(model["trained_at"]) < pd.Timestamp(later["date"]) and len(model["sha256"]) == 64
    reported = [t["status"] for d in decisions for t in d["trainings"]]
    assert reported and set(reported) <= {
        "trained",
        "reused",
        "candidate",
    }  # reported at the rebalance after they finished


@pytest.mark.slow
def test_the_paper_trading_notebook_runs_top_to_bottom(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(Path(__file__).parents[1] / "notebooks" / "paper_trading.ipynb", as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    text = "".join(o.get("text", "") + o.get("data", {}).get("text/plain", "") for o in outputs)
    assert "resumed at 2020-02-" in text and "2020-04-30: value" in text
    assert "specific/" in text or "universal/" in text  # models trained in the background were used
    assert any("image/png" in o.get("data", {}) for o in outputs)


@pytest.mark.slow
def test_a_watched_folder_resumed_before_its_first_day_does_not_replay_its_history(tmp_path):
    data = bundled_source()
    folder = tmp_path / "incoming"
    folder.mkdir()
    for symbol in ("AAPL", "KO"):
        write_rows(folder, symbol, data.load(symbol).loc[:"2020-01-10"])
    config = tiny_config(**SYNC)
    with PaperSession(
        tmp_path / "state",
        DirectorySource(folder, ["AAPL", "KO"]),
        config=config,
        registry=tmp_path / "models",
        train=False,
        poll_seconds=0,
    ) as first:
        assert first.store.known_through() == pd.Timestamp("2020-01-10")  # history only, nothing released
    for symbol in ("AAPL", "KO"):
        write_rows(folder, symbol, data.load(symbol).loc["2020-01-13":"2020-01-14"], append=True)
    with PaperSession(
        tmp_path / "state",
        DirectorySource(folder, ["AAPL", "KO"]),
        config=config,
        registry=tmp_path / "models",
        train=False,
        poll_seconds=0,
    ) as second:
        second.step(2)
        days = [d["date"] for d in second.journal.rows("days")]
    assert days == ["2020-01-13", "2020-01-14"]
