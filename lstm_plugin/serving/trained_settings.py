"""The ``model`` settings a registered version was trained with: what its features are computed under when
it serves, so a symbol's tuned settings reach the ``lstm_features`` hook at prediction time as at training
(docs/tuning.md)."""

from __future__ import annotations

import threading

from pydantic import ValidationError

from lstm_plugin.core.config import ModelSection
from lstm_plugin.model.model_files import ModelRecord

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def trained_settings(record: ModelRecord, fallback: ModelSection) -> ModelSection:
    """``record``'s ``model_config``, or ``fallback`` (the run's ``model`` section) for a version whose
    recorded settings no longer validate (written by an older release). Parsed once per version (by its
    sha256): forecasts ask for it on every bar."""
    sha256 = str(record.metadata["sha256"])
    with _LOCK:
        if sha256 in _PARSED:
            return _PARSED[sha256] or fallback
    raw = record.metadata.get("model_config")
    try:
        parsed = ModelSection.model_validate(raw) if isinstance(raw, dict) else None
    except ValidationError:
        parsed = None
    with _LOCK:
        if len(_PARSED) >= _KEPT:
            _PARSED.pop(next(iter(_PARSED)))  # the oldest first
        _PARSED[sha256] = parsed
    return parsed or fallback


#: versions whose settings were parsed, by sha256 (``None``: they do not validate), at most ``_KEPT``
_PARSED: dict[str, ModelSection | None] = {}
_KEPT = 4096
_LOCK = threading.Lock()
