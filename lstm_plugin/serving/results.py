"""The shapes of what serving returns: a forecast and a model's status (plain dicts, typed for readers and
checkers).

They stay dicts, not objects: they go to JSON, to notebooks and to the original API unchanged.
Every key is always present; a failed forecast has every key of a success (docs/models.md).
"""

from __future__ import annotations

from typing import Any, TypedDict

from lstm_plugin.core.statuses import ModelStatus, ModelType, PredictionStatus
from lstm_plugin.model.model_files import ModelRecord
from lstm_plugin.serving.live_scores import LiveScore

__all__ = ["CandidateModel", "ModelStatusReport", "Prediction", "candidate_model"]


class Prediction(TypedDict):
    """One forecast for ``horizon`` bars after ``as_of`` (the last bar it read)."""

    symbol: str
    status: PredictionStatus
    message: str
    predicted_direction: str  # down | neutral | up: the most probable class
    confidence: float  # that class's probability
    price_change_pct: float  # 100 * (exp(expected_log_return) - 1)
    probabilities: dict[str, float] | None
    expected_log_return: float | None
    horizon: int | None
    model_type: ModelType | None  # specific | universal
    model_version: int | None
    reliability: float | None
    quality: float | None
    trained_at: str | None
    as_of: str | None
    cached: bool
    provider: str | None  # the onnxruntime execution provider that ran it (CPUExecutionProvider, ...)


class CandidateModel(TypedDict):
    """A newer model that was trained but kept from serving, and why."""

    model_version: int
    reliability: float | None
    trained_at: str
    reason: str | None


def candidate_model(newest: ModelRecord | None) -> CandidateModel | None:
    """``newest`` (the newest version trained by now) described as a shelved candidate, or ``None`` when it
    is not one."""
    if newest is None or newest.stage != "candidate":
        return None
    return {
        "model_version": newest.version,
        "reliability": newest.reliability,
        "trained_at": newest.metadata["trained_at"],
        "reason": newest.metadata.get("stage_reason"),
    }


class ModelStatusReport(TypedDict):
    """A symbol's own model as ``get_model_status`` sees it at the clock's time."""

    symbol: str
    status: ModelStatus
    model_type: ModelType | None
    model_version: int | None
    reliability: float | None
    quality: float | None
    ic: float | None
    trained_at: str | None
    age_days: float | None
    served_by: str | None
    candidate: CandidateModel | None
    live: LiveScore | None  # its live figures on the outcomes known now (docs/forecast-evidence.md)
    degraded: str | None  # why it is due for a retrain on degradation, else None
    provider: str  # the onnxruntime execution provider forecasts run on
    tuning: dict[str, Any] | None  # the tuning whose settings the served model was trained with
    tuned: dict[str, Any] | None  # the newest tuning by now: the settings its next training uses
