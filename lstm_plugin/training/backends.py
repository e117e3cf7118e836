"""Where training jobs run: in the caller (``sync``), in worker processes (``local``), or as Ray tasks
(``ray``).

Every backend takes a :class:`~lstm_plugin.training.jobs.Job` — a training, or a tuning trial — and
returns a future of its result (ONNX bytes and metadata; a trial's scores); none writes to the registry, so a
worker killed mid-job leaves nothing behind and Ray workers need no shared disk.

Local workers are processes, not threads: torch's default random generator is process-wide (threads
would make seeded trainings depend on timing) and the training loop holds the GIL between small
ops. Each job fixes its own torch threads (``model.torch_threads``, 1 by default;
:func:`~lstm_plugin.training.reproducible.fixed_torch_threads`), and every process runs the portable
CPU kernels (:mod:`lstm_plugin.core.kernels`), so the same job gives the same ONNX bytes on every
backend, worker count and x86-64 machine, and parallelism comes from workers.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
import types
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing.connection import wait as wait_for_exit
from typing import Any, Protocol

from lstm_plugin.core.config import Config
from lstm_plugin.core.errors import ConfigError
from lstm_plugin.core.names import BACKENDS
from lstm_plugin.plugins.manager import PluginManager
from lstm_plugin.training.jobs import Job, Result
from lstm_plugin.training.ray_backend import RayBackend
from lstm_plugin.training.workers import WORKER_ENVIRONMENT, cpu_count, import_torch, return_free_memory

logger = logging.getLogger(__name__)

__all__ = [
    "BACKENDS",
    "Backend",
    "LocalBackend",
    "RayBackend",
    "SyncBackend",
    "backtest_workers",
    "check_sendable",
    "cpu_count",
    "make_backend",
    "sendable",
]


class Backend(Protocol):
    """Runs jobs; ``slots`` of them at once."""

    name: str
    slots: int
    #: runs each job inside ``submit``, in this process, one at a time: the future is done on return,
    #: so the caller finishes each job in submission order (a backtest's determinism needs no waiting)
    inline: bool
    #: its workers see the driver's files, so a source may travel *by path* (a job on a folder of CSV
    #: files carries the folder, not bars)
    by_path: bool

    def submit(self, job: Job[Result]) -> Future[Result]: ...

    def warm_up(self) -> None:
        """Start the workers now (each imports torch), so the first jobs do not pay for it."""

    def shutdown(self, timeout: float | None = None) -> None:
        """Cancel jobs not started; give running ones ``timeout`` seconds, then kill them."""

    def stop(self, future: Future[Any]) -> None:
        """Stop the job behind ``future`` now (it overran ``lstm_service.job_timeout``), if it can."""


class SyncBackend:
    """Runs each job in the calling thread when it is submitted: deterministic order, for backtests."""

    name = "sync"
    slots = 1
    inline = True
    by_path = True

    def __init__(self, plugins: PluginManager | None = None) -> None:
        self.plugins = plugins

    def submit(self, job: Job[Result]) -> Future[Result]:
        future: Future[Result] = Future()
        try:
            future.set_result(job.run(self.plugins))
        except Exception as exc:
            future.set_exception(exc)
        return future

    def warm_up(self) -> None:
        return None

    def shutdown(self, timeout: float | None = None) -> None:
        return None

    def stop(self, future: Future[Any]) -> None:
        return None  # a job in the caller cannot be interrupted: it has already returned


def _exit_with_parent() -> None:
    """In a worker: end this process as soon as the driver that spawned it is gone.

    A driver killed with SIGKILL cannot shut its pool down, and a worker blocked on its queue (or
    busy training) would live on, re-parented to init, holding hundreds of MB. The parent's
    sentinel becomes readable when the parent dies; a daemon thread waits on it (polling the parent
    pid as well, where no sentinel is given) and exits the process at once.
    """
    parent = multiprocessing.parent_process()
    sentinel = getattr(parent, "sentinel", None)
    original = os.getppid()

    def watch() -> None:
        while True:
            if sentinel is not None and wait_for_exit([sentinel], timeout=1.0):
                break
            if sentinel is None:
                time.sleep(0.5)
            if os.getppid() != original:
                break
        os._exit(1)

    threading.Thread(target=watch, name="lstm-plugin-parent-watch", daemon=True).start()


def _start_worker() -> None:
    """Process initialiser: die with the driver, leave Ctrl-C to it."""
    import signal

    _exit_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    os.environ.update(WORKER_ENVIRONMENT)
    import_torch()


@contextmanager
def _main_script_hidden() -> Iterator[None]:
    """While workers are spawned: the parent's ``__main__`` looks like it has no script.

    A spawned process re-runs the parent's main script (``__main__.__file__``, or the module of
    ``python -m``) before it takes work, so a Backtrader script that builds and runs its cerebro at
    top level, without ``if __name__ == "__main__":``, would run again in every worker. Workers need
    nothing from ``__main__`` (plugins defined there are refused, see :func:`check_sendable`).
    """
    main = sys.modules.get("__main__")
    names = ("__file__", "__spec__")
    saved: dict[str, Any] = {n: main.__dict__[n] for n in names if main is not None and n in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            if "__spec__" in saved:
                main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.update(saved)


def _run_in_worker(job: Job[Result]) -> Result:
    try:
        return job.run()
    finally:
        return_free_memory()


class LocalBackend:
    """A pool of ``workers`` spawned processes."""

    name = "local"
    inline = False
    by_path = True

    def __init__(self, workers: int) -> None:
        self.slots = max(1, workers)
        self._lock = threading.Lock()
        self._executor = self._new_executor()

    def _new_executor(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(
            max_workers=self.slots,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_start_worker,
        )

    def submit(self, job: Job[Result]) -> Future[Result]:
        from concurrent.futures.process import BrokenProcessPool

        with self._lock, _main_script_hidden():  # a submit spawns the workers it needs, here
            try:
                return self._executor.submit(_run_in_worker, job)
            except BrokenProcessPool:  # a worker died earlier: start a fresh pool
                logger.warning("local backend: a worker process died; starting a new pool")
                self._executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._new_executor()
                return self._executor.submit(_run_in_worker, job)

    def warm_up(self) -> None:
        with self._lock, _main_script_hidden():
            futures = [self._executor.submit(int) for _ in range(self.slots * 2)]  # every worker started
        for future in futures:
            future.result()

    def stop(self, future: Future[Any]) -> None:
        """A pool cannot stop one worker: its processes are killed and a new pool serves the next jobs (the
        other jobs then running fail as a dead worker's do, and are retried)."""
        if future.done():
            return
        with self._lock:
            executor = self._executor
            processes = list((getattr(executor, "_processes", None) or {}).values())
            executor.shutdown(wait=False, cancel_futures=True)
            self._executor = self._new_executor()
        logger.warning("local backend: stopping %d worker(s) to end a training that overran", len(processes))
        for process in processes:
            process.kill()

    def shutdown(self, timeout: float | None = None) -> None:
        with self._lock:
            executor = self._executor
            # private, but the only handle on the processes: needed to stop a training that overruns
            processes = list((getattr(executor, "_processes", None) or {}).values())
            executor.shutdown(wait=False, cancel_futures=True)
        # Wait on the exit sentinels, not join()/is_alive(): the executor's own thread reaps the
        # workers concurrently, and a process reaped there would look alive here.
        pending = {}
        for process in processes:
            try:
                pending[process.sentinel] = process
            except ValueError:  # already closed: it has exited
                continue
        deadline = None if timeout is None else time.monotonic() + timeout
        while pending:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            ended = wait_for_exit(list(pending), remaining)
            if not ended:
                break
            for sentinel in ended:
                pending.pop(sentinel, None)
        for process in pending.values():
            logger.warning("local backend: killing worker %s that did not finish in time", process.pid)
            process.kill()
            process.join(5)


def make_backend(
    name: str, config: Config, plugins: PluginManager | None = None, workers: int | None = None
) -> Backend:
    """The backend called ``name`` (``sync``, ``local``, ``ray``) configured from ``config``; ``workers``
    replaces ``lstm_service.training_threads`` for ``local``."""
    if name == "sync":
        return SyncBackend(plugins)
    if name == "local":
        return LocalBackend(workers or config.lstm_service.training_threads)
    if name == "ray":
        return RayBackend(config.lstm_service.ray)
    raise ConfigError(f"backend › must be one of {', '.join(BACKENDS)} (got: {name!r})")


def backtest_workers(config: Config) -> int:
    """Local workers for a backtest: ``backtest.workers``, else one per core, never more than one pass
    starts (``lstm.max_training_models``)."""
    return config.backtest.workers or max(1, min(cpu_count(), config.lstm.max_training_models))


def sendable(plugins: Iterable[Any]) -> bool:
    """Whether local workers can import these plugin objects (see :func:`check_sendable`)."""
    try:
        check_sendable(plugins)
    except ConfigError:
        return False
    return True


def check_sendable(plugins: Iterable[Any]) -> None:
    """Spawned workers import plugins by module name; one defined in ``__main__`` (a notebook cell,
    a script body) cannot be found there, so say so now rather than fail every job."""
    for plugin in plugins:
        is_module = isinstance(plugin, types.ModuleType)
        module = plugin.__name__ if is_module else type(plugin).__module__
        if module == "__main__":
            name = "the __main__ module" if is_module else type(plugin).__name__
            raise ConfigError(
                f"plugins › {name} is defined in __main__, which local worker processes cannot "
                "import; move it to a module, or use backend 'sync' or 'ray'"
            )
