"""Forecast-quality measures as pure numpy functions (scipy-free, tie-aware)."""

from __future__ import annotations

import numpy as np

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n, ties sharing their mean rank (as ``scipy.stats.rankdata``)."""
    values = np.asarray(values, dtype="float64")
    order = np.argsort(values, kind="mergesort")
    sorted_values = values[order]
    ranks = np.empty(values.shape[0], dtype="float64")
    boundaries = np.flatnonzero(np.diff(sorted_values)) + 1
    starts = np.concatenate(([0], boundaries))
    ends = np.concatenate((boundaries, [values.shape[0]]))
    for start, end in zip(starts, ends):
        ranks[order[start:end]] = (start + end + 1) / 2.0
    return ranks


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when either side is constant or fewer than 2 points."""
    a = np.asarray(a, dtype="float64")
    b = np.asarray(b, dtype="float64")
    if a.shape[0] < 2 or np.std(a) == 0 or np.std(b) == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman rank correlation (the information coefficient used throughout)."""
    return pearson(average_ranks(a), average_ranks(b))


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Probability that a random positive outranks a random negative (Mann-Whitney); NaN if one class is
    absent."""
    scores = np.asarray(scores, dtype="float64")
    positive = np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.shape[0] - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = average_ranks(scores)
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def directional_accuracy(predicted: np.ndarray, realised: np.ndarray) -> float:
    """Share of samples whose predicted sign equals the realised sign (samples with a zero on either side
    skipped)."""
    predicted = np.sign(np.asarray(predicted, dtype="float64"))
    realised = np.sign(np.asarray(realised, dtype="float64"))
    keep = (predicted != 0) & (realised != 0)
    if not keep.any():
        return float("nan")
    return float(np.mean(predicted[keep] == realised[keep]))


def forecast_metrics(
    probabilities: np.ndarray, expected_return: np.ndarray, realised: np.ndarray
) -> dict[str, float]:
    """Out-of-sample figures stored with every model.

    - ``reliability``: directional accuracy of ``P(up) - P(down)`` against the realised return.
    - ``quality``: ROC AUC of ``P(up) - P(down)`` at telling rising from falling outcomes
      (0.5 = coin toss, 1 = perfect ordering); unlike accuracy it does not reward a model that
      always says "up" in a rising market.
    - ``ic``: Spearman correlation of the expected return with the realised return.
    - ``base_rate_up``: share of rising outcomes, the accuracy of always saying "up".
    """
    score = probabilities[:, 2] - probabilities[:, 0]
    realised = np.asarray(realised, dtype="float64")
    moved = realised != 0
    return {
        "reliability": directional_accuracy(score, realised),
        "quality": roc_auc(score[moved], realised[moved] > 0),
        "ic": spearman(expected_return, realised),
        "base_rate_up": float(np.mean(realised > 0)),
        "n_test": int(realised.shape[0]),
    }


def paired_accuracy_gap(
    new_score: np.ndarray, old_score: np.ndarray, realised: np.ndarray
) -> tuple[float, float]:
    """Directional accuracy of ``new_score`` minus that of ``old_score`` on the *same* samples (those where
    both call a sign and the outcome moved), and the standard error of that difference: two models scored
    on one segment differ by noise alone about ``±2`` of it."""
    new_sign, old_sign = np.sign(np.asarray(new_score, float)), np.sign(np.asarray(old_score, float))
    outcome = np.sign(np.asarray(realised, dtype="float64"))
    keep = (new_sign != 0) & (old_sign != 0) & (outcome != 0)
    if keep.sum() < 2:
        return float("nan"), float("nan")
    difference = (new_sign[keep] == outcome[keep]).astype(float) - (old_sign[keep] == outcome[keep]).astype(
        float
    )
    return float(difference.mean()), float(difference.std(ddof=1) / np.sqrt(difference.size))
