"""Re-tuning that never stops: each training pass spends ``tuning.trials_per_pass`` trials on the models
whose tuning is due, best priority first (docs/tuning.md, *Continual*).

A model is due when no choice usable at the pass is younger than ``tuning.every_days`` (by the date of
the bars it read). Its study is dated by the pass that opened it and reads bars up to that date only; it
goes on over the next passes until it holds ``tuning.trials`` trials, and its choice is usable just after
the pass that completes it — never by a training at that very time, which may have run before the pass.
Passes at one clock time share one budget. Everything is decided from what the registry held at the
pass's time (:mod:`~.ledger`), so a backtest run again over its own registry trains the same models.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from lstm_plugin.core.clock import Clock
from lstm_plugin.core.config import Config
from lstm_plugin.core.data import DataSource
from lstm_plugin.core.errors import LSTMPluginError
from lstm_plugin.core.statuses import ModelType
from lstm_plugin.serving.registry import UNIVERSAL_NAME, ModelRegistry
from lstm_plugin.training.policy import category_base
from lstm_plugin.training.tuning.study import Tuner, TuningError, study_name

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

logger = logging.getLogger(__name__)


class ContinualTuning:
    """Spends each pass's tuning budget on the due models of ``models``, in the order given."""

    def __init__(self, tuner: Tuner) -> None:
        self.tuner = tuner
        self.settings = tuner.config.tuning
        self._failed: set[tuple[str, str, pd.Timestamp]] = set()
        #: trials charged to the passes at one clock time: several passes at one time share one budget
        self._spent: tuple[pd.Timestamp | None, int] = (None, 0)

    def run_pass(self, now: pd.Timestamp, models: Iterable[tuple[ModelType, str]]) -> int:
        """Trials the pass at ``now`` ran (or found run by an earlier run of the same pass)."""
        if self.settings.every_days is None:
            return 0
        spent = self._spent[1] if self._spent[0] == now else 0
        budget = self.settings.trials_per_pass - spent
        dates: dict[tuple[ModelType, str], list[pd.Timestamp]] | None = None
        for model_type, name in models:
            if budget <= 0:
                break
            as_of = None
            try:
                if dates is None:
                    dates = self.tuner.study_dates()
                as_of = self._study_date(model_type, name, now, dates.get((model_type, name), []))
                if as_of is None or (model_type, name, as_of) in self._failed:
                    continue
                _, charged = self.tuner.advance(model_type, name, as_of, now, budget)
            except TuningError as exc:  # the study file is busy (a `tune` runs) or damaged: trainings go on
                logger.warning("no tuning in this pass: %s", exc)
                break
            except LSTMPluginError as exc:  # too few bars, say: not tuned, tried again at its next date
                when = now if as_of is None else as_of
                logger.warning("tuning %s %s as of %s: %s", model_type, name, f"{when:%Y-%m-%d}", exc)
                self._failed.add((model_type, name, when))
                continue
            budget -= charged
        self._spent = (now, self.settings.trials_per_pass - budget)
        return self._spent[1] - spent

    def _study_date(
        self, model_type: ModelType, name: str, now: pd.Timestamp, kept: list[pd.Timestamp]
    ) -> pd.Timestamp | None:
        """The date of the study to work on at ``now`` (``kept``: the dates of the model's studies): an open
        one, else a new one if the model is due."""
        usable = [r for r in self.tuner.tuned.all(model_type, name) if pd.Timestamp(r.tuned_at) <= now]
        last = max((pd.Timestamp(r.data_end) for r in usable), default=None)
        finished = {r.study for r in usable}
        studies = [d for d in kept if d <= now and (last is None or d > last)]
        open_ones = [d for d in studies if study_name(model_type, name, d) not in finished]
        if open_ones:
            return open_ones[-1]
        assert self.settings.every_days is not None
        if last is None or now - last >= pd.Timedelta(days=self.settings.every_days):
            return now
        return None


def continual_tuning(
    config: Config,
    source: DataSource,
    registry: ModelRegistry,
    backend: Any,
    clock: Clock,
    plugins: Iterable[Any] = (),
) -> ContinualTuning | None:
    """A training service's continual tuning, on its backend and clock; ``None`` when
    ``tuning.every_days`` is off."""
    if config.tuning.every_days is None:
        return None
    return ContinualTuning(Tuner(config, source, registry, backend, False, clock, plugins))


def tuning_order(
    config: Config, universe: Iterable[str], categories: Mapping[str, str]
) -> list[tuple[ModelType, str]]:
    """The models continual tuning looks after (``tuning.models``; none while it is off), best base
    priority first (the universal model at its ``universal.priority``; a symbol at its category's,
    ``scanning`` unless requested otherwise)."""
    settings, tuning = config.lstm_service, config.tuning
    ranked: list[tuple[float, ModelType, str]] = [
        (category_base(categories.get(s, "scanning"), settings.schedule_priority), "specific", s)
        for s in (universe if tuning.looks_after("specific") else ())
    ]
    if settings.universal.enabled and tuning.looks_after("universal"):
        ranked.append((settings.universal.priority, "universal", UNIVERSAL_NAME))
    return [(model_type, name) for _, model_type, name in sorted(ranked)]
