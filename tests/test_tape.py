"""Vectorised backtest forecasts: the same bits as per-bar serving, in one call per model version and span."""

from __future__ import annotations

import pandas as pd
import pytest

from lstm_plugin import ForecastService, ManualClock, bundled_source, get_plugin_manager
from lstm_plugin.serving.tape import ForecastTape

from .conftest import tiny_config
from .sample_plugins import TenDayMomentum

SYMBOLS = ["AAPL", "MSFT", "KO", "XOM", "PG"]


def services(trained, **sections):
    config = tiny_config(**sections)
    clock = ManualClock("2016-06-30")
    source = bundled_source()
    return ForecastTape(config, trained["registry"], source, clock), ForecastService(
        config, trained["registry"], source, clock
    )


@pytest.mark.slow
def test_tape_equals_per_bar_calls_to_the_bit(trained):
    tape, live = services(trained)
    days = bundled_source().load("AAPL").loc["2015-12-28":"2016-06-30"].index
    for day in days:
        batch = tape.predict_many(SYMBOLS, as_of=day)
        for symbol in SYMBOLS:
            assert batch[symbol] == live.get_lstm_prediction(symbol, as_of=day, force_refresh=True)
    assert {p["status"] for p in tape.predict_many(SYMBOLS, as_of="2015-12-30").values()} == {"not_available"}
    # 3 model versions (AAPL, MSFT, universal); the specific ones span 21 bars, the universal one 63
    calls = tape.runner.run_count
    assert calls <= 3 * (len(days) // 21 + 2)
    assert len(days) * len(SYMBOLS) > 20 * calls


def test_one_call_per_version_and_span(trained):
    tape, _ = services(trained)
    days = pd.bdate_range("2016-01-04", "2016-01-29")
    for day in days:
        tape.predict_many(SYMBOLS, as_of=day)
    assert tape.runner.run_count == 3  # one per model version: 20 bars fit in every span


def test_failures_match_per_bar_serving(trained):
    tape, live = services(trained)
    assert tape.predict_many(["../x"], as_of="2016-03-31")["../x"]["status"] == "error"
    assert tape.predict_many(["NOPE"], as_of="2016-03-31")["NOPE"]["status"] == "insufficient_data"
    plugins = get_plugin_manager(tiny_config().plugins, plugins=[TenDayMomentum()])
    other = ForecastTape(
        tiny_config(), trained["registry"], bundled_source(), ManualClock("2016-06-30"), plugins=plugins
    )
    answer = other.predict_many(["AAPL"], as_of="2016-03-31")["AAPL"]
    assert answer["status"] == "error" and "the model expects" in answer["message"]
    with pytest.raises(ValueError, match="after the clock's now"):
        tape.predict_many(["AAPL"], as_of="2016-07-01")
    frame = bundled_source().load("AAPL")
    given = tape.predict_many(["AAPL"], {"AAPL": frame}, as_of="2016-03-31")[
        "AAPL"
    ]  # caller's frames: per-bar path
    assert given == live.get_lstm_prediction("AAPL", frame, as_of="2016-03-31", force_refresh=True)
