"""Training beside other work: one default training alone, then beside two busy processes.

Run: ``python benchmarks/bench_contention.py [--json]``. In this process, on the bundled data with
the default model config (AAPL as of 2015-12-31, trained, exported, verified and registered, each
time into a fresh registry): the median of ``--repeat`` trainings alone, then the same beside two
processes that spin on the CPU (started and stopped here: a laptop with a browser and a notebook
busy). Target: beside them at most 3x the time alone.

For comparison the same is run with ``model.torch_threads`` set to every core, the old
behaviour (torch's own default), whose threads wait for cores the busy processes hold; that run
stops at ``--cap`` seconds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

from lstm_plugin import Config, ModelRegistry, ModelTrainer, bundled_source
from lstm_plugin.training.backends import cpu_count

SPIN = "while True: pass"


@contextmanager
def busy(processes: int) -> Iterator[None]:
    """``processes`` Python processes spinning on the CPU for the block."""
    spinners = [subprocess.Popen([sys.executable, "-c", SPIN]) for _ in range(processes)]
    time.sleep(0.5)  # running before the clock starts
    try:
        yield
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def training_seconds(config: Config, repeat: int) -> float:
    """Median wall seconds of one default training (fit, export, verify, register)."""
    seconds = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as folder:
            trainer = ModelTrainer(config, bundled_source(), ModelRegistry(folder), progress=False)
            started = time.perf_counter()
            trainer.train_specific("AAPL", as_of="2015-12-31")
            seconds.append(time.perf_counter() - started)
    return statistics.median(seconds)


def capped_seconds(threads: int, busy_processes: int, cap: float) -> float | None:
    """One warm training on ``threads`` torch threads in a child process, or ``None`` past ``cap`` seconds
    (its first-use training included)."""
    code = (
        "import sys; sys.path.insert(0, 'benchmarks'); from bench_contention import training_seconds;"
        "from lstm_plugin import Config; c = Config();"
        f"c = c.model_copy(update={{'model': c.model.model_copy(update={{'torch_threads': {threads}}})}});"
        "training_seconds(c, 1); print(training_seconds(c, 1))"  # the second: no first-use costs
    )
    with busy(busy_processes):
        try:
            done = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, timeout=cap, check=True
            )
        except subprocess.TimeoutExpired:
            return None
    return float(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="trainings per figure (median; default 3)")
    parser.add_argument("--cap", type=float, default=120.0, help="seconds the old-behaviour run may take")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    config = Config()
    training_seconds(config, 1)  # first-use costs (imports, data cache) are nobody's figure
    alone = training_seconds(config, args.repeat)
    with busy(2):
        beside = training_seconds(config, args.repeat)
    cores = cpu_count()
    old_alone = capped_seconds(cores, 0, args.cap)
    old_beside = capped_seconds(cores, 2, args.cap)
    figures = {
        "cores": cores,
        "alone_seconds": alone,
        "beside_two_busy_seconds": beside,
        "ratio": beside / alone,
        "all_cores_threads_alone_seconds": old_alone,
        "all_cores_threads_beside_two_busy_seconds": old_beside,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"one default training (AAPL, 2015-12-31) on {cores} cores, model.torch_threads = 1 (default):")
    print(f"  alone                     {alone:6.2f} s")
    print(f"  beside two busy processes {beside:6.2f} s   {beside / alone:.2f}x (target < 3x)")

    def shown(value: float | None) -> str:
        return f"{value:6.2f} s" if value is not None else f"> {args.cap:.0f} s (stopped)"

    print(f"the same on {cores} torch threads (torch's default, the old behaviour), one run each:")
    print(f"  alone                     {shown(old_alone)}")
    print(f"  beside two busy processes {shown(old_beside)}")


if __name__ == "__main__":
    main()
