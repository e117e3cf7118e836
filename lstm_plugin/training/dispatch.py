"""Dispatch: start queued jobs on a backend within a pass's budget, and publish what comes back.

Workers never write to the registry: they return ONNX bytes and metadata, and the dispatcher
has the trainer verify and publish them. A job that fails for a transient reason is queued again
after ``retry_backoff_seconds`` (doubling) up to ``max_retries`` times; one that fails on bad input
(data, symbol, config, model, a link in the registry) fails at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from functools import partial
from typing import Any

import pandas as pd

from lstm_plugin.core.clock import Clock
from lstm_plugin.core.config import LSTMServiceSection
from lstm_plugin.core.errors import (
    ConfigError,
    DataError,
    LSTMPluginError,
    ModelError,
    SymbolError,
    UnsafePathError,
)
from lstm_plugin.training.backends import Backend
from lstm_plugin.training.deadlines import Deadlines
from lstm_plugin.training.jobs import JobResult, TrainJob, reused_training
from lstm_plugin.training.monitoring import Monitor
from lstm_plugin.training.policy import retry_delay
from lstm_plugin.training.prefetch import Prefetch
from lstm_plugin.training.queue import Job, JobQueue
from lstm_plugin.training.trainer import ModelTrainer, TrainOutcome

#: where the driver's seconds go: planning a pass (what is due), preparing its jobs (their bars, the
#: check for an identical training), publishing results (registering, verifying, deciding the stage;
#: in the backend's callback thread, while the driver waits), waiting for a pass's workers
DRIVER_PHASES = ("plan", "prepare", "publish", "wait")

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: Failures that retrying cannot fix: bad data, symbol, config, a model that does not export, a link in
#: the registry.
PERMANENT_ERRORS = (DataError, SymbolError, ConfigError, ModelError, UnsafePathError)


class ServiceClosedError(LSTMPluginError):
    """The service was shut down."""


def _done_future(result: JobResult) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_result(result)
    return future


def _failed_future(exc: BaseException) -> Future[Any]:
    future: Future[Any] = Future()
    future.set_exception(exc)
    return future


class Dispatcher:
    """Moves jobs from the queue to the backend and their results into the registry."""

    def __init__(
        self,
        queue: JobQueue,
        trainer: ModelTrainer,
        backend: Backend,
        clock: Clock,
        settings: LSTMServiceSection,
        monitor: Monitor,
        *,
        pool: Callable[[], list[str]],
        snapshot: Callable[[], dict[str, Any]],
    ) -> None:
        self.queue = queue
        self.trainer = trainer
        self.backend = backend
        self.clock = clock
        self.settings = settings
        self.monitor = monitor
        self.pool = pool  # the universal model's default pool when a job names none
        self.snapshot = snapshot
        self.budget = 0
        self._closed = False
        self.train_seconds = 0.0
        #: the driver's own seconds (:data:`DRIVER_PHASES`): what a run spends beside its trainings
        self.driver_seconds: dict[str, float] = dict.fromkeys(DRIVER_PHASES, 0.0)
        self._timing = threading.Lock()
        self.announcing = 0  # finished jobs whose hooks and listeners have not been told yet
        self._prefetched = Prefetch(queue.lock)  # jobs started before their pass, on otherwise idle workers
        self._killed = False
        self._publish_lock = threading.Lock()
        self.deadlines = Deadlines(settings.job_timeout, self._overran)

    def start_pass(self, budget: int) -> None:
        with self.queue.lock:
            self.budget = budget

    def finish_pass(self, timeout: float | None) -> bool:
        """Wait until nothing runs, nothing is being announced and the pass may start nothing more (its
        budget spent, or no queued job startable now); then spend what is left of its budget."""
        queue = self.queue

        def over() -> bool:
            spent = self.budget <= 0 or self._closed or not queue.startable(self.clock.now())
            return not queue.running_count() and not self.announcing and spent

        started = time.perf_counter()
        try:
            with queue.changed:
                if not queue.changed.wait_for(over, timeout):
                    return False
                self.budget = 0
                return True
        finally:
            self.spent("wait", started)

    def spent(self, phase: str, started: float) -> None:
        """Add the seconds since ``started`` (``time.perf_counter()``) to ``phase``."""
        with self._timing:
            self.driver_seconds[phase] += time.perf_counter() - started

    def dispatch(self) -> list[str]:
        """Start jobs while the pass has budget and the backend has free slots; ``type/name`` of each.
        A slot the pass leaves free goes to a prefetched job."""
        started: list[str] = []
        inline = self.backend.inline  # its futures are done on return: finish here, in order
        while True:
            now = self.clock.now()
            with self.queue.lock:
                busy = self.queue.running_count() + self._prefetched.running()
                if self._closed or busy >= self.backend.slots:
                    break
                job = self.queue.start_next(now) if self.budget > 0 else None
                if job is None:
                    if inline or not self._prefetched.start_next(self._submit_prefetched):
                        break
                    continue
                self.budget -= 1
            started.append(job.label)
            future = self._submit(job, now)
            if not inline:
                self.deadlines.watch(job, future)
            if inline:
                self.finish(job, future, refill=False)
            else:
                future.add_done_callback(partial(self.finish, job, refill=True))
        return started

    def _submit_prefetched(self, job: TrainJob) -> Future[Any]:
        """Start a prefetched job; when it ends, its worker goes to the next one."""
        try:
            reused = reused_training(job, self.trainer.plugins)  # a rerun: nothing to prefetch
            future = _done_future(reused) if reused is not None else self.backend.submit(job)
        except Exception as exc:  # the pass that asks for it trains it again and reports the error
            future = _failed_future(exc)
        future.add_done_callback(lambda _: None if self._closed else self.dispatch())
        return future

    def _submit(self, job: Job, now: pd.Timestamp) -> Future[Any]:
        try:
            started = time.perf_counter()
            try:
                prepared = self._prepare(job, now)
            finally:
                self.spent("prepare", started)
            return prepared if isinstance(prepared, Future) else self.backend.submit(prepared)
        except Exception as exc:
            return _failed_future(exc)
        except BaseException:  # Ctrl-C in a sync training: give the job back, then stop
            self.queue.give_back(job)
            raise

    def _prepare(self, job: Job, now: pd.Timestamp) -> TrainJob | Future[Any]:
        """The job to send to the backend; or, without a round trip to it, the result of an identical
        training, or the prefetched future of this very job."""
        if job.model_type == "specific":
            prepared = self.trainer.prepare_specific(job.name, now, job.force)
        else:
            pooled = job.symbols or self.settings.universal.symbols or self.pool() or None
            prepared = self.trainer.prepare_universal(pooled, now, job.force)
        if not self.backend.inline:
            reused = reused_training(prepared, self.trainer.plugins)
            if reused is not None:  # an identical training: no round trip to a worker
                return _done_future(reused)
            started = self._prefetched.take(prepared)
            if started is not None:  # prefetched on the same bars and config
                return started
        return prepared

    def _publish(self, future: Future[Any]) -> tuple[TrainOutcome | None, str | None, bool]:
        """``(outcome, error, permanent)`` of a finished future."""
        try:
            result = future.result()
            with self._publish_lock:
                if self._killed:
                    raise ServiceClosedError("shut down before the result could be published")
                started = time.perf_counter()
                try:
                    return self.trainer.publish(result), None, False
                finally:
                    self.spent("publish", started)
        except Exception as exc:
            error = str(exc) if isinstance(exc, LSTMPluginError) else f"{type(exc).__name__}: {exc}"
            return None, error, isinstance(exc, PERMANENT_ERRORS) or getattr(exc, "permanent", False) is True

    def _overran(self, job: Job, future: Future[Any]) -> None:
        """A job past ``lstm_service.job_timeout``: failed now, its worker stopped (the pool is renewed)."""
        self.finish(job, _failed_future(self.deadlines.error()), refill=True)
        self.backend.stop(future)

    def finish(self, job: Job, future: Future[Any], refill: bool) -> None:
        """Publish a finished job's result, or record its failure and maybe retry it."""
        queue = self.queue
        if not queue.holds(job):
            return  # shutdown, or its deadline, already gave up on this job
        outcome, error, permanent = self._publish(future)
        now = self.clock.now()
        with queue.lock:
            if not queue.release(job):
                return
            if outcome is not None:
                queue.finish_done(job, now, outcome.seconds, outcome.summary())
                if outcome.reused:
                    queue.counts["reused"] += 1
                else:  # one definition everywhere: trained = fitted here, then promoted or shelved
                    queue.counts["trained"] += 1
                    queue.counts["promoted" if outcome.status == "trained" else "shelved"] += 1
                    self.train_seconds += outcome.seconds
            else:
                self._failed(job, now, str(error), permanent)
            queue.touch()
            final = job.view() if job.state in ("done", "failed") else None
            self.announcing += final is not None
        if final is not None:
            try:
                self.monitor.announce(final)
            finally:
                with queue.lock:
                    self.announcing -= 1
                    queue.touch()
        if refill:  # inline (sync) jobs are written once, at the end of their pass
            if not self._closed:
                self.dispatch()  # first refill the slot: the snapshot then shows the next job running
            self.monitor.save(self.snapshot)

    def _failed(self, job: Job, now: pd.Timestamp, error: str, permanent: bool) -> None:
        """A failed attempt (queue lock held): cancelled if shutting down, failed, or queued to retry."""
        final = not self._closed and (permanent or job.attempts > self.settings.max_retries)
        self.queue.finish_failed(job, now, error, permanent, final=final)
        if self._closed:
            self.queue.abandon(job)
        elif not final:
            delay = retry_delay(job.attempts, self.settings.retry_backoff_seconds)
            self.queue.retry(job, now + pd.Timedelta(seconds=delay), time.monotonic() + delay)
            logger.info("training %s failed (%s); retry %d in %.0f s", job.label, error, job.attempts, delay)

    def say_waiting(self, timeout: float | None) -> None:
        """Before a shutdown waits for running trainings: a silent wait looks like a hang."""
        running = self.queue.running_labels()
        if running and timeout != 0:
            logger.warning(
                "waiting for %d training%s to finish (%s)%s; Ctrl-C stops them",
                len(running),
                "" if len(running) == 1 else "s",
                ", ".join(running[:3]) + (", ..." if len(running) > 3 else ""),
                "" if timeout is None else f", at most {timeout:g} s",
            )

    def stop(self, finished: bool) -> int:
        """After the wait of a shutdown: refuse late results, stop the workers, cancel what did not report
        back."""
        stopped = self.queue.running_count()
        self._prefetched.clear()
        self.deadlines.close()
        with self._publish_lock:
            self._killed = True
        self.backend.shutdown(0 if not finished else None)
        self.queue.abandon_running("shut down before it finished")  # futures that did not report back
        return stopped

    def prefetch(self, jobs: Iterable[TrainJob]) -> None:
        """Start these jobs ahead of their pass on workers left idle; their pass takes the results."""
        self._prefetched.add(jobs)
        self.dispatch()

    @property
    def closed(self) -> bool:
        """Closed by :meth:`close`: no job starts, late results are refused."""
        return self._closed

    def close(self) -> None:
        """Start no job from now on, and refuse results that arrive late (a shutdown)."""
        with self.queue.lock:
            self._closed = True
