"""Train the same jobs on every backend in this process and print their ONNX digests as JSON
(tests/test_reproducibility.py runs it under different ``OMP_NUM_THREADS``).

``python repro_child.py FOLDER [BACKEND ...]``: BACKEND is ``sync``, ``local:N`` (N workers) or
``ray``; each trains into its own registry under FOLDER.
"""

from __future__ import annotations

import json
import sys

from lstm_plugin import ManualClock, ModelRegistry, bundled_source
from lstm_plugin.training.backends import LocalBackend, RayBackend, SyncBackend
from lstm_plugin.training.service import TrainingService

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
from tests.conftest import tiny_config

SYMBOLS = ["AAPL", "KO", "XOM"]


def digests(backend_name: str, folder: str) -> dict[str, str]:
    config = tiny_config(lstm_service={"universal": {"enabled": False}})
    kind, _, workers = backend_name.partition(":")
    registry = ModelRegistry(f"{folder}/{kind}{workers}")
    if kind == "sync":
        backend = SyncBackend()
    elif kind == "local":
        backend = LocalBackend(int(workers))
    else:
        from lstm_plugin.core.config import RaySection

        backend = RayBackend(RaySection(num_cpus=2))
    source = bundled_source()
    with TrainingService(
        config, source, registry, clock=ManualClock("2015-12-31"), backend=backend
    ) as service:
        service.request_model_training(SYMBOLS)
        assert service.drain(timeout=600)
    return {s: registry.resolve("specific", s).metadata["sha256"] for s in SYMBOLS}


def main() -> None:
    folder, names = sys.argv[1], sys.argv[2:]
    print(json.dumps({name: digests(name, folder) for name in names}))


if __name__ == "__main__":
    main()
