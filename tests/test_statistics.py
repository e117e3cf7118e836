"""Intervals and t-statistics: hand computations, and coverage of the block bootstrap on simulated series."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from lstm_plugin.core.statistics import (
    block_bootstrap_interval,
    block_length,
    estimate_mean,
    newey_west_se,
    paired_block_bootstrap_interval,
    sharpe_ratio,
)
from lstm_plugin.portfolio.performance import performance_metrics, sharpe_difference


def test_newey_west_with_no_lags_is_the_plain_standard_error_and_lags_add_the_autocovariances():
    x = np.array([0.1, -0.2, 0.3, 0.05, -0.1, 0.2])
    centred = x - x.mean()
    n = x.size
    assert newey_west_se(x, 0) == pytest.approx(math.sqrt(np.mean(centred**2) / n))
    gamma1 = float(centred[1:] @ centred[:-1]) / n
    gamma2 = float(centred[2:] @ centred[:-2]) / n
    by_hand = (np.mean(centred**2) + 2 * (2 / 3) * gamma1 + 2 * (1 / 3) * gamma2) / n
    assert newey_west_se(x, 2) == pytest.approx(math.sqrt(by_hand))
    assert newey_west_se([1.0], 3) is None


def test_an_estimate_carries_its_interval_and_t_and_is_the_same_on_every_call():
    rng = np.random.default_rng(7)
    values = rng.normal(0.05, 0.1, 60)
    first, again = estimate_mean(values), estimate_mean(values)
    assert first == again and first["n"] == 60
    assert first["low"] < first["value"] < first["high"]
    assert first["t"] == pytest.approx(values.mean() / newey_west_se(values, block_length(60) - 1))
    assert estimate_mean([])["value"] is None and estimate_mean([0.1, 0.2])["low"] is None


def test_block_length_respects_the_overlap():
    assert block_length(1000) == 10 and block_length(1000, minimum=21) == 21 and block_length(5, 21) == 5


def _coverage(simulate, truth: float, seeds: int = 300) -> float:
    hits = 0
    for seed in range(seeds):
        low, high = block_bootstrap_interval(simulate(np.random.default_rng(seed)), samples=400, seed=seed)
        hits += low <= truth <= high
    return hits / seeds


def test_the_block_bootstrap_covers_the_true_mean_about_95_percent_of_the_time_on_iid_series():
    assert 0.90 <= _coverage(lambda rng: rng.normal(0.0, 1.0, 200), 0.0) <= 0.98  # measured: 0.917


def test_the_block_bootstrap_covers_the_true_mean_about_95_percent_of_the_time_on_ar1_series():
    def ar1(rng: np.random.Generator, phi: float = 0.5, n: int = 400) -> np.ndarray:
        shocks = rng.normal(0.0, 1.0, n + 100)
        x = np.empty_like(shocks)
        x[0] = shocks[0]
        for i in range(1, x.size):
            x[i] = phi * x[i - 1] + shocks[i]
        return x[100:]

    assert (
        0.88 <= _coverage(ar1, 0.0) <= 0.98
    )  # measured: 0.920; blocks of n^(1/3) keep most of the dependence


def test_sharpe_and_its_paired_difference():
    rng = np.random.default_rng(3)
    a = rng.normal(0.001, 0.01, 500)
    b = a + rng.normal(0.0, 0.002, 500)
    rows = np.vstack([a, b])
    assert sharpe_ratio(rows)[0] == pytest.approx(a.mean() / a.std(ddof=1) * math.sqrt(252))
    low, high = paired_block_bootstrap_interval(a, b, sharpe_ratio)
    low_unpaired, high_unpaired = block_bootstrap_interval(a, sharpe_ratio)
    assert low < sharpe_ratio(rows)[0] - sharpe_ratio(rows)[1] < high
    assert high - low < (high_unpaired - low_unpaired) / 3  # pairing removes the shared market moves


def test_performance_reports_the_sharpe_interval_and_the_difference_of_two_curves():
    days = pd.bdate_range("2020-01-01", periods=300)
    rng = np.random.default_rng(11)
    equity = pd.DataFrame(
        {name: 100_000 * np.cumprod(1 + rng.normal(0.0008, 0.01, 300)) for name in ("lstm", "technical")},
        index=days,
    )
    figures = performance_metrics(equity["lstm"], 100_000)
    assert figures["sharpe_low"] < figures["sharpe"] < figures["sharpe_high"]
    difference = sharpe_difference(equity, 100_000, "lstm", "technical")
    own = performance_metrics(equity["technical"], 100_000)["sharpe"]
    assert difference["value"] == pytest.approx(figures["sharpe"] - own)
    assert difference["low"] < difference["value"] < difference["high"] and difference["n"] == 300
