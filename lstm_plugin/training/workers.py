"""What every training worker process sets up before its first job, whichever backend started it."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


#: set in each worker before torch loads: its thread pools start with one thread, and each job then
#: sets the count it trains on (``model.torch_threads``), whatever the driver's environment says
WORKER_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def import_torch() -> None:
    """Warm-up task: a worker pays for importing torch before its first job, not during it."""
    import torch

    try:
        torch.set_num_interop_threads(1)  # no idle pool spinning beside a busy one
    except RuntimeError:  # already set, or torch already ran parallel work here
        pass


def return_free_memory() -> None:
    """Give the heap's free pages back to the system (glibc's ``malloc_trim``; nothing elsewhere).

    A training frees its samples when it ends, but glibc keeps the freed pages for the next allocation:
    without this a worker stays at its largest training's size (about 40 MB more on the default job).
    """
    name = ctypes.util.find_library("c")
    if name is None:  # pragma: no cover - not glibc
        return
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # pragma: no cover - musl and others have none
        return
    trim(0)
