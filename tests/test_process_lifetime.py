"""A killed ``lstm-plugin train`` leaves no worker behind and loses no model version.

The driver runs in its own session, so every process it starts (the spawned workers and
multiprocessing's resource tracker) shares its process group; after the driver dies, a live
process of that group is an orphan.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lstm_plugin import ModelRegistry

from .conftest import TINY

SYMBOLS = ("AAPL", "MSFT", "KO", "XOM")
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to find processes")


def _stat(pid: str) -> list[str] | None:
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    except OSError:
        return None


def group_alive(group: int) -> list[int]:
    """Live (not zombie) processes of process group ``group``."""
    alive = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        fields = _stat(pid)
        if fields is not None and int(fields[2]) == group and fields[0] != "Z":
            alive.append(int(pid))
    return alive


def wait_for_no_orphans(group: int, seconds: float = 10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := group_alive(group)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return left


def workers_started(driver: int) -> bool:
    """The driver (the leader of its own group) has started a child."""
    return any(pid != driver for pid in group_alive(driver))


def start_train(folder: Path, backend: str = "local", env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "lstm_plugin",
            "train",
            *SYMBOLS,
            "--as-of",
            "2017-06-30",
            "--models",
            "M",
            "--config",
            "tiny.json",
            "--backend",
            backend,
            "--force",
            "-q",
        ],
        cwd=folder,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.fixture
def workdir(tmp_path, trained) -> Path:
    shutil.copytree(trained["root"], tmp_path / "M")
    config = json.loads(json.dumps(TINY))
    config["lstm_service"] = {"training_threads": 2}
    (tmp_path / "tiny.json").write_text(json.dumps(config))
    return tmp_path


def committed(folder: Path) -> set[tuple[str, int, str]]:
    registry = ModelRegistry(folder / "M")
    return {
        (symbol, record.version, record.metadata["sha256"])
        for symbol in registry.symbols("specific")
        for record in registry.records("specific", symbol)
    }


def kill_once(
    folder: Path, delay: float, sig: int = signal.SIGKILL, after_workers: bool = False
) -> list[int]:
    proc = start_train(folder)
    if after_workers:
        deadline = time.monotonic() + 60
        while not workers_started(proc.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
    time.sleep(delay)
    proc.send_signal(sig)
    proc.wait(30)
    left = wait_for_no_orphans(proc.pid)
    for pid in left:  # never leave them to the next test
        os.kill(pid, signal.SIGKILL)
    return left


@pytest.mark.slow
def test_sigkill_mid_training_leaves_no_worker(workdir):
    before = committed(workdir)
    assert kill_once(workdir, 1.5, after_workers=True) == []
    assert before <= committed(workdir)


@pytest.mark.slow
def test_sigterm_shuts_the_pool_down(workdir):
    proc = start_train(workdir)
    deadline = time.monotonic() + 60
    while not workers_started(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(30) == 128 + signal.SIGTERM
    assert proc.stderr.read().decode().strip().splitlines()[-1] == "lstm-plugin: terminated"
    assert wait_for_no_orphans(proc.pid) == []


@pytest.mark.slow
def test_killed_at_random_moments_ten_times(workdir):
    """Kills land while workers start, while they train and while the driver publishes."""
    moments = random.Random(11).sample([i / 4 for i in range(2, 28)], 10)
    for delay in moments:
        before = committed(workdir)
        assert kill_once(workdir, delay) == [], f"orphaned workers after a kill at {delay} s"
        assert before <= committed(workdir), f"a version was lost to a kill at {delay} s"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lstm_plugin",
            "train",
            *SYMBOLS,
            "--as-of",
            "2017-06-30",
            "--models",
            "M",
            "--config",
            "tiny.json",
            "--backend",
            "local",
            "--json",
            "-q",
        ],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert {result[s]["status"] for s in SYMBOLS} <= {"trained", "reused", "candidate"}
    registry = ModelRegistry(workdir / "M")
    assert all(registry.resolve("specific", s, "2017-07-01") is not None for s in SYMBOLS)


@pytest.mark.slow
def test_sigkill_of_a_ray_driver_leaves_no_ray_process(workdir):
    """A local Ray lives in the driver's tree; its agents used to outlive a SIGKILL by 30-80 s."""
    pytest.importorskip("ray")
    import tempfile

    from .ray_heads import alive, descendants

    raytmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))  # short: Ray's socket paths live below it
    env = dict(os.environ, RAY_TMPDIR=str(raytmp))
    proc = start_train(workdir, backend="ray", env=env)
    deadline, started = time.monotonic() + 120, set()
    while time.monotonic() < deadline:
        started = descendants(proc.pid)
        commands = [open(f"/proc/{pid}/cmdline", "rb").read() for pid in alive(started)]
        if any(b"RuntimeEnvAgent" in c or b"DashboardAgent" in c for c in commands):
            break
        time.sleep(0.2)
    assert started, "the driver started no Ray"
    time.sleep(1.0)
    started = descendants(proc.pid)
    proc.kill()
    proc.wait(30)
    deadline = time.monotonic() + 10
    while alive(started) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = {pid: open(f"/proc/{pid}/cmdline", "rb").read()[:80] for pid in alive(started)}
    for pid in left:  # never leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert left == {}
    assert not list(raytmp.glob("lr-*"))  # the driver's Ray folder is removed too
    shutil.rmtree(raytmp, ignore_errors=True)
