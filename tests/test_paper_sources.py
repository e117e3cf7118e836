"""Paper runs on other sources: watched folders, a plugin's bars and adapter, background training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from lstm_plugin.backtrader.live import (
    BarHub,
    BarSource,
    BarStore,
    Delivery,
    DirectorySource,
    PaperSession,
    ReplaySource,
)
from lstm_plugin.backtrader.live.delivery import clean_history
from lstm_plugin.backtrader.live.feed import LiveFeed
from lstm_plugin.backtrader.live.sources import LIVE, SourceCapabilities, capabilities_of
from lstm_plugin.cli.paper import plugin_source
from lstm_plugin.core.data import bundled_source
from lstm_plugin.core.errors import LSTMPluginError
from lstm_plugin.plugins.hookspecs import hookimpl

from .conftest import tiny_config
from .paper_runs import SYNC, replay


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


class VendorBars:
    """A vendor's end-of-day bars, written from scratch against the port: no ``ReplaySource`` behind it.

    It releases one trading day per poll from ``start`` and declares what a replay promises
    (its first day, its calendar, that it waits for the night), so a run knows when it is done.
    """

    def __init__(self, symbols: list[str], start: str, until: str) -> None:
        self.name = "vendor eod"
        self._symbols = symbols
        frames = {s: bundled_source().load(s) for s in symbols}
        self._past = {s: f.loc[: pd.Timestamp(start) - pd.Timedelta(days=1)] for s, f in frames.items()}
        self._live = {s: f.loc[start:until] for s, f in frames.items()}
        self._days = pd.DatetimeIndex(sorted(set().union(*(f.index for f in self._live.values()))))
        self._next = 0
        self.capabilities = SourceCapabilities(
            replay_start=pd.Timestamp(start), calendar=self._days, overnight=True
        )

    def symbols(self) -> list[str]:
        return list(self._symbols)

    def history(self, symbol: str) -> pd.DataFrame:
        return self._past[symbol]

    def seek(self, after: pd.Timestamp) -> None:
        self._next = int(self._days.searchsorted(after, side="right"))

    def poll(self) -> Delivery:
        if self._next >= len(self._days):
            return Delivery(finished=True)
        day = self._days[self._next]
        self._next += 1
        bars = {s: f.loc[[day]] for s, f in self._live.items() if day in f.index}
        return Delivery(bars, dict.fromkeys(self._symbols, day), finished=self._next >= len(self._days))


class VendorFeed:
    """An adapter plugin: a vendor's bar source behind ``--source vendor:eod``, and a broker that
    receives every committed day's orders (here it only remembers them)."""

    def __init__(self) -> None:
        self.days: list[tuple[pd.Timestamp, list[dict[str, Any]], dict[str, Any]]] = []

    @hookimpl
    def lstm_bar_source(self, spec: str, symbols: list[str], config: Any) -> Any:
        if spec != "vendor:eod":
            return None
        return VendorBars(symbols or ["AAPL", "KO"], "2020-01-02", "2020-02-28")

    @hookimpl
    def lstm_paper_day(
        self,
        when: pd.Timestamp,
        orders: list[dict[str, Any]],
        fills: list[dict[str, Any]],
        book: dict[str, Any],
    ) -> None:
        self.days.append((when, orders, book))


def _journal(session: PaperSession) -> dict[str, list[dict[str, Any]]]:
    """Days, orders and fills, the client ids without the run's random prefix."""
    rows = {table: session.journal.rows(table) for table in ("days", "orders", "fills")}
    for row in rows["orders"] + rows["fills"]:
        row["client_id"] = row["client_id"].split(":", 1)[1]
    return rows


def test_a_foreign_source_from_a_plugin_replays_end_to_end_as_the_built_in_replay_does(tmp_path):
    adapter = VendorFeed()
    config = tiny_config(**SYNC)
    source = plugin_source("vendor:eod", [], config, extra=[adapter])
    assert not isinstance(source, ReplaySource) and isinstance(source, BarSource)
    opened = {"config": config, "registry": tmp_path / "models", "train": False}
    with PaperSession(tmp_path / "vendor", source, plugins=[adapter], **opened) as session:
        assert session.pending_days() == len(source.capabilities.calendar)
        session.run()
        vendor = _journal(session)
        assert session.meta["start"] == "2020-01-02" and session.pending_days() == 0
    built_in = ReplaySource(bundled_source(), ["AAPL", "KO"], "2020-01-02", "2020-02-28")
    with PaperSession(tmp_path / "replay", built_in, **opened) as session:
        session.run()
        assert _journal(session) == vendor  # the same days, orders and fills, to the cent
    assert [d[0] for d in adapter.days] == [pd.Timestamp(d["date"]) for d in vendor["days"]]
    sent = [o["client_id"].split(":", 1)[1] for _, day_orders, _ in adapter.days for o in day_orders]
    assert sent == [o["client_id"] for o in vendor["orders"]] and len(sent) == len(set(sent)) > 0
    assert adapter.days[-1][2]["value"] == vendor["days"][-1]["value"]
    again = VendorBars(["AAPL", "KO"], "2020-01-02", "2020-02-28")
    with PaperSession(tmp_path / "vendor", again, plugins=[adapter], **opened) as session:
        session.run()
        assert session.last_stop == "finished" and _journal(session) == vendor  # its calendar is done
    assert len(adapter.days) == len(vendor["days"])
    with pytest.raises(LSTMPluginError, match="no plugin provides 'nobody:x'"):
        plugin_source("nobody:x", [], config, extra=[adapter])


