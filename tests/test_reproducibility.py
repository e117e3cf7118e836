"""Same data and config, same ONNX bytes: on every backend, worker count and ``OMP_NUM_THREADS``.

Each training job fixes its own torch threads (``model.torch_threads``, 1 by default) instead of
inheriting the process's, so a model does not depend on the machine that trained it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

CHILD = Path(__file__).resolve().parent / "repro_child.py"
BACKENDS = ["sync", "local:1", "local:2", "local:4"] + (["ray"] if importlib.util.find_spec("ray") else [])


def digests_under(threads: str, folder: Path) -> dict[str, dict[str, str]]:
    env = dict(os.environ, OMP_NUM_THREADS=threads, MKL_NUM_THREADS=threads)
    done = subprocess.run(
        [sys.executable, str(CHILD), str(folder), *BACKENDS],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.slow
def test_every_backend_and_thread_setting_gives_the_same_onnx_bytes(tmp_path):
    runs = {threads: digests_under(threads, tmp_path / f"omp{threads}") for threads in ("1", "4")}
    reference = runs["1"]["sync"]
    assert len(set(reference.values())) == len(reference)  # three different models
    for threads, by_backend in runs.items():
        assert set(by_backend) == set(BACKENDS)
        for backend, found in by_backend.items():
            assert found == reference, f"{backend} under OMP_NUM_THREADS={threads}"
