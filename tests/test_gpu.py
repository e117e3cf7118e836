"""CUDA paths: run where a GPU is present (skipped elsewhere; CI has none)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_plugin import ForecastService, ManualClock, ModelRegistry, ModelTrainer
from lstm_plugin.inference import select_providers

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


def test_cuda_inference_device_uses_cuda_provider_only_when_installed():
    import onnxruntime as ort

    providers = select_providers("cuda")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert providers[0] == "CUDAExecutionProvider"
    else:
        assert providers == ["CPUExecutionProvider"]
