"""When a served model is due for retraining: one rule for the forecast status and the training plan."""

from __future__ import annotations

import pandas as pd

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def retrain_due(last_attempt: pd.Timestamp | None, now: pd.Timestamp, max_age_days: float) -> bool:
    """True when no training was attempted yet or the newest attempt is older than ``max_age_days``.

    Counted from the newest attempt, candidates included, so a model that keeps losing to the
    current one is not retrained at every pass.
    """
    return last_attempt is None or (now - last_attempt) > pd.Timedelta(days=max_age_days)
