"""Every status word the package returns, as ``Literal`` types in one place (docs/architecture.md).

Results carry these as plain strings (they go to JSON); the types let a checker and an editor
tell a caller which words can come back.
"""

from __future__ import annotations

from typing import Literal

__all__ = [
    "JobState",
    "ModelStatus",
    "PredictionStatus",
    "RequestStatus",
    "TrainStatus",
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
TrainStatus = Literal["trained", "candidate", "reused"]
