"""The training service with real trainings: queue order, passes, retraining policy, failures, monitoring.

Most tests use the ``sync`` backend on a manual clock, so every step is deterministic. Where a job
must be *in flight* while the test acts, ``HeldBackend`` holds submitted jobs until the test
releases them — and then runs them for real.
"""

from __future__ import annotations

import pandas as pd
import pytest

from lstm_plugin import ManualClock, ModelRegistry, hookimpl
from lstm_plugin.training.policy import ModelState, compute_priority
from lstm_plugin.training.service import TrainingService

from .conftest import tiny_config
from .service_helpers import FlakySource, HeldBackend, make_service, queue_symbols, retrain_msft, service  # noqa: F401 - fixtures among them


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


def test_a_retrain_and_the_served_model_are_compared_on_the_same_segment(trained, copy_registry, source):
    """Both models scored on the new one's held-out test segment: the recorded gap and its noise decide."""
    old, new = retrain_msft(copy_registry(), source)
    basis = new.metadata["stage_basis"]
    assert new.version > old.version and basis["served_sha256"] == old.metadata["sha256"]
    worse = basis["accuracy_gap"] < -2 * basis["gap_standard_error"]
    assert new.stage == ("candidate" if worse else "production") == basis["stage"]
    assert "on the same test segment" in new.metadata["stage_reason"]


@pytest.mark.parametrize(("gap", "promoted"), [(-0.001, True), (-0.2, False)])
def test_only_a_retrain_worse_beyond_the_noise_is_shelved(
    trained, copy_registry, source, monkeypatch, gap, promoted
):
    registry = copy_registry()
    monkeypatch.setattr("lstm_plugin.training.trainer.paired_accuracy_gap", lambda *arrays: (gap, 0.02))
    old, new = retrain_msft(registry, source)
    served = registry.resolve("specific", "MSFT")
    if promoted:
        assert (served.version, new.stage) == (new.version, "production")
    else:
        assert served.version == old.version and new.stage == "candidate"
        assert new.metadata["stage_rule"] == "worse than the served model"


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
