"""CUDA paths: run where a GPU is present (skipped elsewhere; CI has none)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_plugin import ForecastService, ManualClock, ModelRegistry, ModelTrainer
from lstm_plugin.serving.inference import select_providers

from .conftest import tiny_config

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_training_on_cuda_serves_like_cpu_training(tmp_path, source):
    results = {}
    for device in ("cuda", "cpu"):
        cfg = tiny_config(model={"device": device})
        registry = ModelRegistry(tmp_path / device)
        outcome = ModelTrainer(cfg, source, registry, progress=False).train_specific("KO", as_of="2012-12-31")
        assert outcome.record.metadata["training_device"] == device
        forecasts = ForecastService(cfg, registry, source, ManualClock("2013-01-31"))
        results[device] = forecasts.get_lstm_prediction("KO")
        assert results[device]["status"] == "success"
    # different kernels give slightly different weights; the forecasts must still be close
    gpu, cpu = results["cuda"]["probabilities"], results["cpu"]["probabilities"]
    assert np.allclose(list(gpu.values()), list(cpu.values()), atol=0.1)


def test_cuda_inference_runs_on_the_cuda_provider(tmp_path, source):
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDA provider here (install onnxruntime-gpu)")
    assert select_providers("cuda")[0] == "CUDAExecutionProvider"
    cfg = tiny_config(inference={"device": "cuda"})
    registry = ModelRegistry(tmp_path)
    ModelTrainer(cfg, source, registry, progress=False).train_specific("KO", as_of="2012-12-31")
    forecasts = ForecastService(cfg, registry, source, ManualClock("2013-01-31"))
    assert forecasts.get_lstm_prediction("KO")["status"] == "success"
    session = forecasts.runner.session(registry.resolve("specific", "KO"))
    assert session.get_providers()[0] == "CUDAExecutionProvider"
