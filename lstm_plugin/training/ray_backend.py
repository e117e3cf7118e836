"""Training jobs as Ray tasks: on an isolated local Ray of our own, or on a cluster joined on purpose.

**No address** (``lstm_service.ray.address`` null): every :class:`RayBackend` starts its own local Ray
(``ray.init(address="local")``) with ``num_cpus``, in a temporary folder of its own under
``RAY_TMPDIR`` (default: the system's). It never joins a cluster found by discovery — one that
``ray start --head`` left running has its own CPUs and must not be changed — and it never rewrites the
``ray_current_cluster`` file that Ray's own tools (``ray status``) read, so they keep seeing that
cluster. A watchdog process (:mod:`lstm_plugin.training.ray_reaper`) ends every Ray process the
driver started as soon as the driver is gone, even after a SIGKILL.

**An address** (``auto``, ``host:port``, ``ray://host:10001``): the cluster is joined on purpose, and
nothing answering there fails within ``lstm_service.ray.connect_timeout`` seconds. A Ray that this
process already started (``ray.init`` in a notebook) is used as it is and left running.

**Tokens**: recent Ray releases start local clusters with token authentication (the token in
``~/.ray/auth_token``). Our local Ray keeps it, without Ray's warning on every command; a driver that
joins a cluster by address uses token mode when a token is available. Ray's command-line tools need
``RAY_AUTH_MODE=token`` in the shell to talk to a ``ray start`` cluster (docs/training-service.md).
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from lstm_plugin.core.config import RaySection
from lstm_plugin.core.errors import ConfigError
from lstm_plugin.core.quoting import first_line
from lstm_plugin.training.jobs import Job, Result
from lstm_plugin.training.workers import WORKER_ENVIRONMENT, import_torch

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

_NO_RAY = "lstm_service.backend › 'ray' needs the ray package: pip install 'lstm-plugin[ray]'"
#: Ray's loggers whose warnings every command would print (its token notice, its usage-stats notice)
_QUIET_RAY_LOGGERS = (
    "ray._private.authentication.authentication_token_setup",
    "ray._private.usage.usage_lib",
)


def run_on_ray(job: Job[Result]) -> Result:
    """A Ray task: a local worker's environment (before its torch loads), then the job."""
    os.environ.update(WORKER_ENVIRONMENT)
    import_torch()
    return job.run()


def _token_available() -> bool:
    """Whether a Ray token is at hand: ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH``, ``~/.ray/auth_token``."""
    if os.environ.get("RAY_AUTH_TOKEN"):
        return True
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    return os.path.isfile(path)


def probe_address(address: str, timeout: float) -> None:
    """A TCP connection to ``host:port`` (or ``ray://host:port``) within ``timeout`` seconds, else a
    :class:`ConfigError`: Ray itself would retry for minutes."""
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parsed.hostname, parsed.port
    except ValueError:
        host = port = None
    if not host or not port:
        raise ConfigError(
            f"lstm_service.ray.address › not 'auto', host:port or ray://host:port (got: {address!r})"
        )
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        raise ConfigError(
            f"lstm_service.ray.address › nothing answers at {address} within "
            f"{timeout:g} s ({exc.strerror or exc}); start the cluster or fix the address "
            "(lstm_service.ray.connect_timeout)"
        ) from None


def _private_folder() -> str:
    """A fresh folder for one local Ray under ``RAY_TMPDIR`` (default: the system's temp folder)."""
    base = os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()
    try:
        os.makedirs(base, exist_ok=True)
        return tempfile.mkdtemp(prefix="lr-", dir=base)  # short: Ray's socket paths live below it
    except OSError as exc:
        raise ConfigError(
            f"RAY_TMPDIR › cannot make a folder for Ray in {base}: {exc.strerror or exc}"
        ) from None


def _init_within(ray: Any, options: dict[str, Any], timeout: float, where: str) -> None:
    """``ray.init(**options)``, as a :class:`ConfigError` when it fails or does not return in ``timeout``."""
    failure: list[BaseException] = []

    def start() -> None:
        try:
            ray.init(**options)
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=start, name="lstm-plugin-ray-init", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ConfigError(
            f"lstm_service.ray.address › Ray {where} did not answer within {timeout:g} s "
            "(lstm_service.ray.connect_timeout)"
        )
    if failure:
        raise ConfigError(f"lstm_service.ray.address › cannot reach Ray {where}: {first_line(failure[0])}")


