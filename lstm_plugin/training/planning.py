"""Planning: what the priority rules see of each model, the training plan, and the automatic retraining.

The rules themselves are pure functions in :mod:`lstm_plugin.training.policy`; this module feeds
them the registry's view of each model at the service's clock, and lets plugins adjust the result
through ``lstm_training_priority`` (docs/training-service.md).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypedDict

import pandas as pd

from lstm_plugin.core.config import Config
from lstm_plugin.core.data import validate_symbol
from lstm_plugin.core.statuses import ModelStatus, ModelType
from lstm_plugin.plugins.manager import PluginManager
from lstm_plugin.serving.freshness import retrain_due
from lstm_plugin.serving.registry import UNIVERSAL_NAME, ModelRecord, ModelRegistry
from lstm_plugin.training.policy import CATEGORIES, ModelState, Priority, category_base, compute_priority
from lstm_plugin.training.queue import JobKey, JobQueue, RequestDetail

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: ``health(record, now)``: a served model's live figures and why it is degraded (or ``None``)
Health = Callable[[ModelRecord, pd.Timestamp], tuple[Any, "str | None"]]
#: ``enqueue(model_type, name, category, priority, now, force)``
Enqueue = Callable[[ModelType, str, str, Priority, pd.Timestamp, bool], Any]


class PlanEntry(TypedDict):
    """One symbol of a training plan (``create_training_schedule``)."""

    symbol: str
    model_type: ModelType
    category: str
    position: int
    priority: int | float
    reasons: list[str]
    status: ModelStatus
    reliability: float | None


class Planner:
    """Priorities of models at a given time, from the registry, the config and the plugins."""

    def __init__(
        self,
        config: Config,
        registry: ModelRegistry,
        plugins: PluginManager,
        queue: JobQueue,
        health: Health | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.plugins = plugins
        self.queue = queue
        self.health = health or (lambda record, now: (None, None))

    def model_state(self, model_type: ModelType, name: str, in_flight: bool, now: pd.Timestamp) -> ModelState:
        record = self.registry.resolve(model_type, name, now)
        if record is None:
            return ModelState(available=False, in_flight=in_flight)
        service = self.config.lstm_service
        max_age = (
            self.config.lstm.force_retrain_days
            if model_type == "specific"
            else service.universal.retrain_days
        )
        return ModelState(
            available=True,
            outdated=retrain_due(record.trained_at, now, max_age),
            reliability=record.reliability,
            in_flight=in_flight,
        )

    def up_to_date(self, symbol: str, now: pd.Timestamp) -> RequestDetail | None:
        """The request detail of a symbol whose newest training (promoted or not) is younger than
        ``lstm.force_retrain_days``, else ``None`` (it is due)."""
        newest = self.registry.resolve("specific", symbol, now, candidates=True)
        if newest is None or retrain_due(newest.trained_at, now, self.config.lstm.force_retrain_days):
            return None
        return {
            "status": "up_to_date",
            "model_version": newest.version,
            "trained_at": newest.metadata["trained_at"],
        }

    def base(self, category: str) -> float:
        """The category's base priority (``ConfigError`` for an unknown category)."""
        if category == "universal":
            return self.config.lstm_service.universal.priority
        return category_base(category, self.config.lstm_service.schedule_priority)

    def priority(
        self,
        key: JobKey,
        category: str,
        position: int,
        override: float | None,
        in_flight: bool,
        now: pd.Timestamp,
    ) -> tuple[Priority, ModelState]:
        state = self.model_state(key[0], key[1], in_flight, now)
        priority = compute_priority(
            self.base(category),
            state,
            reliability_threshold=self.config.lstm.reliability_threshold,
            position=position,
            override=override,
            base_reason=category,
        )
        for plugin, amount in self.plugins.call_each(
            "lstm_training_priority", symbol=key[1], category=category, priority=priority.value, state=state
        ):
            if isinstance(amount, (int, float)) and not isinstance(amount, bool) and math.isfinite(amount):
                priority = priority.adjusted(f"plugin {plugin}", float(amount))
            else:
                logger.warning("plugin %r returned %r from lstm_training_priority; ignored", plugin, amount)
        return priority, state

    def schedule(
        self,
        lists: Mapping[str, Sequence[str]],
        overrides: Mapping[str, float],
        now: pd.Timestamp,
        training_state: Callable[[str], ModelStatus | None],
    ) -> list[PlanEntry]:
        """The ordered plan for the symbols of each category list; a symbol in several keeps its best
        entry."""
        best: dict[str, PlanEntry] = {}
        rank = {name: i for i, name in enumerate(CATEGORIES)}
        for category, symbols in lists.items():
            for position, raw in enumerate(symbols):
                symbol = validate_symbol(raw)
                key: JobKey = ("specific", symbol)
                priority, state = self.priority(
                    key, category, position, overrides.get(symbol), self.queue.in_flight(key), now
                )
                entry: PlanEntry = {
                    "symbol": symbol,
                    "model_type": "specific",
                    "category": category,
                    "position": position,
                    "priority": priority.number,
                    "reasons": priority.describe(),
                    "status": training_state(symbol) or status_name(state),
                    "reliability": state.reliability,
                }
                held = best.get(symbol)
                if held is None or (entry["priority"], rank[category]) < (
                    held["priority"],
                    rank[held["category"]],
                ):
                    best[symbol] = entry
        return sorted(
            best.values(), key=lambda e: (e["priority"], rank[e["category"]], e["position"], e["symbol"])
        )

    def _retrain_reason(self, symbol: str, last: ModelRecord, now: pd.Timestamp) -> str | None:
        """Why the symbol's model is due: its newest attempt is too old, or the served model degraded
        and nothing was trained since it began serving."""
        reason = _age_reason(last, now, self.config.lstm_service.retraining.force_retrain_age_days)
        if reason is not None:
            return reason
        served = self.registry.resolve("specific", symbol, now)
        if served is None or served.version != last.version:
            return None
        return self.health(served, now)[1]

    def queue_due(
        self, universe: Sequence[str], categories: Mapping[str, str], now: pd.Timestamp, enqueue: Enqueue
    ) -> None:
        """Automatic retraining: symbols whose newest attempt is older than ``force_retrain_age_days`` or
        whose served model degraded (``retraining.on_degradation``), and the universal model on its own
        ``universal.retrain_days`` schedule."""
        now = now - pd.Timedelta(
            microseconds=1
        )  # what existed before this pass, not models stamped with its time
        for symbol in universe:
            key: JobKey = ("specific", symbol)
            last = self.registry.resolve("specific", symbol, now, candidates=True)
            if last is None or self.queue.in_flight(key):
                continue
            reason = self._retrain_reason(symbol, last, now)
            if reason is None:
                continue
            category = categories.get(symbol, "scanning")
            priority, _ = self.priority(key, category, 0, None, False, now)
            priority = Priority(priority.value, (*priority.reasons, (reason, 0.0)))
            enqueue("specific", symbol, category, priority, now, False)
        universal = self.config.lstm_service.universal
        key_u: JobKey = ("universal", UNIVERSAL_NAME)
        if universal.enabled and not self.queue.in_flight(key_u):
            last = self.registry.resolve("universal", UNIVERSAL_NAME, now, candidates=True)
            if retrain_due(None if last is None else last.trained_at, now, universal.retrain_days):
                priority, _ = self.priority(key_u, "universal", 0, None, False, now)
                enqueue("universal", UNIVERSAL_NAME, "universal", priority, now, False)


def _age_reason(last: ModelRecord, now: pd.Timestamp, days: float) -> str | None:
    if not retrain_due(last.trained_at, now, days):
        return None
    return f"auto retrain: {(now - last.trained_at) / pd.Timedelta(days=1):.0f} days old"


def status_name(state: ModelState) -> ModelStatus:
    """``not_available``, ``outdated`` or ``ready``: a model's status when it is not in the queue."""
    if not state.available:
        return "not_available"
    return "outdated" if state.outdated else "ready"
