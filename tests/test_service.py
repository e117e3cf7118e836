"""The training service with real trainings: queue order, passes, retraining policy, failures, monitoring.

Most tests use the ``sync`` backend on a manual clock, so every step is deterministic. Where a job
must be *in flight* while the test acts, ``HeldBackend`` holds submitted jobs until the test
releases them — and then runs them for real.
"""

from __future__ import annotations

import json
import random
import shutil
import threading
from concurrent.futures import Future

import pandas as pd
import pytest

from lstm_plugin import ManualClock, ModelRegistry, hookimpl
from lstm_plugin.core.data import DataSource
from lstm_plugin.training.jobs import TrainJob, run_training_job
from lstm_plugin.training.policy import ModelState, compute_priority
from lstm_plugin.training.service import SNAPSHOT_FILE, ServiceClosedError, TrainingService

from .conftest import tiny_config


class HeldBackend:
    """Holds jobs until :meth:`release`; then trains them for real, in submission order."""

    name = "held"

    def __init__(self, slots: int = 1) -> None:
        self.slots = slots
        self.held: list[tuple[TrainJob, Future]] = []

    def submit(self, job: TrainJob) -> Future:
        future: Future = Future()
        self.held.append((job, future))
        return future

    def release(self, count: int | None = None) -> None:
        batch, self.held = self.held[:count], self.held[count:] if count is not None else []
        for job, future in batch:
            try:
                future.set_result(run_training_job(job))
            except Exception as exc:
                future.set_exception(exc)

    def shutdown(self, timeout=None) -> None:
        for _, future in self.held:
            future.cancel()


class FlakySource(DataSource):
    """A real source whose ``load`` raises ``OSError`` for ``symbol`` the first ``times`` calls."""

    def __init__(self, inner: DataSource, symbol: str, times: int) -> None:
        super().__init__()
        self.inner, self.symbol, self.left = inner, symbol, times
        self.name = inner.name

    def symbols(self):
        return self.inner.symbols()

    def load(self, symbol, end=None):
        if symbol == self.symbol and self.left > 0:
            self.left -= 1
            raise OSError(f"network share for {symbol} unavailable")
        return self.inner.load(symbol, end)


def make_service(source, registry_root, when="2015-12-31", backend="sync", **sections) -> TrainingService:
    config = tiny_config(**sections)
    registry = ModelRegistry(registry_root, config.registry.keep_versions)
    return TrainingService(config, source, registry, clock=ManualClock(when), backend=backend)


@pytest.fixture
def service(source, tmp_path):
    with make_service(source, tmp_path / "models", lstm_service={"universal": {"enabled": False}}) as svc:
        yield svc


def queue_symbols(service: TrainingService) -> list[str]:
    return [entry["symbol"] for entry in service.snapshot()["queue"]]


# ---------------------------------------------------------------- plan and queue
def test_schedule_lists_symbols_best_first_with_reasons(trained, copy_registry, source):
    registry = copy_registry()
    clock = ManualClock("2016-03-01")  # AAPL and MSFT models are 61 days old: outdated
    config = trained["config"]
    service = TrainingService(config, source, registry, clock=clock, backend="sync")
    plan = service.create_training_schedule(
        portfolio=["AAPL", "KO"], watchlist=["MSFT"], scanning=["XOM", "AAPL"]
    )
    assert [e["priority"] for e in plan] == sorted(e["priority"] for e in plan)
    by_symbol = {e["symbol"]: e for e in plan}
    assert set(by_symbol) == {"AAPL", "KO", "MSFT", "XOM"}
    assert by_symbol["AAPL"]["category"] == "portfolio"  # its best entry of the two
    assert by_symbol["KO"] == {
        "symbol": "KO",
        "model_type": "specific",
        "category": "portfolio",
        "position": 1,
        "priority": 20 + 5 - 20,
        "reasons": ["portfolio 20", "position 1 +5", "model not available -20"],
        "status": "not_available",
        "reliability": None,
    }
    for symbol, category, position in (("AAPL", "portfolio", 0), ("MSFT", "watchlist", 0)):
        reliability = registry.resolve("specific", symbol).reliability
        expected = compute_priority(
            {"portfolio": 20, "watchlist": 40}[category],
            ModelState(True, True, reliability),
            reliability_threshold=config.lstm.reliability_threshold,
            position=position,
        )
        assert by_symbol[symbol]["priority"] == expected.value
        assert (
            by_symbol[symbol]["status"] == "outdated" and "model outdated -10" in by_symbol[symbol]["reasons"]
        )
    assert by_symbol["XOM"]["priority"] == 60 - 20


