"""Live-paper runs in one process: the same trades as the backtest, the barrier, hot-swapped and stale
models, a failing source, and the state folder's guards."""

from __future__ import annotations

import shutil
from typing import Any

import pandas as pd
import pytest

from lstm_plugin.backtrader.backtest import run_main_job
from lstm_plugin.backtrader.live import (
    BarHub,
    BarStore,
    Delivery,
    PaperSession,
    ReplaySource,
    SourceError,
)
from lstm_plugin.core.data import bundled_source
from lstm_plugin.serving.registry import ModelRegistry
from lstm_plugin.training.trainer import ModelTrainer

from .conftest import tiny_config
from .paper_runs import FIVE, SYNC, fills, replay


@pytest.fixture(scope="module")
def backtested(tmp_path_factory):
    """``run_main_job`` over 2020-01..04 from a cold registry, which it leaves warm."""
    root = tmp_path_factory.mktemp("backtested")
    config = tiny_config(**SYNC)
    result = run_main_job(
        config, bundled_source(), root / "models", FIVE, "2020-01-02", "2020-04-30", progress=False
    )
    return {"config": config, "result": result, "models": root / "models"}


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
