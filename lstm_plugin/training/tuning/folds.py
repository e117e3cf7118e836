"""Walk-forward validation folds, the score a trial earns on them, and the median pruning rule. Pure maths.

A training splits its samples by date into train | gap | validation | gap | test
(:func:`lstm_plugin.model.features.time_split`); the test segment is what its metrics and its promotion
are judged on. A tuning must never see it, so the folds live in the dates before it (less a gap of
``horizon`` dates, so that no label of the tuned span reaches into it). Inside that span the newest
``folds`` blocks of dates are scored in turn, each after a fit on every date before it (less a gap),
whose own newest share stops the epochs early — the way a training stops on its validation segment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from lstm_plugin.model.features import time_split
from lstm_plugin.model.metrics import spearman

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: A fold's epochs are reported at ``fold * STEPS_PER_FOLD + epoch``: the same fold and epoch of two trials
#: share a step, whatever their epoch counts (``model.epochs`` is at most 10,000).
STEPS_PER_FOLD = 10_000


@dataclass(frozen=True)
class Fold:
    """Boolean masks over the samples: fit on ``fit``, stop the epochs on ``stop``, score on ``score``."""

    fit: np.ndarray
    stop: np.ndarray
    score: np.ndarray


def tuning_span(dates: np.ndarray, validation_fraction: float, test_fraction: float, gap: int) -> np.ndarray:
    """The samples a tuning may read: dated before the training's test segment by more than ``gap`` dates."""
    test = time_split(dates, validation_fraction, test_fraction, gap)[2]
    unique = np.unique(dates)
    first_test = int(np.searchsorted(unique, dates[test].min()))
    last_allowed = first_test - gap  # exclusive position in the unique dates
    if last_allowed < 1:
        return np.zeros(dates.shape[0], dtype=bool)
    allowed: np.ndarray = dates < unique[last_allowed]
    return allowed


def tuning_folds(
    dates: np.ndarray, span: np.ndarray, folds: int, validation_fraction: float, gap: int
) -> list[Fold]:
    """``folds`` walk-forward folds inside ``span``, the newest last: each scores a block of
    ``validation_fraction`` of the span's dates, after a fit on the dates before it (less ``gap``) whose
    newest ``validation_fraction`` (after another gap) stops the epochs.

    Raises ``ValueError`` when the span is too short for them.
    """
    unique = np.unique(dates[span])
    n = unique.shape[0]
    block = max(1, int(round(n * validation_fraction)))
    position = np.full(dates.shape[0], -1)
    position[span] = np.searchsorted(unique, dates[span])
    result = []
    for k in range(folds):
        score_start = n - (folds - k) * block
        fit_end = score_start - gap  # exclusive: the dates before the scored block, less the gap
        stop = max(1, int(round(fit_end * validation_fraction)))
        stop_start = fit_end - stop
        train_end = stop_start - gap
        if train_end < 2:
            raise ValueError(
                f"{n} dates before the test segment are too few for {folds} folds of {block} dates "
                f"with gaps of {gap}"
            )
        inside = position >= 0
        result.append(
            Fold(
                fit=inside & (position < train_end),
                stop=inside & (position >= stop_start) & (position < fit_end),
                score=inside & (position >= score_start) & (position < score_start + block),
            )
        )
    return result


def fold_score(forecasts: np.ndarray, realized: np.ndarray, dates: np.ndarray) -> float:
    """The rank IC of ``forecasts`` against the ``realized`` labels: across dates for one symbol's samples
    (each date once), else the mean over dates of each date's cross-sectional rank IC (pooled samples).
    0 where it is undefined (constant forecasts): a network that says nothing earns nothing."""
    unique, counts = np.unique(dates, return_counts=True)
    if counts.max(initial=0) <= 1:
        value = spearman(forecasts, realized) if forecasts.shape[0] > 2 else np.nan
        return float(value) if np.isfinite(value) else 0.0
    values = []
    for day in unique[counts > 2]:
        same = dates == day
        ic = spearman(forecasts[same], realized[same])
        values.append(ic if np.isfinite(ic) else 0.0)
    return float(np.mean(values)) if values else 0.0


def median_says_prune(
    own: Mapping[int, float],
    peers: Sequence[Mapping[int, float]],
    step: int,
    startup_trials: int,
    warmup_steps: int,
) -> bool:
    """Optuna's median rule, as a pure function: stop a trial (scores: higher is better) whose best value
    so far is below the median of the finished ``peers``' values at ``step``, once ``startup_trials`` have
    finished and past ``warmup_steps``."""
    if step < warmup_steps or len(peers) < max(1, startup_trials) or not own:
        return False
    at_step = [curve[step] for curve in peers if step in curve and np.isfinite(curve[step])]
    if not at_step:
        return False
    return max(own.values()) < float(np.median(at_step))
