"""The training service, continued: failures and retries, changes while running, monitoring, Ctrl-C."""

from __future__ import annotations

import json
import random
import threading

import pytest

from lstm_plugin import ManualClock, ModelRegistry, hookimpl
from lstm_plugin.training.service import SNAPSHOT_FILE, ServiceClosedError, TrainingService

from .conftest import tiny_config
from .service_helpers import FlakySource, HeldBackend, make_service, queue_symbols, service  # noqa: F401 - fixtures among them


# ---------------------------------------------------------------- failures
def test_transient_failure_is_retried_with_backoff_on_the_clock(source, tmp_path):
    flaky = FlakySource(source, "KO", times=2)
    config = tiny_config(
        lstm_service={"max_retries": 2, "retry_backoff_seconds": 60, "universal": {"enabled": False}}
    )
    clock = ManualClock("2015-12-31")
    service = TrainingService(config, flaky, ModelRegistry(tmp_path), clock=clock, backend="sync")
    service.request_model_training(["KO", "PG"])
    service.update()
    snapshot = service.snapshot()
    assert [j["symbol"] for j in snapshot["done"]] == ["PG"]  # the failure did not stop the other job
    (ko,) = snapshot["queue"]
    assert ko["attempts"] == 1 and "network share" in ko["error"]
    assert ko["not_before"] == "2015-12-31T00:01:00"
    assert service.update()["started"] == []  # not due yet
    clock.advance(seconds=60)
    assert service.update()["started"] == ["specific/KO"]
    assert service.snapshot()["queue"][0]["not_before"] == "2015-12-31T00:03:00"  # backoff doubled
    clock.advance(seconds=120)
    service.update()
    snapshot = service.snapshot()
    assert [j["symbol"] for j in snapshot["done"]] == ["PG", "KO"] and snapshot["done"][1]["attempts"] == 3
    assert snapshot["counts"]["retried"] == 2 and not snapshot["failed"]


def test_failure_after_the_last_retry_is_recorded(source, tmp_path):
    flaky = FlakySource(source, "KO", times=10)
    config = tiny_config(
        lstm_service={"max_retries": 1, "retry_backoff_seconds": 0, "universal": {"enabled": False}}
    )
    service = TrainingService(
        config, flaky, ModelRegistry(tmp_path), clock=ManualClock("2015-12-31"), backend="sync"
    )
    service.request_model_training(["KO"])
    assert service.drain() is True
    (failed,) = service.snapshot()["failed"]
    assert failed["attempts"] == 2 and failed["error"] == "OSError: network share for KO unavailable"
    assert failed["permanent"] is False


def test_bad_input_fails_at_once_without_retries(service):
    service.clock.set("1995-01-01")  # before any bundled bar
    service.request_model_training(["KO"])
    service.update()
    (failed,) = service.snapshot()["failed"]
    assert (
        failed["attempts"] == 1
        and failed["permanent"]
        and "no bars at or before 1995-01-01" in failed["error"]
    )


# ---------------------------------------------------------------- changing while running
def test_symbols_added_and_removed_while_running(source, tmp_path):
    backend = HeldBackend(slots=1)
    service = make_service(source, tmp_path, backend=backend, lstm_service={"universal": {"enabled": False}})
    service.request_model_training(["KO", "PG", "XOM"], category="watchlist")
    service.update()  # KO in flight
    assert service.remove_symbols(["XOM"]) == 1
    assert "XOM" not in service.universe
    service.request_model_training(["JNJ"], category="portfolio")  # added while KO trains
    backend.release()
    backend.release()
    backend.release()
    assert service.idle()
    assert [j["symbol"] for j in service.snapshot()["done"]] == ["KO", "JNJ", "PG"]
    assert service.registry.symbols() == ["JNJ", "KO", "PG"]


def test_empty_service(service):
    assert service.update()["started"] == []
    assert service.drain(timeout=1) is True and service.wait(timeout=1) is True
    snapshot = service.snapshot()
    assert (
        snapshot["queue"] == [] and snapshot["in_flight"] == [] and snapshot["mean_training_seconds"] is None
    )
    assert service.shutdown(timeout=1) == {"dropped": 0, "stopped": 0}
    with pytest.raises(ServiceClosedError):
        service.request_model_training(["KO"])


