"""The training service's decisions as pure functions: priority (docs/training-service.md), promotion,
retraining.

Nothing here reads a file, a clock or a registry; callers pass in what they know, so every rule
is tested with plain values.

Priority, lower trains sooner:

- base by category, from ``lstm_service.schedule_priority`` (portfolio 20, on-demand 30,
  watchlist 40, scanning 60; the universal model has its own base);
- model state: not available −20, outdated −10, reliable (≥ ``reliability_threshold``) and up to
  date +20;
- model performance: reliability < 0.5 −15, > 0.7 +15;
- already training or scheduled: +40, and then state and performance are not counted — the job in
  flight will change them;
- position in the request: +5 per position, at most +30.

``priority_override`` replaces base + position (as ``request_model_training`` takes it); the
state adjustments still apply. There is no floor.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from lstm_plugin.core.config import SchedulePriority
from lstm_plugin.core.names import CATEGORY_NAMES

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: Request categories, most important first; the key of each in ``schedule_priority``.
CATEGORIES: Mapping[str, str] = {name: f"{name}_symbols" for name in CATEGORY_NAMES}
LOW_RELIABILITY = 0.5
HIGH_RELIABILITY = 0.7
POSITION_STEP = 5
POSITION_CAP = 30
NOT_AVAILABLE = -20
OUTDATED = -10
RELIABLE_AND_CURRENT = 20
LOW_PERFORMANCE = -15
HIGH_PERFORMANCE = 15
IN_FLIGHT = 40


@dataclass(frozen=True)
class ModelState:
    """What the priority rules need to know about one model."""

    available: bool = False
    outdated: bool = False
    reliability: float | None = None
    in_flight: bool = False  # training now, or scheduled


def as_number(value: float) -> int | float:
    """``40.0`` -> ``40``: priorities read as the integers of the priority table when they are."""
    return int(value) if float(value).is_integer() else value


@dataclass(frozen=True)
class Priority:
    """A priority and the adjustments that made it, as ``(reason, amount)`` pairs in order."""

    value: float
    reasons: tuple[tuple[str, float], ...] = field(default_factory=tuple)

    def adjusted(self, reason: str, amount: float) -> Priority:
        return Priority(self.value + amount, (*self.reasons, (reason, amount)))

    def describe(self) -> list[str]:
        """Reasons as readable strings: ``['portfolio base 20', 'not available -20']``."""
        return [
            f"{reason} {amount:g}" if i == 0 else f"{reason} {amount:+g}" if amount else reason
            for i, (reason, amount) in enumerate(self.reasons)
        ]

    @property
    def number(self) -> int | float:
        return as_number(self.value)


def category_base(category: str, schedule: SchedulePriority) -> int:
    """The base priority of a request category (``portfolio``, ``on_demand``, ``watchlist``, ``scanning``)."""
    try:
        return int(getattr(schedule, CATEGORIES[category]))
    except KeyError:
        raise ValueError(f"category must be one of {', '.join(CATEGORIES)} (got: {category!r})") from None


def position_adjustment(position: int) -> int:
    """+5 per position in the request list, capped at +30."""
    return min(POSITION_CAP, POSITION_STEP * max(0, position))


def compute_priority(
    base: float,
    state: ModelState,
    *,
    reliability_threshold: float,
    position: int = 0,
    override: float | None = None,
    base_reason: str = "base",
) -> Priority:
    """The priority of one training request; see the module docstring for the rules."""
    if override is not None:
        priority = Priority(float(override), (("override", float(override)),))
    else:
        priority = Priority(float(base), ((base_reason, float(base)),))
        if shift := position_adjustment(position):
            priority = priority.adjusted(f"position {position}", shift)
    if state.in_flight:
        return priority.adjusted("already training or scheduled", IN_FLIGHT)
    if not state.available:
        return priority.adjusted("model not available", NOT_AVAILABLE)
    if state.outdated:
        priority = priority.adjusted("model outdated", OUTDATED)
    elif state.reliability is not None and state.reliability >= reliability_threshold:
        priority = priority.adjusted("reliable and up to date", RELIABLE_AND_CURRENT)
    if state.reliability is not None and state.reliability < LOW_RELIABILITY:
        priority = priority.adjusted(f"reliability < {LOW_RELIABILITY:g}", LOW_PERFORMANCE)
    elif state.reliability is not None and state.reliability > HIGH_RELIABILITY:
        priority = priority.adjusted(f"reliability > {HIGH_RELIABILITY:g}", HIGH_PERFORMANCE)
    return priority


#: Why a new model was promoted or shelved: the ``stage_rule`` of its metadata and of the backtest's counts.
PROMOTION_RULES = (
    "first model",
    "not worse than the served model",
    "the served model reads other inputs",
    "no reliability measured",
    "below min_reliability_for_update",
    "worse than the served model",
)


@dataclass(frozen=True)
class Promotion:
    """A new model's stage, the rule that decided it (one of :data:`PROMOTION_RULES`) and why, in words."""

    promote: bool
    rule: str
    reason: str

    @property
    def stage(self) -> str:
        return "production" if self.promote else "candidate"


def promotion_decision(
    new_reliability: float | None,
    has_current: bool,
    min_reliability: float,
    *,
    gap: float | None = None,
    tolerance: float = 0.0,
    comparable: bool = True,
) -> Promotion:
    """Whether a new model replaces the one served. ``gap`` is the new model's directional accuracy minus
    the served model's on the *same* samples — the new model's own held-out test segment, the newest bars
    it may know — and ``tolerance`` what noise alone gives there (twice the paired standard error).

    The first model of a symbol is always promoted: something is better than the fallback, and the
    serving side already discounts unreliable forecasts. So is one the served model cannot be scored
    beside (``comparable`` false: other features or window). Otherwise the new model must reach
    ``min_reliability``, and it is shelved as a candidate only when it is worse than the served model
    by more than the noise: a model no worse has seen more recent data, and keeping an old one on a
    coin-flip difference is how models stop keeping up with the data.
    """
    if not has_current:
        return Promotion(True, PROMOTION_RULES[0], "first model")
    if not comparable:
        return Promotion(True, PROMOTION_RULES[2], "the served model reads other features or window")
    if new_reliability is None or math.isnan(new_reliability):
        return Promotion(False, PROMOTION_RULES[3], "no reliability measured")
    if new_reliability < min_reliability:
        reason = f"reliability {new_reliability:.3f} below min_reliability_for_update {min_reliability:g}"
        return Promotion(False, PROMOTION_RULES[4], reason)
    if gap is None or math.isnan(gap):
        return Promotion(True, PROMOTION_RULES[1], f"reliability {new_reliability:.3f}; no paired comparison")
    versus = f"accuracy {gap:+.3f} against the served model on the same test segment (noise ±{tolerance:.3f})"
    if gap < -tolerance:
        return Promotion(False, PROMOTION_RULES[5], versus)
    return Promotion(True, PROMOTION_RULES[1], versus)


def retry_delay(attempt: int, backoff_seconds: float) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based): backoff, doubling each time."""
    return float(backoff_seconds * 2 ** max(0, attempt - 1))