def test_a_source_that_declares_nothing_is_a_live_feed() -> None:
    assert capabilities_of(object()) == LIVE and LIVE.replay_start is None and LIVE.calendar is None
    replay_caps = ReplaySource(bundled_source(), ["KO"], "2020-01-02", "2020-01-10", speed=2).capabilities
    assert replay_caps.replay_start == pd.Timestamp("2020-01-02") and not replay_caps.overnight
    assert len(replay_caps.calendar) == 7


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
    assert "live_hit_rate" in text and "lstm-plugin dashboard --models" in text  # the dashboard's snapshot


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


class ScriptedSource:
    """A plugin's bar source that is not a ``ReplaySource``: it hands out scripted deliveries one per poll
    (and, like many vendor feeds, never delivers a bar twice)."""

    name = "vendor"

    def __init__(self, history: dict[str, pd.DataFrame], deliveries: list[dict[str, pd.DataFrame]]) -> None:
        self._history, self._deliveries = history, list(deliveries)

    def symbols(self) -> list[str]:
        return sorted(self._history)

    def history(self, symbol: str) -> pd.DataFrame:
        return self._history[symbol]

    def seek(self, after: pd.Timestamp) -> None:
        pass

    def poll(self) -> Delivery:
        if not self._deliveries:
            return Delivery(finished=True)
        bars = self._deliveries.pop(0)
        through = {
            s: max(
                f.index.max() if isinstance(f.index, pd.DatetimeIndex) else pd.Timestamp(f["Date"].max()),
                pd.Timestamp.min,
            )
            for s, f in bars.items()
        }
        return Delivery(bars, through)


def vendor_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A vendor's layout: capitalised columns in another order, the dates in a column."""
    shuffled = frame.reset_index().rename(columns=str.capitalize)
    return shuffled[["Volume", "Close", "Date", "Low", "Open", "High"]]


def hub_over(source: Any, tmp_path: Path) -> tuple[BarHub, BarStore]:
    assert isinstance(source, BarSource) and not isinstance(source, ReplaySource)
    store = BarStore(tmp_path)
    store.seed(
        {s: clean_history(source.history(s), source.name, s) for s in source.symbols()}
    )  # as a session does
    hub = BarHub(source, store, source.symbols(), poll_seconds=0, max_move=10.0)
    for symbol in source.symbols():
        hub.getdata(symbol)
    return hub, store


def take(hub: BarHub) -> Any:
    """The next released day, after the feeds have taken the one before."""
    for feed in hub.feeds.values():
        feed._rows.clear()
    return hub.pump()


def test_a_foreign_source_with_another_column_order_trades_on_the_true_prices(tmp_path):
    data = bundled_source()
    frames = {s: data.load(s).loc["2019-11-01":"2020-01-10"] for s in ("AAPL", "KO")}
    days = frames["AAPL"].loc["2020-01-02":].index
    source = ScriptedSource(
        {s: vendor_frame(f.loc[:"2019-12-31"]) for s, f in frames.items()},
        [{s: vendor_frame(f.loc[[day]]) for s, f in frames.items()} for day in days],
    )
    hub, store = hub_over(source, tmp_path)
    released = [take(hub) for _ in days]
    assert [d.date for d in released] == list(days) and hub.error is None
    for symbol, frame in frames.items():
        pd.testing.assert_frame_equal(store.load(symbol), frame, check_freq=False)  # by name, every value
        ((day, values),) = hub.feeds[symbol]._rows  # the last day, as the feed hands it to Backtrader
        assert (
            day == days[-1] and values.tolist() == frame.iloc[-1].tolist()
        )  # open, high, low, close, volume


