"""Features and targets: causality (prefix and start invariance), labels, windows, splits, metrics."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_plugin.model.features import (
    BUILTIN_FEATURES,
    FEATURE_HISTORY,
    Scaler,
    builtin_features,
    direction_classes,
    forward_log_return,
    make_windows,
    sample_end_indices,
    time_split,
)
from lstm_plugin.model.metrics import average_ranks, directional_accuracy, roc_auc, spearman


@pytest.fixture(scope="module")
def aapl(source):
    return source.load("AAPL").iloc[:1500]


def test_feature_columns_are_documented(aapl):
    features = builtin_features(aapl)
    assert tuple(features.columns) == BUILTIN_FEATURES
    assert features.iloc[FEATURE_HISTORY:].notna().all().all()
    assert features.iloc[:48].isna().any(axis=1).all()  # sma_gap_50 needs 50 bars


@pytest.mark.parametrize("t", [60, 61, 250, 777, 1499])
def test_prefix_invariance(aapl, t):
    """Features at bar t from bars <= t equal those from the whole series, to the bit."""
    full = builtin_features(aapl).to_numpy()
    prefix = builtin_features(aapl.iloc[: t + 1]).to_numpy()
    np.testing.assert_array_equal(prefix, full[: t + 1])


def test_start_invariance_lets_serving_use_a_tail(aapl):
    full = builtin_features(aapl).to_numpy()
    tail = builtin_features(aapl.iloc[-(FEATURE_HISTORY + 30) :]).to_numpy()
    np.testing.assert_array_equal(tail[-30:], full[-30:])


def test_future_prices_do_not_move_past_features(aapl):
    noisy = aapl.copy()
    rng = np.random.default_rng(0)
    noisy.iloc[1000:] = noisy.iloc[1000:] * rng.uniform(0.5, 1.5, size=(len(aapl) - 1000, 1))
    np.testing.assert_array_equal(
        builtin_features(noisy).to_numpy()[:1000], builtin_features(aapl).to_numpy()[:1000]
    )


def test_hand_computed_features():
    index = pd.date_range("2020-01-01", periods=60, freq="B")
    close = np.linspace(10, 20, 60)
    frame = pd.DataFrame(
        {"open": close, "high": close * 1.02, "low": close * 0.99, "close": close, "volume": 1000.0},
        index=index,
    )
    f = builtin_features(frame)
    assert f["ret_1"].iloc[5] == pytest.approx(np.log(close[5] / close[4]))
    assert f["ret_20"].iloc[30] == pytest.approx(np.log(close[30] / close[10]))
    assert f["range_hl"].iloc[3] == pytest.approx(np.log(1.02 / 0.99))
    assert f["close_loc"].iloc[3] == pytest.approx(0.01 / 0.03 - 0.5)
    assert f["rsi_14"].iloc[30] == pytest.approx(1.0)  # only gains
    assert f["volume_z"].iloc[30] == pytest.approx(0.0)
    assert f["sma_gap_50"].iloc[59] == pytest.approx(np.log(close[59] / close[10:60].mean()))


def test_target_and_classes():
    close = np.array([100.0, 101.0, 103.0, 99.0, 100.0])
    y = forward_log_return(close, 2)
    assert y[0] == pytest.approx(np.log(1.03)) and np.isnan(y[-2:]).all()
    assert direction_classes(np.array([0.02, 0.005, -0.005, -0.02]), 0.01).tolist() == [2, 1, 1, 0]


def test_samples_only_where_the_label_is_known():
    valid = np.ones(20, dtype=bool)
    valid[:3] = False
    ends = sample_end_indices(valid, window=4, horizon=5)
    assert ends[0] == 6  # window 3..6 is the first fully valid one
    assert ends[-1] == 14  # 14 + 5 = 19, the last bar
    assert sample_end_indices(valid, 4, None)[-1] == 19  # serving needs no label


def test_windows_hold_the_right_rows():
    values = np.arange(30, dtype=float).reshape(10, 3)
    windows = make_windows(values, np.array([4, 9]), 3)
    assert windows.shape == (2, 3, 3)
    np.testing.assert_array_equal(windows[0], values[2:5])
    np.testing.assert_array_equal(windows[1], values[7:10])


def test_time_split_is_ordered_with_gaps():
    dates = np.repeat(np.arange(100), 2)  # two symbols per date
    train, val, test = time_split(dates, 0.15, 0.15, gap=5)
    assert not (train & val).any() and not (val & test).any()
    assert dates[train].max() + 5 < dates[val].min()
    assert dates[val].max() + 5 < dates[test].min()
    assert dates[test].max() == 99


def test_scaler_uses_only_what_it_is_given():
    rows = np.array([[1.0, 5.0], [3.0, 5.0]])
    scaler = Scaler.fit(rows)
    np.testing.assert_allclose(scaler.transform(np.array([[2.0, 5.0]])), [[0.0, 0.0]])
    assert scaler.std[1] == 1.0  # constant columns are not divided by zero


def test_metrics_match_hand_computations():
    assert average_ranks(np.array([3.0, 1.0, 3.0])).tolist() == [2.5, 1.0, 2.5]
    assert spearman(np.array([1, 2, 3, 4]), np.array([10, 20, 30, 40])) == pytest.approx(1.0)
    assert spearman(np.array([1, 2, 3, 4]), np.array([4, 3, 2, 1])) == pytest.approx(-1.0)
    # 2 positives (scores 0.8, 0.4), 2 negatives (0.5, 0.1): 3 of 4 pairs ordered right
    assert roc_auc(np.array([0.8, 0.4, 0.5, 0.1]), np.array([True, True, False, False])) == pytest.approx(
        0.75
    )
    assert directional_accuracy(
        np.array([1.0, -1.0, 1.0, 0.0]), np.array([0.5, 0.2, 0.1, 1.0])
    ) == pytest.approx(2 / 3)
