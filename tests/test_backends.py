"""Local worker processes and Ray tasks, for real: same predictions as training in the caller, clean
shutdown."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time

import numpy as np
import pytest

from lstm_plugin import FrameSource, ManualClock, ModelRegistry
from lstm_plugin.serving.forecast import ForecastService
from lstm_plugin.training.service import TrainingService

from .conftest import tiny_config
from .sample_plugins import DiesOnce, FailingTraining

SYMBOLS = ["AAPL", "MSFT", "KO", "XOM"]
AS_OF, PREDICT_AT = "2015-12-31", "2016-03-31"


def train_with(backend: str, source, root, **service_settings):
    config = tiny_config(lstm_service={"universal": {"enabled": False}, **service_settings})
    registry = ModelRegistry(root)
    with TrainingService(config, source, registry, clock=ManualClock(AS_OF), backend=backend) as service:
        service.request_model_training(SYMBOLS)
        assert service.drain(timeout=300)
        snapshot = service.snapshot()
    assert [j["symbol"] for j in snapshot["failed"]] == []
    forecasts = ForecastService(config, registry, source, ManualClock(PREDICT_AT))
    return snapshot, registry, forecasts.predict_many(SYMBOLS)


def assert_same_models(left: ModelRegistry, right: ModelRegistry) -> None:
    """Same seeded jobs, same bytes: the ONNX files are identical whichever backend trained them."""
    for symbol in SYMBOLS:
        assert (
            left.resolve("specific", symbol).metadata["sha256"]
            == right.resolve("specific", symbol).metadata["sha256"]
        )


def assert_same_predictions(left: dict, right: dict) -> None:
    for symbol in SYMBOLS:
        a, b = left[symbol], right[symbol]
        assert a["status"] == b["status"] == "success"
        for name in ("down", "neutral", "up"):
            assert abs(a["probabilities"][name] - b["probabilities"][name]) <= 1e-6
        assert abs(a["expected_log_return"] - b["expected_log_return"]) <= 1e-6


@pytest.fixture(scope="module")
def sync_run(source, tmp_path_factory):
    return train_with("sync", source, tmp_path_factory.mktemp("sync"))


@pytest.mark.slow
def test_local_workers_give_the_same_predictions(sync_run, source, tmp_path):
    snapshot, registry, predictions = train_with("local", source, tmp_path, training_threads=2)
    assert_same_predictions(sync_run[2], predictions)
    assert_same_models(sync_run[1], registry)
    assert snapshot["backend"] == "local" and snapshot["workers"] == 2
    for symbol in SYMBOLS:
        meta = registry.resolve("specific", symbol).metadata
        assert meta["torch_threads"] == 1  # fixed by the job (model.torch_threads), not by the pool
        assert not meta["worker"].endswith(f":{os.getpid()}")  # trained in another process


@pytest.mark.slow
def test_worker_failure_comes_back_with_its_error(source, tmp_path):
    config = tiny_config(
        lstm_service={
            "training_threads": 1,
            "max_retries": 1,
            "retry_backoff_seconds": 0,
            "universal": {"enabled": False},
        }
    )
    service = TrainingService(
        config,
        source,
        ModelRegistry(tmp_path),
        clock=ManualClock(AS_OF),
        backend="local",
        plugins=[FailingTraining()],
    )
    with service:
        service.request_model_training(["KO"])
        assert service.drain(timeout=120)
        (failed,) = service.snapshot()["failed"]
    assert failed["attempts"] == 2 and failed["error"] == "RuntimeError: out of memory in the training worker"
    assert ModelRegistry(tmp_path).symbols() == []


@pytest.mark.slow
def test_a_killed_worker_is_replaced_and_its_job_retried(source, tmp_path):
    config = tiny_config(
        lstm_service={
            "training_threads": 1,
            "max_retries": 2,
            "retry_backoff_seconds": 0,
            "universal": {"enabled": False},
        }
    )
    plugin = DiesOnce(str(tmp_path / "died"))
    registry = ModelRegistry(tmp_path / "models")
    with TrainingService(
        config, source, registry, clock=ManualClock(AS_OF), backend="local", plugins=[plugin]
    ) as service:
        service.request_model_training(["KO", "PG"])
        assert service.drain(timeout=180)
        snapshot = service.snapshot()
    assert (tmp_path / "died").exists()
    assert sorted(j["symbol"] for j in snapshot["done"]) == ["KO", "PG"] and not snapshot["failed"]
    assert any("BrokenProcessPool" in e for j in snapshot["done"] for e in j["errors"])
    assert registry.symbols() == ["KO", "PG"]


@pytest.mark.slow
def test_shutdown_stops_a_long_training_and_leaves_no_partial_files(source, tmp_path):
    config = tiny_config(
        model={"epochs": 5000, "patience": 5000, "lookback_years": 10.0},
        lstm_service={"training_threads": 1, "universal": {"enabled": False}},
    )
    service = TrainingService(
        config, source, ModelRegistry(tmp_path), clock=ManualClock(AS_OF), backend="local"
    )
    service.request_model_training(["AAPL", "MSFT"])
    service.update()
    time.sleep(4)  # the worker has started and is inside the fit loop
    processes = list(service.backend._executor._processes.values())
    started = time.monotonic()
    assert service.shutdown(timeout=0.5) == {"dropped": 1, "stopped": 1}
    assert time.monotonic() - started < 15
    assert all(not p.is_alive() for p in processes)
    leftovers = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert leftovers == ["service.json"]
    snapshot = service.snapshot()
    assert snapshot["closed"] and snapshot["counts"]["cancelled"] == 2


# ---------------------------------------------------------------- Ray, on a real local cluster
@pytest.fixture(scope="module")
def ray_cluster():
    import ray

    folder = tempfile.mkdtemp(prefix="lstm-test-ray-")
    # a Ray of the test's own, whatever cluster runs on the machine (discovery would join it)
    ray.init(
        address="local", num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, _temp_dir=folder
    )
    yield ray
    ray.shutdown()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_ray_tasks_give_the_same_predictions_without_shared_disk(ray_cluster, sync_run, source, tmp_path):
    in_memory = FrameSource({s: source.load(s) for s in SYMBOLS})  # nothing on disk a worker could read
    snapshot, registry, predictions = train_with("ray", in_memory, tmp_path)
    assert snapshot["backend"] == "ray" and snapshot["workers"] == 2
    assert_same_predictions(sync_run[2], predictions)
    assert_same_models(sync_run[1], registry)
    workers = {registry.resolve("specific", s).metadata["worker"] for s in SYMBOLS}
    assert all(not w.endswith(f":{os.getpid()}") for w in workers)
    assert ray_cluster.is_initialized()  # the backend did not shut down a cluster it did not start


def test_ray_failure_is_recorded(ray_cluster, source, tmp_path):
    config = tiny_config(lstm_service={"max_retries": 0, "universal": {"enabled": False}})
    with TrainingService(
        config,
        source,
        ModelRegistry(tmp_path),
        clock=ManualClock(AS_OF),
        backend="ray",
        plugins=[FailingTraining()],
    ) as service:
        service.request_model_training(["KO"])
        assert service.drain(timeout=120)
        (failed,) = service.snapshot()["failed"]
    assert "out of memory in the training worker" in failed["error"]


@pytest.mark.slow
def test_predictions_are_bit_identical_between_sync_runs(sync_run, source, tmp_path):
    _, _, again = train_with("sync", source, tmp_path)
    for symbol in SYMBOLS:
        assert np.array_equal(
            list(sync_run[2][symbol]["probabilities"].values()), list(again[symbol]["probabilities"].values())
        )


@pytest.mark.slow
def test_a_plugin_defined_in_main_is_refused_for_local_workers(source, tmp_path):
    import types

    from lstm_plugin import ConfigError, hookimpl

    class InNotebook:
        @hookimpl
        def lstm_features(self, ohlcv, config):
            return None

    class ProgressInNotebook:  # driver-side hooks only: it never travels to a worker
        @hookimpl
        def lstm_after_train(self, result):
            return None

    InNotebook.__module__ = ProgressInNotebook.__module__ = "__main__"
    with pytest.raises(ConfigError, match="defined in __main__, which local worker processes cannot import"):
        TrainingService(
            tiny_config(), source, ModelRegistry(tmp_path), backend="local", plugins=[InNotebook()]
        )
    module = types.ModuleType("__main__")
    module.lstm_features = InNotebook.lstm_features
    with pytest.raises(ConfigError, match="__main__"):
        TrainingService(tiny_config(), source, ModelRegistry(tmp_path), backend="local", plugins=[module])
    TrainingService(tiny_config(), source, ModelRegistry(tmp_path), backend="sync", plugins=[InNotebook()])
    local = TrainingService(
        tiny_config(), source, ModelRegistry(tmp_path), backend="local", plugins=[ProgressInNotebook()]
    )
    local.shutdown()
