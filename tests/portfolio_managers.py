"""What the LSTM portfolio-manager tests share: a manager on the shared trained registry or an empty one."""

from __future__ import annotations

from pathlib import Path

import pytest

from lstm_plugin import (
    LSTMEnhancedPortfolioManager,
    ManualClock,
    ModelRegistry,
)

from .conftest import tiny_config

T = "2016-03-31"
REPO = Path(__file__).resolve().parents[1]
LSTM_KEYS = {
    "direction",
    "confidence",
    "contribution",
    "model_type",
    "reliability",
    "used",
    "reason",
    "signal",
    "trust",
}
QUIET = {"enable_monitoring": False}  # the shared registry stays untouched


def enhanced(registry, source, when=T, plugins=(), **sections) -> LSTMEnhancedPortfolioManager:
    sections.setdefault("lstm_service", {}).update(QUIET)
    return LSTMEnhancedPortfolioManager(
        config=tiny_config(**sections),
        source=source,
        registry=registry,
        clock=ManualClock(when),
        backend="sync",
        plugins=plugins,
    )


@pytest.fixture
def pm(trained, source):
    manager = enhanced(trained["registry"], source)
    yield manager
    manager.close()


@pytest.fixture
def empty_pm(tmp_path, source):
    manager = enhanced(
        ModelRegistry(tmp_path / "empty"),
        source,
        lstm={"max_training_models": 1},  # one training per pass: a test sees which comes first
        lstm_service={"universal": {"enabled": False}},
    )
    yield manager
    manager.close()


def runs(manager: LSTMEnhancedPortfolioManager) -> int:
    return manager.lstm_integration.forecasts.runner.run_count