@pytest.mark.parametrize(
    "spoil, message",
    [
        (lambda f: f.assign(Close=np.nan), r"vendor › KO › row 0 \(2020-01-03\) › close is missing"),
        (lambda f: pd.concat([f, f]), r"vendor › KO › row 1 \(2020-01-03\) › duplicate date"),
        (
            lambda f: f.assign(Date=pd.Timestamp("2019-12-21")),
            r"vendor › KO › a bar dated 2019-12-21, before "
            r"2020-01-02 which the run already has \(a date going backwards\)",
        ),
        (
            lambda f: f.assign(Close=f["Close"] * 1000, High=f["High"] * 1000),
            r"vendor › KO › 2020-01-03 › high [\d.]+ is 1000 times the previous close .*"
            r"data\.max_move \(10\)",
        ),
    ],
    ids=["nan-price", "duplicate-date", "date-going-backwards", "thousand-fold-jump"],
)
def test_a_bad_row_is_a_source_failure_the_next_good_read_recovers_from(tmp_path, spoil, message):
    import re

    data = bundled_source()
    frames = {s: data.load(s).loc["2019-11-01":"2020-01-06"] for s in ("AAPL", "KO")}
    good = {s: vendor_frame(f.loc[["2020-01-03"]]) for s, f in frames.items()}
    source = ScriptedSource(
        {s: f.loc[:"2019-12-31"] for s, f in frames.items()},
        [
            {s: vendor_frame(f.loc[["2020-01-02"]]) for s, f in frames.items()},
            {"AAPL": good["AAPL"], "KO": spoil(good["KO"])},  # refused whole: the day waits for KO
            good,
        ],
    )
    hub, store = hub_over(source, tmp_path)
    assert take(hub).date == pd.Timestamp("2020-01-02")
    assert take(hub) is None and re.search(message, hub.error), hub.error
    assert {feed.status for feed in hub.feeds.values()} == {LiveFeed.DISCONNECTED}
    assert store.last_bar("KO") == store.last_bar("AAPL") == pd.Timestamp("2020-01-02")  # nothing of it kept
    assert take(hub).date == pd.Timestamp("2020-01-03") and hub.error is None
    pd.testing.assert_frame_equal(store.load("KO"), frames["KO"].loc[:"2020-01-03"], check_freq=False)


@pytest.mark.slow
def test_a_thousand_fold_jump_in_a_watched_file_is_journaled_and_that_symbol_waits(tmp_path):
    data = bundled_source()
    folder = tmp_path / "incoming"
    folder.mkdir()
    frames = {s: data.load(s).loc[:"2020-01-10"] for s in ("AAPL", "KO")}
    for symbol, frame in frames.items():
        write_rows(folder, symbol, frame.loc[:"2020-01-06"])
    session_options = dict(
        config=tiny_config(**SYNC), registry=tmp_path / "models", train=False, poll_seconds=0
    )
    with PaperSession(
        tmp_path / "state", DirectorySource(folder, ["AAPL", "KO"]), **session_options
    ) as session:
        session.run(limit=0)
        write_rows(folder, "AAPL", frames["AAPL"].loc["2020-01-07":], append=True)
        write_rows(folder, "KO", frames["KO"].loc["2020-01-07":] * [1000, 1000, 1000, 1000, 1], append=True)
        session.on_wait = lambda why: session.request_stop() if why.startswith("disconnected") else None
        session.run()
        events = session.journal.rows("events")
        assert session.journal.rows("days") == []  # no day traded on the jump
    assert events[-1]["kind"] == "disconnected" and "KO" in events[-1]["message"]
    assert "beyond data.max_move (10)" in events[-1]["message"]
    write_rows(folder, "KO", frames["KO"])  # the writer fixes the file
    with PaperSession(
        tmp_path / "state", DirectorySource(folder, ["AAPL", "KO"]), **session_options
    ) as session:
        session.step(4)
        days = [d["date"] for d in session.journal.rows("days")]
    assert days == ["2020-01-07", "2020-01-08", "2020-01-09", "2020-01-10"]


class FolderClaim:
    """A plugin that claims the built-in ``folder:`` spec for one folder: plugins answer first."""

    @hookimpl
    def lstm_bar_source(self, spec: str, symbols: list[str], config: Any) -> Any:
        return VendorBars(["KO"], "2020-01-02", "2020-01-10") if spec == "folder:vendor" else None


def test_the_watched_folder_is_a_built_in_source_offered_through_the_hook(tmp_path):
    folder = tmp_path / "incoming"
    folder.mkdir()
    for symbol in ("AAPL", "KO"):
        write_rows(folder, symbol, bundled_source().load(symbol).loc[:"2020-01-10"])
    config = tiny_config()
    source = plugin_source(f"folder:{folder}", [], config)
    assert isinstance(source, DirectorySource) and source.symbols() == ["AAPL", "KO"]
    assert plugin_source(f"folder:{folder}", ["KO"], config).symbols() == ["KO"]
    assert isinstance(plugin_source("folder:vendor", [], config, extra=[FolderClaim()]), VendorBars)
    with pytest.raises(LSTMPluginError, match="missing"):
        plugin_source(f"folder:{tmp_path / 'missing'}", [], config)
