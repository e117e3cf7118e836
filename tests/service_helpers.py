"""What the training-service tests share: a held backend, a flaky source, a service on a manual clock."""

from __future__ import annotations

from concurrent.futures import Future

import pytest

from lstm_plugin import ManualClock, ModelRecord, ModelRegistry
from lstm_plugin.core.data import DataSource
from lstm_plugin.training.jobs import TrainJob, run_training_job
from lstm_plugin.training.service import TrainingService

from .conftest import tiny_config


class HeldBackend:
    """Holds jobs until :meth:`release`; then trains them for real, in submission order."""

    name = "held"
    inline = False  # its futures finish later, when released
    by_path = False  # its jobs carry their bars

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


def retrain_msft(registry: ModelRegistry, source: DataSource) -> tuple[ModelRecord, ModelRecord]:
    """Retrain MSFT of the trained registry (copied) at 2016-03-01 on the sync backend: ``(the model served
    before, the new version)``, the new one promoted or shelved."""
    old = registry.resolve("specific", "MSFT")
    config = tiny_config(
        lstm_service={"retraining": {"min_reliability_for_update": 0.0}, "universal": {"enabled": False}}
    )
    service = TrainingService(config, source, registry, clock=ManualClock("2016-03-01"), backend="sync")
    service.request_model_training(["MSFT"])
    service.update()
    return old, registry.resolve("specific", "MSFT", candidates=True)
