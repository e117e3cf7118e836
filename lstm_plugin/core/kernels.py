"""The CPU kernels torch trains with: the same on every x86-64 machine, so one training gives the same bytes.

torch picks its vectorised kernels (ATen) and oneDNN's (the LSTM cells, matrix products) by the CPU it
runs on — AVX-512, AVX2, plain SSE — and each rounds differently. The same seeded training of the
bundled AAPL model gave ONNX files with other sha256 under each cap (docs/models.md,
*Reproducibility*), so models trained on a laptop, a CI runner and a cluster node differed in their
last bits, and a Ray cluster with mixed nodes gave a backtest that depended on which node ran which
job. Capping both libraries at AVX2, which every x86-64 server and laptop of the last decade has,
gives every such machine the same kernels and the same bytes, for about 10-25 % more training time
(``benchmarks/bench_kernels.py``).

The caps are environment variables that torch and oneDNN read once, at their first kernel, so they
are set as early as possible: when :mod:`lstm_plugin` is imported (the command line, every local and
Ray worker, a notebook), and in the environment workers start with. A variable already set is left
as it is, and ``LSTM_PLUGIN_NATIVE_KERNELS=1`` keeps the machine's own kernels (faster; the bytes then
depend on the CPU). Standard library only: the command line imports this before anything else.
"""

from __future__ import annotations

import os

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: What every x86-64 machine with AVX2 runs alike: ATen's vectorised kernels, oneDNN's, and MKL's
#: conditional numerical reproducibility.
PORTABLE_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "DNNL_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
#: What ``torch.backends.cpu.get_cpu_capability()`` says when the cap took effect.
PORTABLE_CAPABILITY = "AVX2"
NATIVE_KERNELS = "LSTM_PLUGIN_NATIVE_KERNELS"


def portable() -> bool:
    """Whether this process pins the portable kernels (not opted out: ``LSTM_PLUGIN_NATIVE_KERNELS=1``)."""
    return os.environ.get(NATIVE_KERNELS, "") in ("", "0")


def pin_portable_kernels() -> dict[str, str]:
    """Set :data:`PORTABLE_KERNELS` in this process's environment (keeping any the user set); returns the
    variables in effect, for a worker's environment. Nothing when opted out."""
    if not portable():
        return {}
    for name, value in PORTABLE_KERNELS.items():
        os.environ.setdefault(name, value)
    return {name: os.environ[name] for name in PORTABLE_KERNELS}
