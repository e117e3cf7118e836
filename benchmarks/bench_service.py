"""Training-service throughput by worker count, the driver's own work per job, and the scheduler's overhead.

Run: ``python benchmarks/bench_service.py [--workers 1,2,4,8,16] [--jobs 24] [--ray] [--json]``.
Everything runs in this one process on real bundled data with the default model config, as of
2015-12-31, each run into a fresh registry (so no training is reused). Worker pools are started and
warmed up before the clock starts: the figures are steady-state throughput.

Each job reads and cuts its own bars in the worker, trains on one torch thread, exports and verifies
its ONNX there; the driver only schedules and publishes. Ratios are against one local worker, run in
this process. Targets: 2 workers >= 1.8x one on this 2-core machine; on a machine with >= 8 cores,
8 workers >= 5x.
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


def throughput(config: Config, backend: Any, symbols: list[str]) -> dict[str, float]:
    """Jobs per second for ``symbols`` on a warmed-up ``backend``, request to last model registered."""
    started = time.perf_counter()
    backend.warm_up()
    warm = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as folder:
        service = TrainingService(
            config, bundled_source(), ModelRegistry(folder), clock=ManualClock(AS_OF), backend=backend
        )
        started, driver = time.perf_counter(), time.process_time()
        service.request_model_training(symbols)
        assert service.drain(timeout=1800), "training did not finish"
        seconds = time.perf_counter() - started
        driver_seconds = time.process_time() - driver  # this process's CPU: scheduling and publishing
        snapshot = service.snapshot()
        service.shutdown(timeout=30)
    assert not snapshot["failed"], snapshot["failed"]
    return {
        "seconds": seconds,
        "jobs_per_second": len(symbols) / seconds,
        "warm_up_seconds": warm,
        "mean_job_seconds": snapshot["mean_training_seconds"],
        "driver_seconds_per_job": driver_seconds / len(symbols),
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
    parser.add_argument("--workers", default="1,2", help="local worker counts, comma-separated (default 1,2)")
    parser.add_argument("--jobs", type=int, default=24, help="models trained per run (default 24)")
    parser.add_argument(
        "--ray", action="store_true", help="also run Ray with as many CPUs as the most workers"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    counts = sorted({max(1, int(n)) for n in args.workers.split(",")} | {1})
    config = Config().model_copy(
        update={"lstm": Config().lstm.model_copy(update={"max_training_models": 10_000})}
    )
    symbols = (bundled_source().symbols() * (args.jobs // 24 + 1))[: args.jobs]
    if len(set(symbols)) < len(symbols):
        raise SystemExit("--jobs › at most 24 (one per bundled symbol)")
    runs: dict[str, dict[str, float]] = {}
    warm_up = LocalBackend(1)  # the driver's first-use costs (imports, caches) are not one run's
    throughput(config, warm_up, symbols[:2])
    warm_up.shutdown(timeout=30)
    for count in counts:
        backend = LocalBackend(count)
        runs[f"local, {count} worker{'s' if count > 1 else ''}"] = throughput(config, backend, symbols)
        backend.shutdown(timeout=30)
    if args.ray:
        ray = RayBackend(RaySection(num_cpus=max(counts)))
        runs[f"ray, {max(counts)} CPUs"] = throughput(config, ray, symbols)
        ray.shutdown(timeout=30)
    overhead = scheduler_overhead(config, bundled_source().symbols()[:12], rounds=20)
    baseline = runs["local, 1 worker"]["jobs_per_second"]
    for run in runs.values():
        run["speedup"] = run["jobs_per_second"] / baseline
    figures = {
        "cores": cpu_count(),
        "jobs": len(symbols),
        "runs": runs,
        "scheduler_overhead_ms_per_job": overhead["median_seconds_per_job"] * 1000,
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{len(symbols)} default-config trainings as of {AS_OF} on {cpu_count()} cores (warm pools):")
    print(f"  {'run':<22}{'seconds':>9}{'jobs/s':>9}{'speed-up':>10}{'job s':>8}{'driver ms/job':>15}")
    for label, run in runs.items():
        print(
            f"  {label:<22}{run['seconds']:>9.1f}{run['jobs_per_second']:>9.2f}{run['speedup']:>9.2f}x"
            f"{run['mean_job_seconds']:>8.2f}{run['driver_seconds_per_job'] * 1000:>15.1f}"
        )
    print("targets: 2 workers >= 1.8x one (2 cores); 8 workers >= 5x (>= 8 cores)")
    print(
        f"scheduler overhead per job, no training: {figures['scheduler_overhead_ms_per_job']:.2f} ms "
        "(target < 5 ms)"
    )


if __name__ == "__main__":
    main()
