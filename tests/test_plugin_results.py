"""What plugins hand back is checked, wherever they run: a result of the wrong kind names the plugin in one
line, a plugin that fails in a training worker is reported by the driver as it is in the driver's own
process, and one that hangs costs its job (``lstm_service.job_timeout``), not the service."""

from __future__ import annotations

import logging
import time

import pytest

from lstm_plugin import ForecastService, ManualClock, ModelRegistry, ModelTrainer
from lstm_plugin.core.errors import ModelError
from lstm_plugin.training.service import TrainingService

from .conftest import tiny_config
from .sample_plugins import Exploding, SleepyFeatures, TextFeature, TextModel


def test_a_feature_column_of_text_names_the_plugin_and_the_column(source, tmp_path, trained):
    trainer = ModelTrainer(
        tiny_config(), source, ModelRegistry(tmp_path), progress=False, extra_plugins=[TextFeature()]
    )
    with pytest.raises(
        ModelError,
        match=r"plugin '[^']*TextFeature[^']*' › lstm_features › column 'mood' is not "
        r"numeric \(got: 'calm'\)",
    ):
        trainer.train_specific("KO", as_of="2015-12-31")
    forecasts = ForecastService(
        tiny_config(), trained["registry"], source, ManualClock("2016-03-01"), plugins=trainer.plugins
    )
    answer = forecasts.get_lstm_prediction("AAPL")
    assert answer["status"] == "error" and "column 'mood' is not numeric" in answer["message"]


def test_a_model_hook_that_returns_text_names_the_plugin(source, tmp_path):
    trainer = ModelTrainer(
        tiny_config(), source, ModelRegistry(tmp_path), progress=False, extra_plugins=[TextModel()]
    )
    with pytest.raises(
        ModelError,
        match=r"plugin '[^']*TextModel[^']*' › lstm_build_model › returned a str, not a "
        r"torch\.nn\.Module",
    ):
        trainer.train_specific("KO", as_of="2015-12-31")


@pytest.mark.slow
def test_a_plugin_that_fails_in_a_worker_is_reported_by_the_driver(source, tmp_path, caplog):
    config = tiny_config(lstm_service={"universal": {"enabled": False}})
    with (
        caplog.at_level(logging.WARNING, "lstm_plugin.plugins.manager"),
        TrainingService(
            config,
            source,
            ModelRegistry(tmp_path),
            clock=ManualClock("2015-12-31"),
            backend="local",
            plugins=[Exploding()],
        ) as service,
    ):
        service.request_model_training(["KO"])
        assert service.drain(timeout=300)
        assert service.snapshot()["counts"]["done"] == 1  # trained without the plugin, as in the driver
    warned = [r.getMessage() for r in caplog.records]
    assert any(
        "failed in lstm_features (in the training of specific KO) and was skipped: RuntimeError: boom"
        in message
        for message in warned
    ), warned
    assert any(name.endswith("Exploding") or "Exploding" in name for name in service.plugins.broken)


@pytest.mark.slow
def test_a_plugin_that_hangs_costs_its_job_and_the_pool_recovers(source, tmp_path):
    marker = tmp_path / "hang"
    marker.write_text("x")
    config = tiny_config(
        lstm_service={"universal": {"enabled": False}, "job_timeout": 5, "training_threads": 1}
    )
    with TrainingService(
        config,
        source,
        ModelRegistry(tmp_path / "models"),
        clock=ManualClock("2015-12-31"),
        backend="local",
        plugins=[SleepyFeatures(str(marker))],
    ) as service:
        started = time.monotonic()
        service.request_model_training(["KO"])
        assert service.drain(timeout=120) and time.monotonic() - started < 60
        (failed,) = service.snapshot()["failed"]
        assert failed["permanent"] and "ran longer than lstm_service.job_timeout (5 s)" in failed["error"]
        marker.unlink()  # the next job does not hang: a new pool trains it
        service.request_model_training(["XOM"])
        assert service.drain(timeout=300)
        assert [d["symbol"] for d in service.snapshot()["done"]] == ["XOM"]
