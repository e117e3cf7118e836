"""How each served model is doing now: its live hit rate and IC on the outcomes that have become known.

Every successful forecast a :class:`~lstm_plugin.serving.forecast.ForecastService` returns is
recorded once per model version, symbol and bar. When asked at time t, the forecasts whose outcome
is known by then (the symbol's bar ``horizon`` bars after the forecast's is dated ≤ t; nothing later
is read) are scored with the same definitions as the model's test segment
(:func:`~lstm_plugin.model.metrics.forecast_metrics`): ``hit_rate`` is the directional accuracy of
``P(up) − P(down)``, ``ic`` the Spearman correlation of the expected with the realised return.
:func:`degradation` compares the two (docs/forecast-evidence.md, *Retrain on degradation*).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from lstm_plugin.model.metrics import directional_accuracy, spearman

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

ModelKey = tuple[str, str, int]  # (model_type, name, version)


class LiveScore(TypedDict):
    """A served model's figures on its known outcomes, beside its test segment's."""

    n: int
    hit_rate: float | None
    ic: float | None
    test_hit_rate: float | None
    test_ic: float | None


@dataclass
class _Book:
    pending: dict[tuple[str, pd.Timestamp], tuple[float, float, int]] = field(default_factory=dict)
    known: list[tuple[float, float, float]] = field(default_factory=list)  # (score, expected, realised)


def _finite(value: float) -> float | None:
    return value if math.isfinite(value) else None


class LiveScores:
    """The record of served forecasts and their known outcomes (thread-safe)."""

    def __init__(self) -> None:
        self._books: dict[ModelKey, _Book] = {}
        self._lock = threading.Lock()

    def record(
        self, predictions: Iterable[Mapping[str, Any]], name_of: Callable[[Mapping[str, Any]], str]
    ) -> None:
        """Remember the successful ``predictions``; ``name_of(prediction)`` is its model's registry name."""
        bars: dict[str, pd.Timestamp] = {}  # the forecasts of one call mostly share their bar
        with self._lock:
            for p in predictions:
                if p.get("status") != "success" or p.get("probabilities") is None or not p.get("as_of"):
                    continue
                key = (str(p["model_type"]), name_of(p), int(p["model_version"]))
                book = self._books.setdefault(key, _Book())
                probabilities = p["probabilities"]
                score = float(probabilities["up"] - probabilities["down"])
                as_of = str(p["as_of"])
                bar = bars.get(as_of)
                if bar is None:
                    bar = bars[as_of] = pd.Timestamp(as_of)
                book.pending.setdefault(
                    (p["symbol"], bar), (score, float(p["expected_log_return"]), int(p["horizon"]))
                )

    def score(
        self, key: ModelKey, closes_until: Callable[[str], pd.Series], test: Mapping[str, Any]
    ) -> LiveScore | None:
        """The model's live figures from ``closes_until(symbol)`` (closes up to now); ``None`` if never
        served. ``test``: its stored test-segment metrics (``reliability``, ``ic``)."""
        with self._lock:
            book = self._books.get(key)
            if book is None:
                return None
            self._resolve(book, closes_until)
            known = np.asarray(book.known, dtype="float64").reshape(-1, 3)
        n = len(known)
        return {
            "n": n,
            "hit_rate": _finite(directional_accuracy(known[:, 0], known[:, 2])) if n else None,
            "ic": _finite(spearman(known[:, 1], known[:, 2])) if n > 2 else None,
            "test_hit_rate": test.get("reliability"),
            "test_ic": test.get("ic"),
        }

    @staticmethod
    def _resolve(book: _Book, closes_until: Callable[[str], pd.Series]) -> None:
        closes: dict[str, pd.Series] = {}
        for (symbol, when), (score, expected, horizon) in list(book.pending.items()):
            if symbol not in closes:
                closes[symbol] = closes_until(symbol)
            close = closes[symbol]
            position = int(close.index.searchsorted(when, side="right")) - 1
            if position >= 0 and position + horizon < len(close):
                realised = float(close.iloc[position + horizon] / close.iloc[position] - 1.0)
                book.known.append((score, expected, realised))
                del book.pending[(symbol, when)]


def degradation(live: LiveScore | None, margin: float, min_outcomes: int) -> str | None:
    """Why a served model should be retrained now, or ``None``: with at least ``min_outcomes`` known
    outcomes, its live hit rate or IC fell more than ``margin`` below its test segment's."""
    if live is None or live["n"] < min_outcomes:
        return None
    reasons = []
    pairs = (("hit rate", live["hit_rate"], live["test_hit_rate"]), ("IC", live["ic"], live["test_ic"]))
    for label, now, then in pairs:
        if now is not None and then is not None and math.isfinite(then) and now < then - margin:
            reasons.append(f"live {label} {now:.3f} < test {then:.3f} - {margin:g}")
    if not reasons:
        return None
    return f"degraded over {live['n']} known outcomes: " + "; ".join(reasons)