def test_a_queued_symbol_keeps_the_better_priority(service):
    first = service.request_model_training(["XOM", "KO"], category="scanning")
    assert first["requested"] == 2 and first["details"]["KO"] == {
        "status": "queued",
        "priority": 45,
        "reasons": ["scanning 60", "position 1 +5", "model not available -20"],
    }
    promoted = service.request_model_training(["KO"], category="portfolio")["details"]["KO"]
    assert promoted["status"] == "already_queued" and promoted["priority"] == 0
    kept = service.request_model_training(["KO"], category="scanning")["details"]["KO"]
    assert kept["status"] == "already_queued" and kept["priority"] == 0
    assert queue_symbols(service) == ["KO", "XOM"]
    assert len(service.snapshot()["queue"]) == 2


def test_equal_priorities_train_in_insertion_order(service):
    for symbol in ("XOM", "KO", "PG"):
        service.request_model_training([symbol], category="watchlist")
    assert queue_symbols(service) == ["XOM", "KO", "PG"]
    report = service.update()
    assert report["started"] == ["specific/XOM", "specific/KO", "specific/PG"]


def test_one_pass_starts_at_most_max_training_models(source, tmp_path):
    service = make_service(
        source, tmp_path, lstm={"max_training_models": 2}, lstm_service={"universal": {"enabled": False}}
    )
    service.request_model_training(["KO", "PG", "XOM"], category="portfolio")
    assert service.update()["started"] == ["specific/KO", "specific/PG"]
    assert queue_symbols(service) == ["XOM"]
    assert service.registry.symbols() == ["KO", "PG"]
    assert service.update()["started"] == ["specific/XOM"]


def test_a_symbol_in_training_is_counted_not_queued_twice(source, tmp_path):
    backend = HeldBackend(slots=2)
    service = make_service(source, tmp_path, backend=backend, lstm_service={"universal": {"enabled": False}})
    service.request_model_training(["KO"])
    service.update()
    assert service.training_state("KO") == "training"
    again = service.request_model_training(["KO", "PG"])
    assert again["already_training"] == 1 and again["requested"] == 1
    assert again["details"]["KO"]["status"] == "already_training"
    assert service.forecasts.get_model_status("KO")["status"] == "training"
    assert service.forecasts.get_model_status("PG")["status"] == "scheduled"
    backend.release()  # KO finishes; its slot is refilled with PG within the same pass
    assert service.training_state("KO") is None and service.training_state("PG") == "training"
    backend.release()
    assert service.idle() and service.registry.symbols() == ["KO", "PG"]


def test_plugin_adjusts_priority_and_is_named_in_reasons(source, tmp_path):
    class PreferXom:
        @hookimpl
        def lstm_training_priority(self, symbol, category, priority, state):
            return -100 if symbol == "XOM" else None

    class Broken:
        @hookimpl
        def lstm_training_priority(self, symbol, category, priority, state):
            return "soon"

    config = tiny_config(lstm_service={"universal": {"enabled": False}})
    service = TrainingService(
        config,
        source,
        ModelRegistry(tmp_path),
        clock=ManualClock("2015-12-31"),
        backend="sync",
        plugins=[PreferXom(), Broken()],
    )
    plan = service.create_training_schedule(portfolio=["KO"], scanning=["XOM"])
    assert [e["symbol"] for e in plan] == ["XOM", "KO"]
    assert plan[0]["priority"] == 60 - 20 - 100
    assert any(r.startswith("plugin ") and r.endswith("-100") for r in plan[0]["reasons"])


def test_bad_symbols_are_rejected_and_counted(service):
    result = service.request_model_training(["../../etc", "ZZZZ", "KO"])
    assert result["rejected"] == 2 and result["requested"] == 1
    assert result["details"]["../../etc"]["status"] == "rejected"
    assert "not in" in result["details"]["ZZZZ"]["error"]
    with pytest.raises(ValueError, match="category"):
        service.request_model_training(["KO"], category="vip")


