"""Prefetch: trainings started before their pass, because their time and inputs are known in advance.

(Named *prefetch*, not look-ahead: in a backtester look-ahead means leakage, and a prefetched
training reads no bar after its own date.)

In a backtest the universal model's retraining dates follow from the rebalance calendar alone
(``universal.retrain_days``, the best priority), and a training as of a later bar reads only bars up
to it, which a backtest's data source already holds. Such a job can run on a worker that would
otherwise wait at the end of a pass. Its result stays here, unpublished and unseen by any forecast,
until the pass at its time starts the same job (same bars, same settings) and takes the result
instead of training again; a job never asked for is dropped. Specific models are not predicted:
which of them train depends on what the portfolio selected. Nor is the universal model when continual
tuning looks after it, or when it warm-starts: its settings or its starting weights are known only at
its pass.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future

import pandas as pd

from lstm_plugin.serving.freshness import retrain_due
from lstm_plugin.serving.registry import UNIVERSAL_NAME, ModelRegistry
from lstm_plugin.training.jobs import JobResult, TrainJob
from lstm_plugin.training.trainer import ModelTrainer

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

Identity = tuple[str, str, pd.Timestamp, tuple[str, ...], bool, str]


def _identity(job: TrainJob) -> Identity:
    """Two jobs of one service with this identity train on the same bars and settings: the same bytes. The
    settings are part of it: a job predicted before a continual tuning finished holds the settings of
    then, and the pass at its time, which uses the tuned ones, must train anew."""
    settings = json.dumps([job.model.model_dump(mode="json"), job.tuning], sort_keys=True, default=str)
    return (job.model_type, job.name, job.trained_at, job.symbols, job.force, settings)


def universal_due_dates(
    dates: Iterable[pd.Timestamp], last: pd.Timestamp | None, retrain_days: float
) -> list[pd.Timestamp]:
    """The rebalance ``dates`` on which the universal model falls due, its newest attempt being ``last``
    (``None``: never trained) and each due training made on the day it falls due."""
    due = []
    for when in dates:
        if retrain_due(last, when, retrain_days):
            due.append(when)
            last = when
    return due


def universal_prefetch_jobs(
    trainer: ModelTrainer,
    registry: ModelRegistry,
    now: pd.Timestamp,
    dates: Iterable[pd.Timestamp],
    universe: list[str],
) -> tuple[list[pd.Timestamp], list[TrainJob]]:
    """The universal model's automatic trainings due on the coming ``dates`` (as the planner will queue
    them: on its ``retrain_days`` schedule, pooling the configured symbols or ``universe``), and their
    jobs; none when automatic retraining or the universal model is off."""
    settings = trainer.config.lstm_service
    if not (settings.universal.enabled and settings.retraining.auto_retrain):
        return [], []
    if trainer.config.model.warm_start or trainer.config.tuning.looks_after("universal"):
        return [], []  # each training starts from the one before, or with settings tuned on the way
    last = registry.resolve("universal", UNIVERSAL_NAME, now - pd.Timedelta(microseconds=1), candidates=True)
    coming = sorted(pd.Timestamp(d) for d in dates if pd.Timestamp(d) >= now)
    due = universal_due_dates(
        coming, None if last is None else last.trained_at, settings.universal.retrain_days
    )
    pooled = settings.universal.symbols or universe or None
    return due, [trainer.prepare_universal(pooled, as_of=when) for when in due]


class Prefetch:
    """Predicted jobs waiting for a free worker, and the results of those started (guarded by ``lock``)."""

    def __init__(self, lock: threading.RLock) -> None:
        self.lock = lock
        self._waiting: list[TrainJob] = []
        self._started: dict[Identity, Future[JobResult]] = {}

    def add(self, jobs: Iterable[TrainJob]) -> None:
        with self.lock:
            known = {_identity(j) for j in self._waiting} | set(self._started)
            self._waiting.extend(j for j in jobs if _identity(j) not in known)

    def running(self) -> int:
        """Started jobs still training: they hold a worker."""
        with self.lock:
            return sum(not future.done() for future in self._started.values())

    def start_next(self, submit: Callable[[TrainJob], Future[JobResult]]) -> bool:
        """Start the earliest waiting job (with ``submit``, the lock held); ``False`` when none waits."""
        with self.lock:
            if not self._waiting:
                return False
            job = self._waiting.pop(0)
            self._started[_identity(job)] = submit(job)
            return True

    def take(self, job: TrainJob) -> Future[JobResult] | None:
        """The started result of a job identical to ``job``, now the pass's own; else ``None`` (and the
        job, if still waiting, is no longer started ahead)."""
        key = _identity(job)
        with self.lock:
            self._waiting = [j for j in self._waiting if _identity(j) != key]
            return self._started.pop(key, None)

    def clear(self) -> None:
        """Forget everything (shutting down): results not taken are dropped, never published."""
        with self.lock:
            self._waiting.clear()
            for future in self._started.values():
                future.cancel()
            self._started.clear()
