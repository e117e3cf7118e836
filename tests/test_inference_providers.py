"""onnxruntime's provider is checked, not assumed: ``inference.device: cuda`` fails with one line when
CUDA is not really in use, ``auto`` falls back to the CPU with one warning, and every forecast says
which provider ran it. (Where a GPU is present, tests/test_gpu.py runs the CUDA path itself.)"""

from __future__ import annotations

import json
import logging
import subprocess
import sys

import onnxruntime as ort
import pytest

from lstm_plugin import ConfigError, ForecastService, ManualClock
from lstm_plugin.serving import inference
from lstm_plugin.serving.inference import CPU, CUDA, select_providers

from .conftest import TINY, tiny_config

NO_CUDA = CUDA not in ort.get_available_providers()


@pytest.fixture
def claims_cuda(monkeypatch):
    """An onnxruntime that lists a CUDA provider it cannot start (the CPU package, or no GPU)."""
    monkeypatch.setattr(inference.ort, "get_available_providers", lambda: [CUDA, CPU])


@pytest.mark.skipif(not NO_CUDA, reason="this onnxruntime has a CUDA provider")
def test_cuda_without_the_provider_is_a_config_error():
    with pytest.raises(ConfigError, match="install onnxruntime-gpu instead of onnxruntime"):
        select_providers("cuda")


def test_cuda_listed_but_not_started_fails_on_the_first_session(trained, source, claims_cuda):
    config = tiny_config(inference={"device": "cuda"})
    service = ForecastService(config, trained["registry"], source, ManualClock("2016-03-31"))
    with pytest.raises(ConfigError, match="could not start its CUDA provider"):
        service.get_lstm_prediction("AAPL")


def test_auto_falls_back_to_the_cpu_with_one_warning(trained, source, claims_cuda, caplog):
    config = tiny_config(inference={"device": "auto"})
    service = ForecastService(config, trained["registry"], source, ManualClock("2016-03-31"))
    with caplog.at_level(logging.WARNING, logger="lstm_plugin.serving.inference"):
        found = service.predict_many(["AAPL", "MSFT", "KO"])
    assert {p["status"] for p in found.values()} == {"success"}
    assert {p["provider"] for p in found.values()} == {CPU}
    assert len([r for r in caplog.records if "could not start CUDA" in r.message]) == 1
    assert service.get_model_status("AAPL")["provider"] == CPU


@pytest.mark.skipif(not NO_CUDA, reason="this onnxruntime has a CUDA provider")
def test_the_command_line_exits_2_with_one_line(trained, tmp_path):
    (tmp_path / "cuda.json").write_text(json.dumps({**TINY, "inference": {"device": "cuda"}}))
    done = subprocess.run(
        [sys.executable, "-m", "lstm_plugin", "predict", "AAPL", "--as-of", "2016-03-31", "--json",
         "--models", str(trained["root"]), "--config", str(tmp_path / "cuda.json")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "onnxruntime-gpu" in done.stderr
