"""Paper runs on other sources: watched folders, a plugin's bars and adapter, background training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from lstm_plugin.backtrader.live import (
    BarHub,
    BarStore,
    DirectorySource,
    PaperSession,
    ReplaySource,
)
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
