"""Ray as a user meets it: a cluster that ``ray start --head`` left running, an address where nothing
answers, a ``RAY_TMPDIR`` that cannot be made — each either works or fails in one line, quickly, and the
user's own cluster and Ray's own tools are left as they were."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from .conftest import TINY
from .ray_heads import CURRENT_CLUSTER, free_port, ray_head, train_on_ray

pytest.importorskip("ray")
pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to find processes")


@pytest.mark.slow
def test_a_cluster_running_on_the_machine_neither_breaks_nor_changes_a_local_ray(tmp_path):
    """The trial's case: ``ray start --head``, then ``train --backend ray`` with ``ray.num_cpus`` set. It
    used to join the running cluster by discovery and fail on ``num_cpus``."""
    with ray_head(cpus=1) as address:
        found = CURRENT_CLUSTER.read_text()
        assert found.endswith(address.split(":")[1])  # discovery finds this head
        ray_tmp = Path(tempfile.mkdtemp(prefix="lr-t-"))  # short, and ours alone to look into
        try:
            env = dict(os.environ, RAY_TMPDIR=str(ray_tmp))
            proc = train_on_ray(tmp_path, {"num_cpus": 2}, env=env)
            assert proc.returncode == 0, proc.stderr
            assert json.loads(proc.stdout)["KO"]["status"] == "trained"
            shown = [part.strip() for part in re.split(r"[\r\n]", proc.stderr) if part.strip()]
            assert shown[0].startswith("starting a local Ray:")  # said before Ray takes seconds to start
            # and nothing else but the bar: none of Ray's token, usage or worker notices
            assert all(part.startswith(("starting a local Ray:", "trainings on ray:")) for part in shown), (
                shown
            )
            assert CURRENT_CLUSTER.read_text() == found  # Ray's tools still see the user's cluster
            assert not list(ray_tmp.iterdir())  # our private folder is gone
        finally:
            shutil.rmtree(ray_tmp, ignore_errors=True)


@pytest.mark.slow
def test_an_address_where_nothing_answers_fails_within_the_connect_timeout(tmp_path):
    started = time.monotonic()
    proc = train_on_ray(
        tmp_path, {"address": f"127.0.0.1:{free_port()}", "connect_timeout": 5}, "-q", timeout=120
    )
    assert time.monotonic() - started < 60
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("lstm-plugin: error: lstm_service.ray.address › nothing answers at 127.0.0.1:")
    assert "lstm_service.ray.connect_timeout" in lines[0]


def test_a_ray_tmpdir_that_cannot_be_made_is_one_line(tmp_path):
    (tmp_path / "afile").write_text("x")
    env = dict(os.environ, RAY_TMPDIR=str(tmp_path / "afile" / "ray"))
    proc = train_on_ray(tmp_path, {"num_cpus": 1}, "-q", env=env, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert f"RAY_TMPDIR › cannot make a folder for Ray in {tmp_path / 'afile' / 'ray'}" in lines[0]


@pytest.mark.slow
def test_pretrain_follows_the_one_backend_rule(tmp_path):
    """``lstm_service.backend: ray`` and no ``backtest.backend``: pretrain trains on Ray, and says so."""
    config = json.loads(json.dumps(TINY))
    config["lstm_service"] = {"backend": "ray", "ray": {"num_cpus": 2}}
    (tmp_path / "c.json").write_text(json.dumps(config))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "lstm_plugin",
            "pretrain",
            "--symbols",
            "AAPL,KO",
            "--start",
            "2016-01-04",
            "--end",
            "2016-02-26",
            "--config",
            "c.json",
            "--models",
            "M",
            "-q",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr
    assert " rebalances on ray: trained " in proc.stdout, proc.stdout
