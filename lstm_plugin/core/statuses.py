"""Every status word the package returns, as ``Literal`` types in one place (docs/architecture.md).

Results carry these as plain strings (they go to JSON); the types let a checker and an editor
tell a caller which words can come back.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__ = [
    "MODEL_TYPES",
    "JobState",
    "ModelStatus",
    "ModelType",
    "OutcomeSummary",
    "PredictionStatus",
    "RequestStatus",
    "TrainStatus",
    "as_model_type",
]

#: A forecast's ``status`` (docs/models.md); ``disabled`` (LSTM off) and ``skipped`` (no technical
#: analysis to blend into) come from the portfolio managers.
PredictionStatus = Literal[
    "success", "not_available", "stale", "insufficient_data", "error", "disabled", "skipped"
]
#: A symbol's model as ``get_model_status`` and ``lstm-plugin status`` report it.
ModelStatus = Literal["not_available", "stale", "outdated", "ready", "scheduled", "training"]
#: A training job in the service's queue: queued -> running -> done | failed (or queued again to
#: retry); cancelled when dropped or shut down.
JobState = Literal["queued", "running", "done", "failed", "cancelled"]
#: What a training request did with one symbol.
RequestStatus = Literal["queued", "already_queued", "already_training", "rejected", "up_to_date", "disabled"]
#: A finished training: a new production version, a candidate that did not beat it, or a reused file.
#: (``trained`` is the word outputs have always shown for *promoted*; docs/architecture.md, *Glossary*.)
TrainStatus = Literal["trained", "candidate", "reused"]
#: A model's kind: one symbol's own, or the universal model pooled over the universe.
ModelType = Literal["specific", "universal"]
MODEL_TYPES: tuple[ModelType, ...] = ("specific", "universal")


def as_model_type(value: object) -> ModelType:
    """``value`` checked to be a model type (read from a file, a command line or a job key)."""
    if value == "specific" or value == "universal":
        return value
    raise ValueError(f"model_type must be one of {MODEL_TYPES} (got: {value!r})")


class OutcomeSummary(TypedDict):
    """A finished training as the service's snapshot, ``lstm_after_train`` and ``status`` show it."""

    status: TrainStatus
    stage: str
    stage_reason: str | None
    stage_rule: str | None
    decided: bool
    model_type: ModelType
    model_version: int
    trained_at: str
    train_start: str | None
    train_end: str | None
    metrics: dict[str, Any]
    symbols: list[str] | None
    seconds: float
    path: str