@pytest.mark.slow
def test_eight_threads_sending_a_thousand_requests_lose_nothing(service):
    symbols = service.source.symbols()[:20]
    categories = ["portfolio", "on_demand", "watchlist", "scanning"]
    totals: list[dict] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def client(seed: int) -> None:
        rng = random.Random(seed)
        start.wait()
        try:
            for _ in range(1000):
                picked = rng.sample(symbols, 3) + (["../bad"] if rng.random() < 0.05 else [])
                result = service.request_model_training(picked, category=rng.choice(categories))
                totals.append(result)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and len(totals) == 8000
    asked = sum(len(r["details"]) for r in totals)
    assert sum(r["requested"] + r["already_training"] + r["rejected"] for r in totals) == asked
    queue = service.snapshot()["queue"]
    assert sorted(e["symbol"] for e in queue) == sorted(symbols)  # every symbol once, none twice
    assert service.snapshot()["counts"]["queued"] == len(symbols)
    # the queue order is the priority order, and each job kept the best priority any request gave it
    assert [e["priority"] for e in queue] == sorted(e["priority"] for e in queue)
    assert all(e["priority"] == 0 or e["category"] != "portfolio" for e in queue)


# ---------------------------------------------------------------- monitoring
def test_snapshot_reports_queue_jobs_failures_timing_and_models(source, tmp_path):
    flaky = FlakySource(source, "PG", times=99)
    config = tiny_config(
        lstm_service={"max_retries": 0, "universal": {"enabled": False}}, lstm={"max_training_models": 2}
    )
    service = TrainingService(
        config, flaky, ModelRegistry(tmp_path), clock=ManualClock("2015-12-31"), backend="sync"
    )
    service.request_model_training(["KO", "PG", "XOM"], category="portfolio")
    service.update()
    snapshot = service.snapshot()
    assert [e["symbol"] for e in snapshot["queue"]] == ["XOM"] and snapshot["queue"][0]["reasons"]
    assert [e["symbol"] for e in snapshot["done"]] == ["KO"] and snapshot["done"][0]["seconds"] > 0
    assert snapshot["failed"][0]["symbol"] == "PG" and "network share" in snapshot["failed"][0]["error"]
    assert snapshot["mean_training_seconds"] > 0
    assert snapshot["models_by_status"] == {"not_available": 1, "ready": 1, "scheduled": 1}
    saved = json.loads((tmp_path / SNAPSHOT_FILE).read_text())
    assert saved["counts"] == snapshot["counts"] and saved["backend"] == "sync"


def test_monitoring_off_writes_no_snapshot_file(source, tmp_path):
    service = make_service(
        source, tmp_path, lstm_service={"enable_monitoring": False, "universal": {"enabled": False}}
    )
    service.request_model_training(["KO"])
    service.update()
    assert not (tmp_path / SNAPSHOT_FILE).exists()
    assert service.snapshot()["monitoring"] is False


def test_drain_on_a_manual_clock_waits_retry_backoff_in_wall_time(source, tmp_path):
    import time

    flaky = FlakySource(source, "KO", times=1)
    config = tiny_config(
        lstm_service={"max_retries": 1, "retry_backoff_seconds": 0.5, "universal": {"enabled": False}}
    )
    service = TrainingService(
        config, flaky, ModelRegistry(tmp_path), clock=ManualClock("2015-12-31"), backend="sync"
    )
    service.request_model_training(["KO"])
    started = time.monotonic()
    assert service.drain(timeout=60) is True  # the clock never moves, yet the retry runs
    assert time.monotonic() - started >= 0.5
    (done,) = service.snapshot()["done"]
    assert done["attempts"] == 2 and done["outcome"]["trained_at"] == "2015-12-31T00:00:00"


def test_ctrl_c_during_a_sync_training_keeps_the_job(source, tmp_path):
    class Interrupt:
        @hookimpl
        def lstm_build_model(self, n_features, config):
            raise KeyboardInterrupt

    config = tiny_config(lstm_service={"universal": {"enabled": False}})
    service = TrainingService(
        config,
        source,
        ModelRegistry(tmp_path),
        clock=ManualClock("2015-12-31"),
        backend="sync",
        plugins=[Interrupt()],
    )
    service.request_model_training(["KO"])
    with pytest.raises(KeyboardInterrupt):
        service.update()
    snapshot = service.snapshot()
    assert (
        [j["symbol"] for j in snapshot["queue"]] == ["KO"]
        and snapshot["in_flight"] == []
        and not snapshot["failed"]
    )