# ---------------------------------------------------------------- retraining policy
def test_worse_model_is_kept_as_candidate_and_the_status_says_so(trained, copy_registry, source):
    registry = copy_registry()
    current = registry.resolve("specific", "AAPL")
    config = tiny_config(
        lstm_service={"retraining": {"min_reliability_for_update": 0.99}, "universal": {"enabled": False}}
    )
    clock = ManualClock("2016-03-01")
    service = TrainingService(config, source, registry, clock=clock, backend="sync")
    service.request_model_training(["AAPL"])
    service.update()
    outcome = service.snapshot()["done"][0]["outcome"]
    assert outcome["status"] == "candidate" and "below min_reliability_for_update" in outcome["stage_reason"]
    assert registry.resolve("specific", "AAPL").version == current.version  # still serving the old one
    assert registry.resolve("specific", "AAPL", candidates=True).version == outcome["model_version"]
    status = service.forecasts.get_model_status("AAPL")
    assert status["model_version"] == current.version and status["status"] == "outdated"
    assert status["candidate"]["model_version"] == outcome["model_version"]
    assert "min_reliability_for_update" in status["candidate"]["reason"]
    assert service.forecasts.get_lstm_prediction("AAPL")["model_version"] == current.version


@pytest.mark.parametrize(("current_reliability", "promoted"), [(0.0, True), (1.0, False)])
def test_a_retrained_model_replaces_the_current_one_only_when_better(
    trained, tmp_path, source, current_reliability, promoted
):
    """The current model's reliability is set either side of any new one, so both outcomes are proven."""
    target = tmp_path / f"registry_{current_reliability}"
    shutil.copytree(trained["root"], target)
    old = ModelRegistry(target).resolve("specific", "MSFT")
    meta_path = old.onnx_path.with_suffix(".json")
    metadata = json.loads(meta_path.read_text())
    metadata["metrics"]["reliability"] = current_reliability
    meta_path.write_text(json.dumps(metadata))
    registry = ModelRegistry(target)
    config = tiny_config(
        lstm_service={"retraining": {"min_reliability_for_update": 0.0}, "universal": {"enabled": False}}
    )
    service = TrainingService(config, source, registry, clock=ManualClock("2016-03-01"), backend="sync")
    service.request_model_training(["MSFT"])
    service.update()
    new = registry.resolve("specific", "MSFT", candidates=True)
    assert new.version > old.version
    served = registry.resolve("specific", "MSFT")
    if promoted:
        assert (served.version, new.stage) == (new.version, "production")
    else:
        assert served.version == old.version and new.stage == "candidate"
        assert "worse than the current" in new.metadata["stage_reason"]


def test_automatic_retraining_follows_the_clock(trained, copy_registry, source):
    registry = copy_registry()  # AAPL, MSFT and the universal model, all trained 2015-12-31
    config = tiny_config(
        lstm_service={
            "retraining": {"force_retrain_age_days": 45},
            "universal": {"retrain_days": 90, "symbols": ["AAPL", "MSFT", "KO", "XOM"]},
        }
    )
    clock = ManualClock("2016-01-20")
    service = TrainingService(
        config, source, registry, clock=clock, backend="sync", universe=["AAPL", "MSFT"]
    )
    assert service.update()["started"] == []
    clock.set("2016-02-20")  # 51 days: the specific models are due, the universal one is not
    report = service.update()
    assert sorted(report["started"]) == ["specific/AAPL", "specific/MSFT"]
    assert any("auto retrain: 51 days old" in r for r in service.snapshot()["done"][0]["reasons"])
    clock.set("2016-04-05")  # universal 96 days old; AAPL/MSFT attempts 45 days old: not yet
    assert service.update()["started"] == ["universal/DEFAULT"]
    universal = registry.resolve("universal", "DEFAULT", candidates=True)
    assert universal.trained_at == pd.Timestamp("2016-04-05")
    assert universal.metadata["symbols"] == ["AAPL", "KO", "MSFT", "XOM"]  # its own configured pool


def test_auto_retrain_off_trains_only_what_is_asked(trained, copy_registry, source):
    config = tiny_config(lstm_service={"retraining": {"auto_retrain": False}})
    service = TrainingService(
        config, source, copy_registry(), clock=ManualClock("2017-01-01"), backend="sync", universe=["AAPL"]
    )
    assert service.update()["started"] == []


def test_tick_spaces_passes_by_training_interval(service):
    clock = service.clock
    assert service.tick() is not None
    clock.advance(seconds=3600)
    assert service.tick() is None
    clock.advance(seconds=86400 - 3600)
    assert service.tick() is not None


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
