"""What else than its config and data shapes a training's bytes: the torch threads its reductions split
over, and the CPU kernels it runs (:mod:`lstm_plugin.core.kernels`). A job fixes the first and records
the second; docs/models.md, *Reproducibility*."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from lstm_plugin.core.kernels import PORTABLE_CAPABILITY, PORTABLE_KERNELS, portable

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

_warned: set[str] = set()


@contextmanager
def fixed_torch_threads(threads: int) -> Iterator[None]:
    """Torch's intra-op threads set to ``threads`` for the block, then put back.

    A job sets its own count rather than inherit the process's (``cores // workers``, an
    ``OMP_NUM_THREADS``): the reductions inside a fit depend on how many threads split them, so
    only a fixed count gives the same ONNX bytes everywhere, and one thread per small LSTM does
    not spin for cores that other work holds.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def kernels_in_use() -> dict[str, Any]:
    """The kernels this process trains with, for a version's metadata; warns once when they are not the
    portable ones although they should be (torch ran before :mod:`lstm_plugin` was imported, or the CPU
    lacks AVX2): that model's bytes may then differ from other machines'."""
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    kernels = {
        "aten": capability,
        "onednn_max_isa": os.environ.get("DNNL_MAX_CPU_ISA", "native"),
        "portable": portable() and capability == PORTABLE_CAPABILITY,
    }
    if portable() and capability != PORTABLE_CAPABILITY and capability not in _warned:
        _warned.add(capability)
        logger.warning(
            "torch runs its %s kernels in this process, not the portable %s ones (torch ran before "
            "lstm_plugin was imported, or this CPU lacks AVX2): models trained here may differ in their last "
            "bits from other machines' (set %s before torch starts)",
            capability,
            PORTABLE_CAPABILITY,
            ", ".join(f"{k}={v}" for k, v in PORTABLE_KERNELS.items()),
        )
    return kernels
