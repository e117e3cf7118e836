"""``python -m lstm_plugin.training.ray_reaper DRIVER_PID FOLDER``: end the processes of a driver's own Ray
folder when the driver is gone.

A local Ray started by ``ray.init`` lives in the driver's process tree; killed with SIGKILL, the driver
cannot shut it down, and Ray's agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) outlived it
by 30-80 s in a trial. This watchdog, started in a session of its own, waits on its stdin, a pipe only
the driver holds: when it closes (the driver exited or was killed), it kills every process that names
the driver's private Ray folder in its command line or holds a file open in it — every process of
that Ray instance and no other, whatever its parent is by then; the driver itself is spared when it
merely shut Ray down — and removes the folder. Standard
library only; Linux (it reads ``/proc``).
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

_PROC = Path("/proc")


def _refers_to(pid: str, folder: str) -> bool:
    """Whether process ``pid`` names ``folder`` in its command line, or has a file open (or its working
    folder) inside it."""
    base = _PROC / pid
    try:
        if folder.encode() in (base / "cmdline").read_bytes():
            return True
        links = [base / "cwd", *(base / "fd").iterdir()]
    except OSError:
        return False
    for link in links:
        try:
            target = os.readlink(link)
        except OSError:
            continue
        if target == folder or target.startswith(folder + os.sep):
            return True
    return False


def using(folder: str, spared: set[str]) -> list[int]:
    """Every process that uses ``folder``, but those in ``spared``."""
    return [
        int(p.name)
        for p in _PROC.iterdir()
        if p.name.isdigit() and p.name not in spared and _refers_to(p.name, folder)
    ]


def main(argv: list[str] | None = None) -> int:
    driver, folder = (argv or sys.argv[1:])[:2]
    folder = os.path.realpath(folder)
    spared = {driver, str(os.getpid())}
    try:
        while os.read(sys.stdin.fileno(), 4096):
            pass  # nothing is ever written: this returns empty when the driver is gone
    except OSError:
        pass
    for _ in range(3):  # a process that started while the others died is caught on the next sweep
        for pid in using(folder, spared):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.2)
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
