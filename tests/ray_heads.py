"""A Ray cluster of a test's own: ``ray start --head --block`` in its own session, stopped alone afterwards
(never ``ray stop``, which would stop every Ray on the machine, a user's included)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

RAY_CLI = str(Path(sys.executable).with_name("ray"))
#: the file Ray's tools and ``ray.init(address="auto")`` read to find "the" cluster of this machine
CURRENT_CLUSTER = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def descendants(root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                text = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            children.setdefault(int(text.rsplit(")", 1)[1].split()[1]), []).append(int(entry))
    found, todo = set(), list(children.get(root, []))
    while todo:
        pid = todo.pop()
        found.add(pid)
        todo.extend(children.get(pid, []))
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` that still run (zombies waiting for their parent do not)."""
    running = set()
    for pid in pids:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


@contextmanager
def ray_head(cpus: int = 1, own_temp: bool = False, env: dict[str, str] | None = None) -> Iterator[str]:
    """A head node on 127.0.0.1 (in a short temp folder of its own with ``own_temp``, where discovery does not
    find it, else in Ray's default); yields its address."""
    port = free_port()
    # Ray's socket paths must fit AF_UNIX's 107 bytes: pytest's tmp_path is too deep for them
    temp_dir = tempfile.mkdtemp(prefix="lr-head-") if own_temp else None
    args = [
        RAY_CLI,
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        f"--num-cpus={cpus}",
        "--disable-usage-stats",
        "--include-dashboard=false",
    ]
    if temp_dir is not None:
        args.append(f"--temp-dir={temp_dir}")
    before = CURRENT_CLUSTER.read_bytes() if CURRENT_CLUSTER.exists() else None
    log = tempfile.TemporaryFile()
    head = subprocess.Popen(args, start_new_session=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        _wait_for(port, head, log)
        yield f"127.0.0.1:{port}"
    finally:
        started = descendants(head.pid) | {head.pid}
        try:
            os.killpg(head.pid, signal.SIGTERM)
        except ProcessLookupError:  # it never started
            pass
        try:
            head.wait(60)
        except subprocess.TimeoutExpired:
            pass
        for pid in alive(started):
            os.kill(pid, signal.SIGKILL)
        log.close()
        if temp_dir is not None:
            shutil.rmtree(temp_dir, ignore_errors=True)
        else:  # discovery pointed at this head: give the machine its file back
            if before is None:
                CURRENT_CLUSTER.unlink(missing_ok=True)
            else:
                CURRENT_CLUSTER.write_bytes(before)


def _wait_for(port: int, head: subprocess.Popen, log: Any) -> None:
    """Until ``ray start`` says it now blocks: every process started, the cluster file written."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        log.seek(0)
        text = log.read().decode(errors="replace")
        if head.poll() is not None:
            raise RuntimeError(f"ray start failed: {text[-2000:]}")
        if "will now block" in text:
            return
        time.sleep(0.5)
    raise RuntimeError("ray start did not finish starting within 120 s")


def train_on_ray(
    folder: Path,
    ray: dict,
    *extra: str,
    symbols: tuple[str, ...] = ("KO",),
    env: dict | None = None,
    timeout: int = 300,
) -> subprocess.CompletedProcess:
    """``lstm-plugin train SYMBOLS --backend ray --json`` in ``folder`` with the tiny config and ``ray`` as
    ``lstm_service.ray``."""
    from .conftest import TINY

    config = json.loads(json.dumps(TINY))
    config["lstm_service"] = {"ray": ray, "universal": {"enabled": False}}
    (folder / "c.json").write_text(json.dumps(config))
    args = [
        "train",
        *symbols,
        "--as-of",
        "2015-12-31",
        "--backend",
        "ray",
        "--config",
        "c.json",
        "--models",
        "M",
    ]
    return subprocess.run(
        [sys.executable, "-m", "lstm_plugin", *args, "--json", *extra],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
