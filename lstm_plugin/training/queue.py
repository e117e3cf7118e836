"""The training queue: jobs and their states, a heap keyed on ``(priority, insertion order)``.

Pure bookkeeping with no clock, backend or registry of its own: the caller passes ``now`` and
decides when jobs start and end. One lock (:attr:`JobQueue.lock`) guards it; the service shares it
so a state change and what the service derives from it are one step. Job states
(:data:`~lstm_plugin.core.statuses.JobState`): queued -> running -> done | failed, or back to
queued to retry; cancelled when dropped.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import pandas as pd

from lstm_plugin.core.statuses import JobState, ModelType, OutcomeSummary, RequestStatus
from lstm_plugin.training.policy import Priority, as_number

__all__ = ["Job", "JobKey", "JobQueue", "JobView", "RequestDetail", "RequestResult"]

JobKey = tuple[ModelType, str]  # (model_type, name)


class JobView(TypedDict):
    """A job as snapshots, listeners and ``lstm_after_train`` see it (plain JSON data)."""

    symbol: str
    model_type: ModelType
    category: str
    priority: int | float
    reasons: list[str]
    state: JobState
    attempts: int
    requested_at: str | None
    not_before: str | None
    started_at: str | None
    finished_at: str | None
    seconds: float | None
    error: str | None
    errors: list[str]
    permanent: bool
    outcome: OutcomeSummary | None
    #: its place among the service's job starts (priority order within a pass), ``None`` before it starts
    order: int | None


class RequestDetail(TypedDict, total=False):
    """What a request did with one model: ``status`` and the priority it holds, or why not."""

    status: RequestStatus
    priority: int | float
    reasons: list[str]
    error: str
    reason: str
    model_version: int
    trained_at: str


class RequestResult(TypedDict):
    """What :meth:`TrainingService.request_model_training` did, in counts and per symbol."""

    requested: int
    already_training: int
    rejected: int
    up_to_date: int
    details: dict[str, RequestDetail]


def _stamp(t: pd.Timestamp | None) -> str | None:
    return None if t is None else t.isoformat()


@dataclass
class Job:
    """One model to train, as the queue and the monitoring see it."""

    model_type: ModelType
    name: str
    category: str
    priority: float
    reasons: list[str]
    seq: int
    requested_at: pd.Timestamp
    force: bool = False
    symbols: tuple[str, ...] | None = None  # the universal model's pool, when given
    attempts: int = 0
    not_before: pd.Timestamp | None = None  # retry time on the service's clock
    retry_wall_time: float | None = None  # the same, on time.monotonic(), for drain() on a manual clock
    state: JobState = "queued"
    started_at: pd.Timestamp | None = None
    finished_at: pd.Timestamp | None = None
    seconds: float | None = None
    errors: list[str] = field(default_factory=list)
    permanent: bool = False
    outcome: OutcomeSummary | None = None
    order: int | None = None

    @property
    def key(self) -> JobKey:
        return (self.model_type, self.name)

    @property
    def label(self) -> str:
        return f"{self.model_type}/{self.name}"

    def view(self) -> JobView:
        """Plain data for snapshots and JSON."""
        return {
            "symbol": self.name,
            "model_type": self.model_type,
            "category": self.category,
            "priority": as_number(self.priority),
            "reasons": list(self.reasons),
            "state": self.state,
            "attempts": self.attempts,
            "requested_at": _stamp(self.requested_at),
            "not_before": _stamp(self.not_before),
            "started_at": _stamp(self.started_at),
            "finished_at": _stamp(self.finished_at),
            "seconds": self.seconds,
            "error": self.errors[-1] if self.errors else None,
            "errors": list(self.errors),
            "permanent": self.permanent,
            "outcome": self.outcome,
            "order": self.order,
        }


class JobQueue:
    """Queued, running and finished jobs; methods that change state take :attr:`lock` themselves."""

    def __init__(self, history: int = 1000) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.queued: dict[JobKey, Job] = {}
        self.running: dict[JobKey, Job] = {}
        self.done: deque[Job] = deque(maxlen=history)
        self.failed: deque[Job] = deque(maxlen=history)
        self.counts: Counter[str] = Counter()
        self.dirty = False
        self._heap: list[tuple[float, int, JobKey]] = []
        self._seq = itertools.count()
        self._starts = itertools.count()

    # ------------------------------------------------------------------ reading
    def in_flight(self, key: JobKey) -> bool:
        with self.lock:
            return key in self.running or key in self.queued

    def in_order(self) -> list[Job]:
        """Queued jobs, best priority first."""
        with self.lock:
            return sorted(self.queued.values(), key=lambda j: (j.priority, j.seq))

    def seconds_until_startable(self, now: pd.Timestamp, clock_moves: bool) -> float:
        """Seconds until a queued job may start (0: one may start now).

        With a clock that does not move on its own (``clock_moves`` false: a manual clock, which
        a caller blocked in ``drain`` cannot advance) a retry's backoff is waited in wall time,
        and a job that has waited it is released.
        """
        with self.lock:
            queued = list(self.queued.values())
            waiting = [j for j in queued if j.not_before is not None and j.not_before > now]
            if len(waiting) < len(queued):
                return 0.0
            if clock_moves:
                soonest = min(j.not_before for j in waiting if j.not_before)
                return max(0.01, float((soonest - now).total_seconds()))
            wall_now = time.monotonic()
            ready = [j for j in waiting if j.retry_wall_time is None or j.retry_wall_time <= wall_now]
            for job in ready:
                job.not_before = None  # waited its backoff in wall time
            return 0.0 if ready else max(0.01, min(j.retry_wall_time or wall_now for j in waiting) - wall_now)

    def startable(self, now: pd.Timestamp) -> bool:
        """A queued job may start at ``now`` (none is waiting out a retry's backoff)."""
        with self.lock:
            return any(j.not_before is None or j.not_before <= now for j in self.queued.values())

    def idle(self) -> bool:
        with self.lock:
            return not self.running and not self.queued

    # ------------------------------------------------------------------ changing
    def touch(self) -> None:
        """Record a change of state: wake waiters, mark the snapshot stale."""
        with self.lock:
            self.dirty = True
            self.changed.notify_all()

    def _push(self, job: Job) -> None:
        job.seq = next(self._seq)
        self.queued[job.key] = job
        heapq.heappush(self._heap, (job.priority, job.seq, job.key))

    def enqueue(
        self,
        model_type: ModelType,
        name: str,
        category: str,
        priority: Priority,
        now: pd.Timestamp,
        force: bool,
        symbols: tuple[str, ...] | None = None,
    ) -> RequestDetail:
        """Queue a job, or improve the priority of the one already queued; a running one is left alone."""
        key = (model_type, name)
        with self.lock:
            self.counts["requests"] += 1
            running = self.running.get(key)
            if running is not None:
                return {
                    "status": "already_training",
                    "priority": as_number(running.priority),
                    "reasons": running.reasons,
                }
            job = self.queued.get(key)
            if job is not None:
                if priority.value < job.priority:
                    job.priority, job.reasons, job.category = priority.value, priority.describe(), category
                    self._push(job)
                    self.touch()
                job.force = job.force or force
                job.symbols = symbols or job.symbols
                return {
                    "status": "already_queued",
                    "priority": as_number(job.priority),
                    "reasons": job.reasons,
                }
            job = Job(model_type, name, category, priority.value, priority.describe(), 0, now, force, symbols)
            self._push(job)
            self.counts["queued"] += 1
            self.touch()
            return {"status": "queued", "priority": as_number(job.priority), "reasons": job.reasons}

    def cancel(self, keys: Iterable[JobKey]) -> int:
        """Drop these queued jobs (running ones finish); returns how many were dropped."""
        dropped = 0
        with self.lock:
            for key in keys:
                job = self.queued.pop(key, None)
                if job is not None:
                    job.state = "cancelled"
                    dropped += 1
                    self.counts["cancelled"] += 1
            self.touch()
        return dropped

    def cancel_all(self) -> int:
        """Drop every queued job; returns how many."""
        with self.lock:
            dropped = len(self.queued)
            for job in self.queued.values():
                job.state = "cancelled"
            self.counts["cancelled"] += dropped
            self.queued.clear()
            self._heap.clear()
            return dropped

    def summary(self) -> dict[str, Any]:
        """Queued (best first) and running jobs as ``type/name``, and the counts so far."""
        with self.lock:
            return {
                "queued": [j.label for j in self.in_order()],
                "running": [j.label for j in self.running.values()],
                "counts": dict(self.counts),
            }

    def start_next(self, now: pd.Timestamp) -> Job | None:
        """Move the best-priority job whose retry time has come to running, or ``None``."""
        with self.lock:
            held, found = [], None
            while self._heap:
                entry = heapq.heappop(self._heap)
                job = self.queued.get(entry[2])
                if job is None or job.seq != entry[1]:
                    continue  # cancelled, or superseded by a better priority
                if job.not_before is not None and job.not_before > now:
                    held.append(entry)
                    continue
                found = job
                break
            for entry in held:
                heapq.heappush(self._heap, entry)
            if found is None:
                return None
            del self.queued[found.key]
            self.running[found.key] = found
            found.state, found.started_at, found.attempts = "running", now, found.attempts + 1
            found.order = next(self._starts)
            self.touch()
            return found

    def state_of(self, key: tuple[str, str]) -> str | None:
        """``'running'``, ``'queued'`` or ``None`` for the job of ``key``."""
        with self.lock:
            return "running" if key in self.running else ("queued" if key in self.queued else None)

    def running_count(self) -> int:
        with self.lock:
            return len(self.running)

    def queued_count(self) -> int:
        with self.lock:
            return len(self.queued)

    def running_labels(self) -> list[str]:
        with self.lock:
            return [job.label for job in self.running.values()]

    def holds(self, job: Job) -> bool:
        """Whether ``job`` still runs here (a shutdown or its deadline may have given up on it)."""
        with self.lock:
            return self.running.get(job.key) is job

    def release(self, job: Job) -> bool:
        """Take ``job`` out of running to record its end; ``False`` when it no longer runs here."""
        with self.lock:
            if self.running.get(job.key) is not job:
                return False
            del self.running[job.key]
            return True

    def abandon_running(self, reason: str) -> None:
        """Every running job ends as cancelled: its result will not be used (a shutdown)."""
        with self.lock:
            for job in self.running.values():
                self.abandon(job, reason)
            self.running.clear()
            self.touch()

    def give_back(self, job: Job) -> None:
        """A job that never got to run (interrupted while starting) is queued again."""
        with self.lock:
            self.running.pop(job.key, None)
            job.state = "queued"
            self._push(job)

    def finish_done(self, job: Job, now: pd.Timestamp, seconds: float, outcome: OutcomeSummary) -> None:
        with self.lock:
            job.finished_at, job.state, job.seconds, job.outcome = now, "done", round(seconds, 3), outcome
            self.done.append(job)
            self.counts["done"] += 1

    def finish_failed(self, job: Job, now: pd.Timestamp, error: str, permanent: bool, *, final: bool) -> None:
        """Record a failure: ``final`` ends the job as failed; otherwise the caller retries it."""
        with self.lock:
            job.finished_at = now
            job.errors.append(error)
            job.permanent = permanent
            if final:
                job.state = "failed"
                self.failed.append(job)
                self.counts["failed"] += 1

    def retry(self, job: Job, not_before: pd.Timestamp, wall_time: float) -> None:
        with self.lock:
            job.state, job.not_before, job.retry_wall_time = "queued", not_before, wall_time
            self._push(job)
            self.counts["retried"] += 1

    def abandon(self, job: Job, reason: str | None = None) -> None:
        """A running job whose result will not be used (the service is shutting down)."""
        with self.lock:
            job.state = "cancelled"
            if reason:
                job.errors.append(reason)
            self.counts["cancelled"] += 1

    # ------------------------------------------------------------------ plans
    def plan_jobs(self) -> list[dict[str, Any]]:
        """Running jobs (as if queued again), then the queue in order, as plain data."""
        with self.lock:
            jobs = list(self.running.values()) + self.in_order()
            return [
                {
                    "model_type": j.model_type,
                    "name": j.name,
                    "category": j.category,
                    "priority": j.priority,
                    "reasons": list(j.reasons),
                    "requested_at": j.requested_at.isoformat(),
                    "force": j.force,
                    "symbols": list(j.symbols) if j.symbols else None,
                }
                for j in jobs
            ]

    def restore_jobs(self, items: Iterable[Mapping[str, Any]]) -> list[JobKey]:
        """Queue the jobs of :meth:`plan_jobs` in their order, skipping known ones; returns the keys
        queued."""
        added = []
        with self.lock:
            for item in items:
                key = (item["model_type"], item["name"])
                if key in self.queued or key in self.running:
                    continue
                symbols = tuple(item["symbols"]) if item.get("symbols") else None
                self._push(
                    Job(
                        key[0],
                        key[1],
                        item["category"],
                        float(item["priority"]),
                        list(item["reasons"]),
                        0,
                        pd.Timestamp(item["requested_at"]),
                        bool(item["force"]),
                        symbols,
                    )
                )
                added.append(key)
            self.touch()
        return added
