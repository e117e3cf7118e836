"""A version that cannot serve never answers: refused when its bytes are read (a tensor in another file, a
wrong input type), or set aside the first time onnxruntime cannot load or run it or answers NaN — then the
previous version serves, in forecasts, backtests and promotions alike, with one warning naming the version."""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil

import backtrader as bt
import numpy as np
import onnx
import pandas as pd
import pytest
from onnx.external_data_helper import _get_all_tensors, uses_external_data

from lstm_plugin import ForecastService, ManualClock, ModelRegistry
from lstm_plugin.backtrader import LSTMForecastAnalyzer, LSTMRebalanceStrategy
from lstm_plugin.model.model_files import onnx_signature
from lstm_plugin.serving.tape import ForecastTape
from lstm_plugin.training.trainer import ModelTrainer

from .crafted_models import (
    craft_version,
    external_constant,
    external_weights,
    nan_head_bias,
    nan_when_last_return_falls,
    rehashed,
    rewrite,
    unknown_operator,
)

V2_AT = "2016-06-30T00:00:00"


@pytest.fixture
def crafted_registry(trained, tmp_path):
    """A copy of the session registry; ``make(change)`` registers AAPL v2 (v1's graph changed), dated
    2016-06-30."""

    def make(change, symbol: str = "AAPL"):
        root = tmp_path / "models"
        if not root.exists():
            shutil.copytree(trained["root"], root)
        craft_version(root, symbol, change, V2_AT, tmp_path)
        return ModelRegistry(root)

    return make


@pytest.mark.parametrize("change", [external_weights("outside.bin"), external_constant])
def test_the_wire_reader_finds_every_tensor_kept_in_another_file(trained, tmp_path, change):
    path = tmp_path / "model.onnx"
    path.write_bytes(trained["outcomes"]["AAPL"].record.read_bytes())
    rewrite(path, change, tmp_path)
    model = onnx.load(str(path), load_external_data=False)
    by_onnx = {t.name for t in _get_all_tensors(model) if uses_external_data(t)}
    found = onnx_signature(path.read_bytes())
    assert by_onnx and {item.split(" ")[0] for item in found.external} == by_onnx
    assert onnx_signature(trained["outcomes"]["AAPL"].record.read_bytes()).external == ()


def test_a_version_onnxruntime_cannot_load_is_set_aside_and_warned_once(crafted_registry, source, caplog):
    registry = crafted_registry(unknown_operator)
    service = ForecastService(tiny(), registry, source, ManualClock("2016-07-05"))
    with caplog.at_level(logging.WARNING, "lstm_plugin.serving.registry"):
        first = service.get_lstm_prediction("AAPL")
        again = service.get_lstm_prediction("AAPL", force_refresh=True, as_of="2016-07-01")
    assert first["status"] == again["status"] == "success" and first["model_version"] == 1
    warned = [r.getMessage() for r in caplog.records if "v000002.onnx" in r.getMessage()]
    assert len(warned) == 1 and "onnxruntime cannot load it" in warned[0]
    assert registry.resolve("specific", "AAPL", "2016-07-05").version == 1


def test_with_no_sound_version_left_the_universal_model_answers(trained, tmp_path, source):
    root = tmp_path / "models"
    shutil.copytree(trained["root"], root)
    rewrite(root / "specific" / "MSFT" / "v000001.onnx", nan_head_bias, tmp_path)
    meta = root / "specific" / "MSFT" / "v000001.json"
    meta.write_text(json.dumps(rehashed(meta, json.loads(meta.read_text()))))
    service = ForecastService(tiny(), ModelRegistry(root), source, ManualClock("2016-03-01"))
    answer = service.predict_many(["MSFT", "AAPL"])
    assert answer["MSFT"]["status"] == "success" and answer["MSFT"]["model_type"] == "universal"
    assert all(np.isfinite(list(p["probabilities"].values())).all() for p in answer.values())


def test_a_nan_on_a_later_bar_never_sets_aside_the_version_at_an_earlier_one(crafted_registry, source):
    """The tape computes a version's rows for bars ahead in one call; a NaN on a later bar is a fact about
    later prices, so it must not change the forecast of an earlier bar."""
    registry = crafted_registry(nan_when_last_return_falls)
    closes = source.load("AAPL")["close"].loc["2016-07-01":"2016-08-31"]
    rising = closes.index[1:][np.diff(np.log(closes.to_numpy())) > 0]
    falling = closes.index[1:][np.diff(np.log(closes.to_numpy())) < 0]
    up_day = next(d for d in rising if (falling > d).any())
    down_day = next(d for d in falling if d > up_day)
    tape = ForecastTape(tiny(), registry, source, ManualClock(up_day))
    assert tape.get_lstm_prediction("AAPL")["model_version"] == 2  # its row is finite: v2 serves
    tape.clock = ManualClock(down_day)
    later = tape.get_lstm_prediction("AAPL")
    assert later["model_version"] == 1 and np.isfinite(later["expected_log_return"])


def test_a_backtest_never_ranks_a_forecast_that_is_not_finite(crafted_registry, source):
    registry = crafted_registry(nan_head_bias)
    cerebro = bt.Cerebro(stdstats=False)
    for symbol in ("AAPL", "MSFT", "KO", "XOM"):
        frame = source.load(symbol)
        cerebro.adddata(
            bt.feeds.PandasData(
                dataname=frame, fromdate=dt.datetime(2015, 6, 1), todate=dt.datetime(2016, 9, 30)
            ),
            name=symbol,
        )
    cerebro.addstrategy(
        LSTMRebalanceStrategy,
        config=tiny(),
        registry=str(registry.root),
        start="2016-01-04",
        train=False,
        num_symbols=2,
    )
    cerebro.addanalyzer(LSTMForecastAnalyzer, _name="lstm", daily=False)
    records = cerebro.run()[0].analyzers.lstm.get_analysis()["records"]
    after = [r for r in records if r["symbol"] == "AAPL" and pd.Timestamp(r["date"]) > pd.Timestamp(V2_AT)]
    assert after and all(r["model_version"] == 1 and r["status"] == "success" for r in after)
    assert all(np.isfinite(r["expected_log_return"]) for r in records if r["status"] == "success")


def test_a_retrain_is_compared_with_the_version_that_serves_in_place_of_a_broken_one(
    crafted_registry, source
):
    registry = crafted_registry(unknown_operator)
    trainer = ModelTrainer(tiny(), source, registry, progress=False)
    outcome = trainer.train_specific("AAPL", as_of="2016-09-30")
    assert outcome.record.metadata["stage_basis"]["accuracy_gap"] is not None
    assert (
        outcome.record.metadata["stage_basis"]["served_sha256"]
        == registry.resolve("specific", "AAPL", "2016-01-04").metadata["sha256"]
    )  # compared with v1, the version that serves in v2's place


def tiny():
    from .conftest import tiny_config

    return tiny_config()
