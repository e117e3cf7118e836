"""The ``model`` settings a registered version was trained with: what its features are computed under when
it serves, so a symbol's tuned settings reach the ``lstm_features`` hook at prediction time as at training
(docs/tuning.md)."""

from __future__ import annotations

import functools
import json

from pydantic import ValidationError

from lstm_plugin.core.config import ModelSection
from lstm_plugin.model.model_files import ModelRecord

__all__ = ["trained_settings"]


def trained_settings(record: ModelRecord, fallback: ModelSection) -> ModelSection:
    """``record``'s ``model_config``, or ``fallback`` (the run's ``model`` section) for a version whose
    recorded settings no longer validate (written by an older release)."""
    raw = record.metadata.get("model_config")
    if not isinstance(raw, dict):
        return fallback
    return _parsed(json.dumps(raw, sort_keys=True)) or fallback


@functools.lru_cache(maxsize=1024)
def _parsed(text: str) -> ModelSection | None:
    try:
        return ModelSection.model_validate(json.loads(text))
    except ValidationError:
        return None
