"""Training-service throughput by backend, and the scheduler's own overhead per job.

Run: ``python benchmarks/bench_service.py [--jobs 8] [--json]``. Everything runs in this one
process on real bundled data with the default model config, as of 2015-12-31, each run into a
fresh registry (so no training is reused). Worker pools are started and warmed up before the
clock starts: the figures are steady-state throughput; start-up costs are printed beside them.

Ratios are against the baseline run in this process: one local worker, which gets every core
as torch threads (the backend's rule: ``cores // workers`` threads per worker).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import tempfile
import time
from concurrent.futures import Future
from typing import Any

from lstm_plugin import Config, ManualClock, ModelRegistry, bundled_source
from lstm_plugin.core.config import RaySection
from lstm_plugin.training.backends import LocalBackend, RayBackend, cpu_count
from lstm_plugin.training.jobs import JobResult, TrainJob
from lstm_plugin.training.service import TrainingService

AS_OF = "2015-12-31"
SYMBOLS = ["AAPL", "MSFT", "KO", "XOM", "JNJ", "PG", "WMT", "PEP", "IBM", "INTC", "CSCO", "ORCL"]


def throughput(config: Config, backend: Any, symbols: list[str]) -> dict[str, float]:
    """Jobs per second for ``symbols`` on a warmed-up ``backend``, request to last model registered."""
    started = time.perf_counter()
    backend.warm_up()
    warm = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        service = TrainingService(
            config, bundled_source(), ModelRegistry(folder), clock=ManualClock(AS_OF), backend=backend
        )
        started = time.perf_counter()
        service.request_model_training(symbols)
        assert service.drain(timeout=1800), "training did not finish"
        seconds = time.perf_counter() - started
        snapshot = service.snapshot()
        service.shutdown(timeout=30)
    assert not snapshot["failed"], snapshot["failed"]
    return {
        "seconds": seconds,
        "jobs_per_second": len(symbols) / seconds,
        "warm_up_seconds": warm,
        "mean_job_seconds": snapshot["mean_training_seconds"],
    }


class InstantBackend:
    """Answers every job at once with 'identical training already registered': no training at all."""

    name = "instant"
    slots = 4

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys

    def submit(self, job: TrainJob) -> Future:
        future: Future = Future()
        future.set_result(
            JobResult(job.model_type, job.name, self.keys[job.name], None, None, 0.0, "instant")
        )
        return future

    def warm_up(self) -> None:
        return None

    def shutdown(self, timeout: float | None = None) -> None:
        return None


def scheduler_overhead(config: Config, symbols: list[str], rounds: int) -> dict[str, float]:
    """Seconds per job of everything but training: request, priority, queue, dispatch, data slice,
    registry lookups, publish bookkeeping, snapshot."""
    source = bundled_source()
    with tempfile.TemporaryDirectory() as folder:
        registry = ModelRegistry(folder)
        tiny = config.model_copy(
            update={"model": config.model.model_copy(update={"epochs": 1, "hidden_size": 4})}
        )
        seeded = TrainingService(tiny, source, registry, clock=ManualClock(AS_OF), backend="sync")
        seeded.request_model_training(symbols)
        seeded.drain()
        keys = {s: str(registry.resolve("specific", s).metadata["training_key"]) for s in symbols}
        many = config.model_copy(
            update={"lstm": config.lstm.model_copy(update={"max_training_models": len(symbols)})}
        )
        service = TrainingService(
            many, source, registry, clock=ManualClock(AS_OF), backend=InstantBackend(keys)
        )
        per_job = []
        for _ in range(rounds):
            started = time.perf_counter()
            service.request_model_training(symbols, category="portfolio")
            service.update(automatic=False)
            per_job.append((time.perf_counter() - started) / len(symbols))
            assert service.idle()
        return {"median_seconds_per_job": statistics.median(per_job), "jobs": rounds * len(symbols)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=12, help="models trained per run (default 12)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = Config().model_copy(
        update={"lstm": Config().lstm.model_copy(update={"max_training_models": 1000})}
    )
    symbols = SYMBOLS[: args.jobs]
    cores = cpu_count()

    runs: dict[str, dict[str, float]] = {}
    for label, backend in (
        ("local, 1 worker (baseline)", LocalBackend(1)),
        ("local, 1 worker, 1 torch thread", LocalBackend(1, torch_threads=1)),
        ("local, 2 workers", LocalBackend(2)),
    ):
        runs[label] = throughput(config, backend, symbols)
        backend.shutdown(timeout=30)
    ray = RayBackend(RaySection(num_cpus=2))
    runs["ray, 2 CPUs"] = throughput(config, ray, symbols)
    ray.shutdown(timeout=30)
    overhead = scheduler_overhead(config, SYMBOLS, rounds=20)

    baseline = runs["local, 1 worker (baseline)"]["jobs_per_second"]
    single = runs["local, 1 worker, 1 torch thread"]["jobs_per_second"]
    figures = {
        "cores": cores,
        "jobs": len(symbols),
        "runs": runs,
        "local_2_vs_1_worker": runs["local, 2 workers"]["jobs_per_second"] / baseline,
        "local_2_vs_1_worker_same_threads": runs["local, 2 workers"]["jobs_per_second"] / single,
        "ray_2cpu_vs_1_local_worker": runs["ray, 2 CPUs"]["jobs_per_second"] / baseline,
        "scheduler_overhead_ms_per_job": overhead["median_seconds_per_job"] * 1000,
        "scheduler_overhead_vs_mean_training": overhead["median_seconds_per_job"]
        / runs["local, 2 workers"]["mean_job_seconds"],
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{len(symbols)} default-config trainings as of {AS_OF} on {cores} cores (warm pools):")
    print(f"  {'run':<34}{'seconds':>9}{'jobs/s':>9}{'vs baseline':>13}{'warm-up s':>11}")
    for label, run in runs.items():
        print(
            f"  {label:<34}{run['seconds']:>9.1f}{run['jobs_per_second']:>9.2f}"
            f"{run['jobs_per_second'] / baseline:>12.2f}x{run['warm_up_seconds']:>11.1f}"
        )
    print(f"\n2 local workers vs 1:                  {figures['local_2_vs_1_worker']:.2f}x (target >= 1.6x)")
    print(f"  vs 1 worker on 1 torch thread:       {figures['local_2_vs_1_worker_same_threads']:.2f}x")
    print(
        f"Ray, 2 CPUs vs 1 local worker:         {figures['ray_2cpu_vs_1_local_worker']:.2f}x (target >= "
        f"1.4x)"
    )
    print(
        f"scheduler overhead per job, no training: {figures['scheduler_overhead_ms_per_job']:.2f} ms (target "
        f"< 5 ms; "
        f"{figures['scheduler_overhead_vs_mean_training'] * 100:.2f}% of a mean training)"
    )


if __name__ == "__main__":
    main()
