"""Forecast exits: which holdings to leave between rebalances, from the forecasts of each bar.

Pure functions and one small state machine, no Backtrader: :class:`ExitWatch` is fed each bar's
forecasts of the tradable symbols and the symbols held, and returns the holdings whose forecast has
breached the rule for ``bars`` bars in a row (docs/exits-and-risk.md). A holding is exited once per
holding period; :meth:`ExitWatch.reset` at each rebalance starts the next one. The scores read only the
bar's forecasts, which the plain strategy has at that bar too.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypedDict

import numpy as np

__all__ = ["ExitCandidate", "ExitRule", "ExitWatch", "exit_scores"]

Signal = Literal["zscore", "loss_probability"]


@dataclass(frozen=True)
class ExitRule:
    """When a holding breaches: ``signal`` below ``min_z`` (z-units) or P(down) above
    ``max_loss_probability``; for ``bars`` bars in a row; ``keep`` of the position stays."""

    signal: Signal = "zscore"
    min_z: float = -1.0
    max_loss_probability: float = 0.5
    bars: int = 2
    keep: float = 0.0

    @classmethod
    def from_settings(cls, settings: Any) -> ExitRule:
        """The rule of a config's ``lstm.exits`` block."""
        return cls(
            settings.signal, settings.min_z, settings.max_loss_probability, settings.bars, settings.keep
        )

    def breaches(self, score: float) -> bool:
        if self.signal == "zscore":
            return score < self.min_z
        return score > self.max_loss_probability

    def describe(self) -> str:
        """The reason written beside each exit: ``forecast z < -1 for 2 bars``."""
        test = (
            f"z < {self.min_z:g}" if self.signal == "zscore" else f"P(down) > {self.max_loss_probability:g}"
        )
        return f"forecast {test} for {self.bars} bar{'s' if self.bars != 1 else ''}"


class ExitCandidate(TypedDict):
    """A holding to exit at the next open, and the forecast behind it."""

    symbol: str
    reason: str
    score: float  # the signal at the bar (z or P(down))
    forecast: float | None  # the expected log return
    model_version: int | None
    model_type: str | None
    keep: float  # the share of the position kept (0: sold)


def exit_scores(forecasts: Mapping[str, Mapping[str, Any]], signal: Signal) -> dict[str, float]:
    """Each successful forecast's score: its expected log return in z-units of the bar's forecasts
    (cross-sectional mean and population standard deviation; none with fewer than 3 or no spread), or
    the probability of its ``down`` class (none where the model gives no probabilities)."""
    served = {
        s: p
        for s, p in forecasts.items()
        if p.get("status") == "success" and p.get("expected_log_return") is not None
    }
    if signal == "loss_probability":
        return {
            s: float(p["probabilities"]["down"])
            for s, p in served.items()
            if p.get("probabilities") and "down" in p["probabilities"]
        }
    values = {s: float(p["expected_log_return"]) for s, p in served.items()}
    finite = {s: v for s, v in values.items() if math.isfinite(v)}
    if len(finite) < 3:
        return {}
    array = np.fromiter(finite.values(), dtype="float64")
    std = float(array.std())
    if std <= 1e-12:
        return {}
    mean = float(array.mean())
    return {s: (v - mean) / std for s, v in finite.items()}


@dataclass
class ExitWatch:
    """Streaks of breaching bars per holding, since the last rebalance (see the module docstring)."""

    rule: ExitRule
    streaks: dict[str, int] = field(default_factory=dict)
    exited: set[str] = field(default_factory=set)

    def reset(self) -> None:
        """A rebalance: every holding starts afresh, and exited symbols may be bought again."""
        self.streaks.clear()
        self.exited.clear()

    def update(self, forecasts: Mapping[str, Mapping[str, Any]], held: Iterable[str]) -> list[ExitCandidate]:
        """One bar: the holdings whose streak reaches ``rule.bars`` now. A bar without a score for a
        holding (no fresh forecast) breaks its streak; a symbol no longer held is forgotten."""
        scores = exit_scores(forecasts, self.rule.signal)
        holdings = sorted(set(held) - self.exited)
        self.streaks = {s: n for s, n in self.streaks.items() if s in holdings}
        due: list[ExitCandidate] = []
        for symbol in holdings:
            score = scores.get(symbol)
            if score is None or not self.rule.breaches(score):
                self.streaks.pop(symbol, None)
                continue
            self.streaks[symbol] = self.streaks.get(symbol, 0) + 1
            if self.streaks[symbol] >= self.rule.bars:
                forecast = forecasts[symbol]
                due.append(
                    {
                        "symbol": symbol,
                        "reason": self.rule.describe(),
                        "score": score,
                        "forecast": forecast.get("expected_log_return"),
                        "model_version": forecast.get("model_version"),
                        "model_type": forecast.get("model_type"),
                        "keep": self.rule.keep,
                    }
                )
                self.exited.add(symbol)
                self.streaks.pop(symbol)
        return due

    def state(self) -> dict[str, Any]:
        """The watch as JSON data (a paper run journals it with each day)."""
        return {"streaks": dict(sorted(self.streaks.items())), "exited": sorted(self.exited)}

    def restore(self, state: Mapping[str, Any] | None) -> None:
        """Pick up where a journaled :meth:`state` left off."""
        self.streaks = {str(s): int(n) for s, n in ((state or {}).get("streaks") or {}).items()}
        self.exited = {str(s) for s in (state or {}).get("exited") or ()}