class RayBackend:
    """Each job is a Ray task (``cpus_per_task`` CPUs) returning the ONNX bytes; see the module docstring.

    Workers need ``lstm_plugin`` installed, nothing else: the bars travel with the job (or, on a
    local Ray, the folder they are read from) and the driver publishes the result.
    """

    name = "ray"
    inline = False

    def __init__(self, settings: RaySection | None = None) -> None:
        settings = settings or RaySection()
        if settings.address and "RAY_AUTH_MODE" not in os.environ and _token_available():
            os.environ["RAY_AUTH_MODE"] = "token"  # before Ray loads: it reads the mode once
        try:
            import ray
        except ImportError:
            raise ConfigError(_NO_RAY) from None
        for name in _QUIET_RAY_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)
        self._ray = ray
        self._owns_ray = False
        self._folder: str | None = None
        self._reaper: subprocess.Popen[bytes] | None = None
        if not ray.is_initialized():
            self._start(ray, settings)
        # a Ray started here runs on this machine; one reached at an address may be a cluster elsewhere
        self.by_path = self._owns_ray and not settings.address
        self.cpus_per_task = settings.cpus_per_task
        resources: dict[str, float] = ray.cluster_resources()  # type: ignore[no-untyped-call]
        self.slots = max(1, int(resources.get("CPU", 1)) // self.cpus_per_task)
        self._task: Any = ray.remote(num_cpus=self.cpus_per_task, max_retries=0)(run_on_ray)
        self._pending: dict[int, Any] = {}
        self._lock = threading.Lock()

    def _start(self, ray: Any, settings: RaySection) -> None:
        options: dict[str, Any] = {
            "include_dashboard": False,
            "logging_level": logging.WARNING,
            "log_to_driver": False,  # workers' output is not the command's; their errors come back as results
        }
        if settings.address:
            if settings.address != "auto":
                probe_address(settings.address, settings.connect_timeout)
            options["address"] = settings.address
            _init_within(ray, options, settings.connect_timeout, f"at {settings.address}")
        else:
            self._folder = _private_folder()
            options.update(address="local", _temp_dir=self._folder)
            if settings.num_cpus:
                options["num_cpus"] = settings.num_cpus
            # the watchdog first: a driver killed while ray.init starts its processes leaves none behind
            self._reaper = _start_reaper(self._folder)
            try:
                ray.init(**options)
            except (ConnectionError, TimeoutError, ValueError, RuntimeError, OSError) as exc:
                self._stop_reaper()
                if "AF_UNIX path length" in str(exc):
                    raise ConfigError(
                        f"RAY_TMPDIR › {Path(self._folder).parent} is too deep for Ray's sockets (their "
                        "paths may be 107 bytes at most); choose a shorter folder"
                    ) from None
                raise ConfigError(f"lstm_service.ray › cannot start Ray locally: {first_line(exc)}") from None
        self._owns_ray = True

    def submit(self, job: Job[Result]) -> Future[Result]:
        ref = self._task.remote(job)
        future: Future[Result] = ref.future()
        with self._lock:
            self._pending[id(future)] = ref
        future.add_done_callback(lambda f: self._forget(id(f)))
        return future

    def warm_up(self) -> None:
        warm = self._ray.remote(num_cpus=self.cpus_per_task)(import_torch)
        self._ray.get([warm.remote() for _ in range(self.slots * 2)])

    def stop(self, future: Future[Any]) -> None:
        with self._lock:
            ref = self._pending.get(id(future))
        if ref is not None:
            try:
                self._ray.cancel(ref, force=True)
            except Exception as exc:  # already finished, or the cluster is gone
                logger.debug("ray cancel: %s", exc)

    def _forget(self, key: int) -> None:
        with self._lock:
            self._pending.pop(key, None)

    def shutdown(self, timeout: float | None = None) -> None:
        with self._lock:
            refs = list(self._pending.values())
        if refs and timeout:
            self._ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for ref in refs:
            try:
                self._ray.cancel(ref, force=True)
            except Exception as exc:
                logger.debug("ray cancel: %s", exc)
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False
        self._stop_reaper()

    def _stop_reaper(self) -> None:
        """The watchdog ends what ``ray.shutdown`` or a failed ``ray.init`` left, then removes the folder."""
        if self._reaper is not None:
            if self._reaper.stdin is not None:
                self._reaper.stdin.close()
            self._reaper.wait(30)
            self._reaper = None
        elif self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)


def _start_reaper(folder: str) -> subprocess.Popen[bytes] | None:
    """The watchdog of this driver's Ray processes (Linux: it reads ``/proc``); ``None`` elsewhere."""
    if not sys.platform.startswith("linux"):
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "lstm_plugin.training.ray_reaper", str(os.getpid()), folder],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C or a signal to the driver's group does not reach it
        close_fds=True,
    )
