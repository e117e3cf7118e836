"""One forecast from the command line, and ``predict_many`` for 400 symbols from Python, on warm models.

Run: ``python benchmarks/bench_predict.py [--json]``. In one process, with the default config:

1. ``lstm-plugin predict AAPL --json`` on a registry that holds AAPL's model (median of 5 runs; target
   ≤ 0.5 s), beside the floor it cannot go under: a Python that only imports numpy, pandas, pydantic and
   onnxruntime (median of 5);
2. ``predict_many`` of 400 stocks of ``datasets/sp500_2021`` (their bars already read) served by one
   universal model, each call computing every forecast again (``force_refresh``; median of 5; target
   ≤ 150 ms).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from lstm_plugin import ForecastService, ManualClock, ModelRegistry, ModelTrainer, load_config
from lstm_plugin.core.data import open_source

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = "import numpy, pandas, pydantic, onnxruntime"


def median_run(command: list[str], repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = load_config()
    executable = str(Path(sys.executable).with_name("lstm-plugin"))
    sp500 = open_source(ROOT / "datasets" / "sp500_2021")
    symbols = sp500.symbols()[:400]
    with tempfile.TemporaryDirectory() as folder:
        registry = ModelRegistry(folder)
        trainer = ModelTrainer(config, open_source(None), registry, progress=False)
        trainer.train_specific("AAPL", as_of="2021-04-01")
        command = [executable, "predict", "AAPL", "--models", folder, "--json"]
        subprocess.run(command, check=True, capture_output=True, cwd=ROOT)  # compiled and cached once
        predict = median_run(command)
        floor = median_run([sys.executable, "-c", IMPORTS])

        pool = ModelTrainer(config, sp500, registry, progress=False)
        pool.train_universal(symbols[:20], as_of="2021-04-01")
        service = ForecastService(config, registry, sp500, ManualClock("2021-04-21"))
        for symbol in symbols:
            sp500.load(symbol)
        first = service.predict_many(symbols, force_refresh=True)
        served = sum(p["status"] == "success" for p in first.values())
        times = []
        for _ in range(5):
            started = time.perf_counter()
            service.predict_many(symbols, force_refresh=True)
            times.append(time.perf_counter() - started)
        many = statistics.median(times)
    figures = {"predict_seconds": predict, "import_floor_seconds": floor, "predict_many_400_seconds": many,
               "served": served}  # fmt: skip
    if args.json:
        print(json.dumps(figures))
        return
    print(f"lstm-plugin predict AAPL, warm:       {predict:6.3f} s (target <= 0.5 s)")
    print(f"  python importing only {IMPORTS[7:]}: {floor:6.3f} s")
    print(f"predict_many, 400 stocks ({served} served), warm: {many * 1000:6.0f} ms (target <= 150 ms)")


if __name__ == "__main__":
    main()
