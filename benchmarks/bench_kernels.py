"""What the portable CPU kernels cost: trainings on them against trainings on the machine's own kernels.

Run: ``python benchmarks/bench_kernels.py [--repeat N] [--json]``. Each figure is the median of ``--repeat``
runs of a child process (the kernels are fixed when torch starts, so each setting needs its own
process) that trains, on the bundled data with the default model config as of 2018-01-02, the
specific models of AAPL, KO, XOM, MSFT and JNJ and the universal model over the 24 symbols — the
two kinds of training a backtest runs — timing only the trainings. The baseline is the same child
with ``LSTM_PLUGIN_NATIVE_KERNELS=1`` (the machine's own kernels: AVX-512 where the CPU has it),
run alternately with the portable one (AVX2, lstm_plugin.core.kernels) so both see the same machine.
It also prints each setting's sha256 of the AAPL model: the portable one is the same on every x86-64
machine with AVX2, the native one is this machine's.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

CHILD = """
import hashlib, json, tempfile, time
from lstm_plugin import ModelRegistry, ModelTrainer, bundled_source, load_config
from lstm_plugin.training.jobs import run_training_job
with tempfile.TemporaryDirectory() as folder:
    trainer = ModelTrainer(load_config(), bundled_source(), ModelRegistry(folder), progress=False)
    jobs = [trainer.prepare_specific(s, "2018-01-02") for s in ("AAPL", "KO", "XOM", "MSFT", "JNJ")]
    universal = trainer.prepare_universal(None, "2018-01-02")
    run_training_job(jobs[1])  # first-use costs (imports, kernels' set-up) outside the clock
    started = time.perf_counter()
    results = [run_training_job(job) for job in jobs]
    specific = time.perf_counter() - started
    started = time.perf_counter()
    run_training_job(universal)
    pooled = time.perf_counter() - started
import torch
kernels = torch.backends.cpu.get_cpu_capability()
aapl = hashlib.sha256(results[0].onnx_bytes).hexdigest()[:12]
print(json.dumps({"specific": specific, "universal": pooled, "kernels": kernels, "aapl_sha256": aapl}))
"""


def child(native: bool) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA", "MKL_CBWR")
    }
    if native:
        env["LSTM_PLUGIN_NATIVE_KERNELS"] = "1"
    else:
        env.pop("LSTM_PLUGIN_NATIVE_KERNELS", None)
    done = subprocess.run([sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per setting (median; default 3)")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"native": [], "portable": []}
    for _ in range(args.repeat):  # alternated: both settings see the same moments of the machine
        runs["native"].append(child(native=True))
        runs["portable"].append(child(native=False))
    figures = {
        name: {
            "specific_seconds": statistics.median(r["specific"] for r in rows),
            "universal_seconds": statistics.median(r["universal"] for r in rows),
            "kernels": rows[0]["kernels"],
            "aapl_sha256": rows[0]["aapl_sha256"],
        }
        for name, rows in runs.items()
    }
    ratios = {
        kind: figures["portable"][f"{kind}_seconds"] / figures["native"][f"{kind}_seconds"]
        for kind in ("specific", "universal")
    }
    if args.json:
        print(json.dumps({"figures": figures, "portable_over_native": ratios}, indent=2))
        return
    for name, f in figures.items():
        print(
            f"{name:9s} kernels {f['kernels']:7s} 5 specific {f['specific_seconds']:6.2f} s, universal "
            f"{f['universal_seconds']:6.2f} s, AAPL sha256 {f['aapl_sha256']}"
        )
    print(
        f"portable / native: specific {ratios['specific']:.2f}x, universal {ratios['universal']:.2f}x "
        f"(median of {args.repeat}, alternated)"
    )


if __name__ == "__main__":
    main()
