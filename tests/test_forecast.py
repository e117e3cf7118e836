"""Serving: the documented prediction dicts, specific -> universal -> not_available, as_of, TTL cache,
threads, batching."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from lstm_plugin import ForecastService, ManualClock, ModelRegistry
from lstm_plugin.model.model_files import INPUT_NAME, OUTPUT_NAMES
from lstm_plugin.model.sessions import ROWS_PER_RUN, run_in_blocks
from lstm_plugin.serving.inference import OnnxRunner, select_providers

from .conftest import tiny_config

DOCUMENTED_KEYS = {
    "status",
    "predicted_direction",
    "confidence",
    "price_change_pct",
    "model_type",
    "reliability",
    "model_version",
    "as_of",
}


def service(trained, when="2016-03-31", registry=None, **config_sections) -> ForecastService:
    from lstm_plugin import bundled_source

    return ForecastService(
        tiny_config(**config_sections),
        registry or trained["registry"],
        bundled_source(),
        clock=ManualClock(when),
    )


def test_specific_prediction_has_the_documented_shape(trained):
    p = service(trained).get_lstm_prediction("AAPL")
    assert set(p) >= DOCUMENTED_KEYS
    assert p["status"] == "success" and p["model_type"] == "specific" and p["model_version"] == 1
    assert p["predicted_direction"] in ("up", "down", "neutral")
    assert 1 / 3 <= p["confidence"] <= 1
    assert p["confidence"] == max(p["probabilities"].values())
    assert p["price_change_pct"] == pytest.approx(np.expm1(p["expected_log_return"]) * 100)
    assert p["as_of"] == "2016-03-31T00:00:00"
    assert p["reliability"] == trained["outcomes"]["AAPL"].record.metadata["metrics"]["reliability"]


def test_universal_serves_symbols_without_their_own_model(trained):
    forecasts = service(trained).predict_many(["KO", "XOM", "JNJ"])
    assert {p["model_type"] for p in forecasts.values()} == {"universal"}
    assert all(p["status"] == "success" for p in forecasts.values())


def test_without_universal_model_status_is_not_available(copy_registry):
    registry = copy_registry()
    import shutil

    shutil.rmtree(registry.root / "universal")
    p = ForecastService(tiny_config(), registry, clock=ManualClock("2016-03-31")).get_lstm_prediction("KO")
    assert p["status"] == "not_available" and p["model_type"] is None and set(p) >= DOCUMENTED_KEYS


def test_models_trained_after_as_of_are_never_used(trained):
    early = service(trained, when="2015-12-30").predict_many(["AAPL", "KO"])
    assert {p["status"] for p in early.values()} == {"not_available"}


def test_forecast_uses_only_bars_up_to_the_clock(trained):
    p = service(trained, when="2016-03-27").get_lstm_prediction("AAPL")  # a Sunday
    assert p["as_of"] == "2016-03-24T00:00:00"  # Good Friday 2016-03-25 was a holiday


def test_changing_future_prices_changes_nothing_now(trained, source):
    frame = source.load("AAPL")
    noisy = frame.copy()
    noisy.loc["2016-04-01":] *= 1.7
    a = service(trained).get_lstm_prediction("AAPL", data=frame)
    b = service(trained).get_lstm_prediction("AAPL", data=noisy)
    assert a == b


def test_ttl_cache_expires_on_the_clock_without_sleeping(trained, monkeypatch):
    forecasts = service(trained, lstm={"prediction_cache_ttl": 3600})
    calls = []
    real = forecasts.runner.run
    monkeypatch.setattr(
        forecasts.runner, "run", lambda record, windows: calls.append(1) or real(record, windows)
    )
    first = forecasts.get_lstm_prediction("AAPL")
    forecasts.clock.advance(seconds=3599)
    second = forecasts.get_lstm_prediction("AAPL")
    assert len(calls) == 1 and second["cached"] and not first["cached"]
    assert {k: v for k, v in second.items() if k != "cached"} == {
        k: v for k, v in first.items() if k != "cached"
    }
    forecasts.clock.advance(seconds=1)  # 3600 s after the first call: expired
    third = forecasts.get_lstm_prediction("AAPL")
    assert len(calls) == 2 and not third["cached"]
    assert forecasts.get_lstm_prediction("AAPL")["cached"]
    forced = forecasts.get_lstm_prediction("AAPL", force_refresh=True)
    assert len(calls) == 3 and not forced["cached"]


def test_cache_is_keyed_by_model_version(copy_registry):
    registry = copy_registry()
    forecasts = ForecastService(
        tiny_config(), registry, __import__("lstm_plugin").bundled_source(), clock=ManualClock("2016-03-31")
    )
    assert forecasts.get_lstm_prediction("AAPL")["model_version"] == 1
    record = registry.resolve("specific", "AAPL")
    registry.publish(
        "specific", "AAPL", record.read_bytes(), dict(record.metadata, trained_at="2016-03-30T00:00:00")
    )
    p = forecasts.get_lstm_prediction("AAPL")
    assert p["model_version"] == 2 and not p["cached"]


def test_one_inference_call_per_model_in_use(trained):
    forecasts = service(trained)
    before = forecasts.runner.run_count
    results = forecasts.predict_many(["AAPL", "MSFT", "KO", "XOM", "JNJ", "PG"])
    assert forecasts.runner.run_count - before == 3  # AAPL, MSFT, and one universal call for four symbols
    singles = {s: service(trained).get_lstm_prediction(s) for s in results}
    for s in results:
        assert results[s]["probabilities"] == pytest.approx(singles[s]["probabilities"], abs=1e-6)


@pytest.mark.slow
def test_sixteen_threads_agree_with_one(trained):
    symbols = ["AAPL", "MSFT", "KO", "XOM", "JNJ", "PG", "WMT", "IBM"]
    expected = service(trained, lstm={"prediction_cache_ttl": 0}).predict_many(symbols)
    shared = service(trained, lstm={"prediction_cache_ttl": 0})
    barrier = threading.Barrier(16)

    def work(i):
        barrier.wait()
        return [shared.get_lstm_prediction(symbols[(i + k) % len(symbols)]) for k in range(len(symbols) * 2)]

    with ThreadPoolExecutor(16) as pool:
        outputs = [p for chunk in pool.map(work, range(16)) for p in chunk]
    assert len(outputs) == 16 * 16
    for p in outputs:
        assert p == expected[p["symbol"]]
    assert shared.runner.cached() == 3


def test_graceful_statuses(trained, tmp_path):
    forecasts = service(trained)
    short = __import__("lstm_plugin").bundled_source().load("AAPL").iloc[-20:]
    assert forecasts.get_lstm_prediction("AAPL", data=short)["status"] == "insufficient_data"
    assert forecasts.get_lstm_prediction("../etc")["status"] == "error"
    none = ForecastService(tiny_config(), ModelRegistry(tmp_path / "empty"), clock=ManualClock("2016-03-31"))
    assert none.get_lstm_prediction("AAPL")["status"] == "not_available"


def test_model_status(trained):
    forecasts = service(trained, when="2016-01-15")
    ready = forecasts.get_model_status("AAPL")
    assert ready["status"] == "ready" and ready["model_type"] == "specific" and ready["age_days"] == 15
    assert ready["reliability"] is not None and ready["quality"] is not None and ready["trained_at"]
    assert service(trained, when="2016-03-31").get_model_status("AAPL")["status"] == "outdated"
    missing = forecasts.get_model_status("KO")
    assert missing["status"] == "not_available" and missing["served_by"] == "universal"
    busy = ForecastService(
        tiny_config(),
        trained["registry"],
        clock=ManualClock("2016-01-15"),
        training_state=lambda s: "training",
    )
    assert busy.get_model_status("AAPL")["status"] == "training"


@pytest.mark.parametrize(
    ("installed", "device", "expected", "warns"),
    [
        (["CPUExecutionProvider"], "cpu", ["CPUExecutionProvider"], False),
        (["CPUExecutionProvider"], "auto", ["CPUExecutionProvider"], True),
        (["CUDAExecutionProvider", "CPUExecutionProvider"], "cpu", ["CPUExecutionProvider"], False),
        (
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            "auto",
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            False,
        ),
        (
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            "cuda",
            ["CUDAExecutionProvider", "CPUExecutionProvider"],
            False,
        ),
    ],
)
def test_providers_follow_the_device_and_what_onnxruntime_has(
    monkeypatch, caplog, installed, device, expected, warns
):
    from lstm_plugin.serving import inference

    monkeypatch.setattr(inference.ort, "get_available_providers", lambda: installed)
    with caplog.at_level("WARNING", logger="lstm_plugin.serving.inference"):
        assert select_providers(device) == expected
    assert ("no CUDA provider" in caplog.text) == warns


def test_a_cpu_runner_serves_on_the_cpu_provider(trained):
    runner = OnnxRunner("cpu", intra_op_threads=1)
    record = trained["registry"].resolve("specific", "AAPL")
    assert runner.session(record).get_providers() == ["CPUExecutionProvider"]


def test_same_seed_same_served_predictions(tmp_path, source):
    """Two independent trainings of the same job serve bit-identical forecasts from ONNX."""
    outputs = []
    for name in ("a", "b"):
        cfg = tiny_config()
        registry = ModelRegistry(tmp_path / name)
        from lstm_plugin import ModelTrainer

        ModelTrainer(cfg, source, registry, progress=False).train_specific("JNJ", as_of="2013-06-28")
        forecasts = ForecastService(cfg, registry, source, ManualClock("2013-09-30"))
        outputs.append(forecasts.get_lstm_prediction("JNJ"))
    assert outputs[0]["status"] == "success"
    assert outputs[0] == outputs[1]


def test_big_batches_run_in_blocks_with_the_bits_of_one_call_and_no_arena(trained):
    """A walk-forward scores 144,000 windows at once; an arena would keep that much in every session."""
    record = trained["registry"].resolve("specific", "AAPL")
    runner = OnnxRunner("cpu", intra_op_threads=1)
    session = runner.session(record)
    assert session.get_session_options().enable_cpu_mem_arena is False
    shape = session.get_inputs()[0].shape
    windows = np.random.default_rng(0).normal(size=(2 * ROWS_PER_RUN + 17, shape[1], shape[2]))
    windows = windows.astype("float32")
    whole = session.run(list(OUTPUT_NAMES), {INPUT_NAME: windows})
    blocks = run_in_blocks(session, OUTPUT_NAMES, INPUT_NAME, windows)
    served = runner.run(record, windows)
    for one, blocked, through_the_runner in zip(whole, blocks, served):
        assert blocked.shape == one.shape and np.array_equal(blocked, one)
        assert np.array_equal(through_the_runner, one)
