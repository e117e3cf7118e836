"""``python -m lstm_plugin.training.ray_reaper DRIVER_PID FOLDER``: end a driver's Ray processes when it dies.

A local Ray started by ``ray.init`` lives in the driver's process tree; killed with SIGKILL, the driver
cannot shut it down, and Ray's agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) outlived it
by 30-80 s in a trial. This watchdog, started in a session of its own, reads the driver's descendants
from ``/proc`` every half second while the driver lives; when its stdin (a pipe the driver holds)
closes — the driver exited or was killed — it kills the Ray processes it last saw (checking each one's
start time, so a reused pid is never touched) and removes the driver's Ray folder. Standard library
only, Linux only.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time
from pathlib import Path

__all__ = ["descendants", "main"]

_PROC = Path("/proc")
_INTERVAL = 0.5


def _stat(pid: int) -> tuple[int, int] | None:
    """``(parent pid, start time)`` of ``pid`` from ``/proc/PID/stat``; ``None`` when it is gone."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    fields = text[text.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
    return int(fields[1]), int(fields[19])


def _is_ray(pid: int) -> bool:
    try:
        command = (_PROC / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return False
    return b"ray" in command


def descendants(root: int) -> dict[int, int]:
    """``{pid: start time}`` of every Ray process below ``root`` (this watchdog left out)."""
    parents: dict[int, list[int]] = {}
    started: dict[int, int] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        found = _stat(int(entry.name))
        if found is not None:
            parents.setdefault(found[0], []).append(int(entry.name))
            started[int(entry.name)] = found[1]
    below, todo = {}, list(parents.get(root, []))
    while todo:
        pid = todo.pop()
        if pid in started and pid != os.getpid() and _is_ray(pid):
            below[pid] = started[pid]
        todo.extend(parents.get(pid, []))
    return below


def _kill(seen: dict[int, int]) -> None:
    for pid, started in seen.items():
        now = _stat(pid)
        if now is not None and now[1] == started:  # the same process, not a reused pid
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


def main(argv: list[str] | None = None) -> int:
    driver, folder = (argv or sys.argv[1:])[:2]
    seen: dict[int, int] = {}
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], _INTERVAL)
        if ready and not os.read(sys.stdin.fileno(), 4096):
            break  # the pipe closed: the driver is gone, or it shut Ray down and let go
        if _stat(int(driver)) is None:
            break
        seen.update(descendants(int(driver)))
        seen = {pid: started for pid, started in seen.items() if _stat(pid) is not None}
    _kill(seen)
    time.sleep(0.2)
    shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
