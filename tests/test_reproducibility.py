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


#: sha256 of the session registry's AAPL and MSFT models (the tiny config, as of 2015-12-31), trained with
#: torch 2.13.0 on the portable kernels (lstm_plugin.core.kernels): what any x86-64 machine with AVX2 gives.
#: An AVX-512 machine gave other bytes before the kernels were pinned (docs/models.md, *Reproducibility*).
#: Recorded again on 2026-12-07: a fresh install on an AVX-512/AMX machine gave other bytes for the same
#: code (the commit before issue 29's too), and neither the numpy, pandas, onnx, onnx-ir, onnxscript nor
#: protobuf release, nor numpy's SIMD level, nor ONEDNN_MAX_CPU_ISA / MKL_ENABLE_INSTRUCTIONS brought the
#: old bytes back: the cause is not pinned down (docs/models.md, *Reproducibility*).
RECORDED_TORCH = "2.13.0"
RECORDED = {
    "AAPL": "dbf27a58b29aac9d128485cdd4d57337a998336505df918b8a736d3a79f5ed67",
    "MSFT": "6e306065d61d635924d18ae0cb7c82c5a998a4286b951d3f60737122916bcaed",
}


def test_a_model_has_the_bytes_recorded_in_the_repository(trained):
    import platform

    import torch

    if torch.__version__.split("+")[0] != RECORDED_TORCH:
        pytest.skip(f"recorded with torch {RECORDED_TORCH}; this is {torch.__version__}")
    if platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the recorded bytes are those of x86-64 machines")
    cpu = Path("/proc/cpuinfo")
    if cpu.exists() and " avx2" not in cpu.read_text():
        pytest.skip("this CPU lacks AVX2, the portable kernels' level")
    kernels = trained["outcomes"]["AAPL"].record.metadata["kernels"]
    assert kernels == {"aten": "AVX2", "onednn_max_isa": "AVX2", "portable": True}, kernels
    found = {symbol: trained["outcomes"][symbol].record.metadata["sha256"] for symbol in RECORDED}
    assert found == RECORDED
