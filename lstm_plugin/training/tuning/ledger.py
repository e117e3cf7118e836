"""What a study holds, as seen at one moment: its finished trials, and the pass each was run in.

A training service tunes a little in each pass (``tuning.trials_per_pass``), and each trial it runs is
stamped with the pass's clock time. Seen at a time T, a study holds only the trials stamped at or before
T (a trial run by the CLI carries no stamp and is always seen): so a backtest run again over a registry
that an earlier run filled sees, at each rebalance, exactly what the first run saw then — the same
budget spent, the same studies complete — and trains the same models.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: the user attribute of a trial that names the service pass it ran in (ISO time)
PASS_ATTRIBUTE = "pass"


@dataclass(frozen=True)
class StudyView:
    """An Optuna study seen at ``until`` (``None``: every trial)."""

    study: Any
    until: pd.Timestamp | None = None

    def _seen(self, trial: Any) -> bool:
        stamp = trial.user_attrs.get(PASS_ATTRIBUTE)
        return self.until is None or stamp is None or pd.Timestamp(stamp) <= self.until

    def trials(self, *states: str) -> list[Any]:
        """Trials in ``states`` (names of ``optuna.trial.TrialState``; default: complete or pruned)."""
        from optuna.trial import TrialState

        wanted = tuple(TrialState[s] for s in (states or ("COMPLETE", "PRUNED")))
        return [t for t in self.study.get_trials(deepcopy=False, states=wanted) if self._seen(t)]

    @property
    def finished(self) -> int:
        return len(self.trials())

    @property
    def pruned(self) -> int:
        return len(self.trials("PRUNED"))

    def best(self) -> Any | None:
        """The complete trial with the highest value (the earliest of equals), or ``None``."""
        complete = self.trials("COMPLETE")
        return max(complete, key=lambda t: (t.value, -t.number)) if complete else None

    def charged(self, when: pd.Timestamp) -> int:
        """Trials run in the pass at ``when``."""
        stamp = when.isoformat()
        return sum(t.user_attrs.get(PASS_ATTRIBUTE) == stamp for t in self.trials())

    def curves(self) -> tuple[dict[int, float], ...]:
        """The intermediate scores of the complete trials: what the median rule compares with."""
        return tuple(dict(t.intermediate_values) for t in self.trials("COMPLETE"))


def requeue_interrupted(study: Any) -> None:
    """Trials left running by a killed tuning fail now, and their settings are proposed again first."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(dict(trial.params), skip_if_exists=False)
