"""onnxruntime vs torch-eager latency for the default model, and the default model's training time.

Run: ``python benchmarks/bench_inference.py``. Everything is measured in this one process on real
bundled data (AAPL, 10 years up to 2015-12-31) with the default config; latencies are medians.
"""

from __future__ import annotations

import statistics
import tempfile
import time

import numpy as np
import torch

from lstm_plugin import Config, ModelRegistry, ModelTrainer, bundled_source
from lstm_plugin.model.fitting import fit_forecaster
from lstm_plugin.model.samples import compute_features, training_samples
from lstm_plugin.plugins.manager import get_plugin_manager
from lstm_plugin.serving.inference import OnnxRunner


def median_seconds(fn, repeats: int) -> float:
    for _ in range(max(3, repeats // 10)):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    config = Config()
    source = bundled_source()
    plugins = get_plugin_manager(config.plugins)

    with tempfile.TemporaryDirectory() as folder:
        registry = ModelRegistry(folder)
        trainer = ModelTrainer(config, source, registry, plugins, progress=False)
        start = time.perf_counter()
        outcome = trainer.train_specific("AAPL", as_of="2015-12-31")
        total = time.perf_counter() - start
        record = outcome.record
        meta = record.metadata
        print(
            f"training, default model, AAPL {meta['train_start'][:10]}..2015-12-31 "
            f"({meta['metrics']['n_train']} training windows, {meta['metrics']['epochs_run']} epochs):"
        )
        print(
            f"  fit {meta['metrics']['fit_seconds']:.2f} s; fit + ONNX export + parity check + register "
            f"{total:.2f} s (target <= 5 s)"
        )

        frame = source.load("AAPL", end="2015-12-31").loc["2006-01-01":]
        samples = training_samples(
            frame, compute_features(frame, plugins, config.model, "AAPL"), config.model
        )
        forecaster = fit_forecaster(
            samples,
            config.model,
            lambda n: plugins.call_first("lstm_build_model", n_features=n, config=config.model),
            progress=False,
        ).forecaster
        graph = forecaster.serving().eval()
        runner = OnnxRunner("cpu", intra_op_threads=1)
        session_record = record

        print(
            f"\nlatency per call, median (torch {torch.__version__}, {torch.get_num_threads()} threads; "
            f"onnxruntime 1 intra-op thread):"
        )
        print(
            f"  {'batch':>5}  {'onnxruntime':>12}  {'torch eager':>12}  {'torch 1 thread':>14}  "
            f"{'ort speed-up':>12}"
        )
        default_threads = torch.get_num_threads()
        for batch in (1, 20, 500):
            x = np.ascontiguousarray(samples.windows[-batch:])
            xt = torch.as_tensor(x)
            repeats = 300 if batch < 100 else 40

            def torch_call():
                with torch.no_grad():
                    graph(xt)

            ort_s = median_seconds(lambda: runner.run(session_record, x), repeats)
            torch_s = median_seconds(torch_call, repeats)
            torch.set_num_threads(1)
            torch_1 = median_seconds(torch_call, repeats)
            torch.set_num_threads(default_threads)
            print(
                f"  {batch:>5}  {ort_s * 1e6:>10.0f}us  {torch_s * 1e6:>10.0f}us  {torch_1 * 1e6:>12.0f}us  "
                f"{torch_s / ort_s:>11.1f}x"
            )


if __name__ == "__main__":
    main()
