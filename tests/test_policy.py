"""The service's decisions as plain values: the priority rules (docs/training-service.md), promotion,
retraining, retry backoff."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lstm_plugin.core.config import SchedulePriority
from lstm_plugin.model.metrics import paired_accuracy_gap
from lstm_plugin.serving.freshness import retrain_due
from lstm_plugin.training.policy import (
    PROMOTION_RULES,
    ModelState,
    category_base,
    compute_priority,
    position_adjustment,
    promotion_decision,
    retry_delay,
)

SCHEDULE = SchedulePriority()


def priority(
    state: ModelState, category: str = "portfolio", position: int = 0, override=None, threshold: float = 0.6
):
    return compute_priority(
        category_base(category, SCHEDULE),
        state,
        reliability_threshold=threshold,
        position=position,
        override=override,
        base_reason=category,
    )


# ---------------------------------------------------------------- the worked examples of docs/training-
# service.md, exactly
def test_worked_example_no_model():
    assert priority(ModelState(available=False)).value == 0


def test_worked_example_outdated_low_reliability():
    assert priority(ModelState(available=True, outdated=True, reliability=0.4)).value == -5


def test_worked_example_up_to_date_reliable_in_neutral_band():
    assert priority(ModelState(available=True, outdated=False, reliability=0.65)).value == 40


def test_worked_example_already_training():
    assert priority(ModelState(available=True, reliability=0.9, in_flight=True)).value == 60
    assert priority(ModelState(available=False, in_flight=True)).value == 60  # state is not counted


# ---------------------------------------------------------------- each rule
@pytest.mark.parametrize(
    ("category", "base"), [("portfolio", 20), ("on_demand", 30), ("watchlist", 40), ("scanning", 60)]
)
def test_category_bases_come_from_config(category, base):
    assert category_base(category, SCHEDULE) == base
    assert category_base(category, SchedulePriority(**{f"{category}_symbols": base + 7})) == base + 7


def test_unknown_category_is_refused():
    with pytest.raises(ValueError, match="category must be one of"):
        category_base("favourites", SCHEDULE)


@pytest.mark.parametrize(("position", "shift"), [(0, 0), (1, 5), (3, 15), (6, 30), (7, 30), (100, 30)])
def test_position_adds_five_per_place_capped_at_thirty(position, shift):
    assert position_adjustment(position) == shift
    assert priority(ModelState(available=False), position=position).value == 0 + shift


def test_outdated_counts_minus_ten_and_never_the_reliable_bonus():
    assert priority(ModelState(available=True, outdated=True, reliability=0.65)).value == 20 - 10


def test_up_to_date_but_below_reliability_threshold_gets_no_bonus():
    assert priority(ModelState(available=True, reliability=0.55)).value == 20


@pytest.mark.parametrize(
    ("reliability", "expected"),
    [(0.49, 20 - 15), (0.5, 20), (0.7, 20 + 20), (0.71, 20 + 20 + 15), (None, 20)],
)
def test_performance_adjustments(reliability, expected):
    # threshold 0.6: 0.7 and 0.71 are reliable and up to date (+20); 0.49 and 0.5 are not
    assert priority(ModelState(available=True, reliability=reliability)).value == expected


def test_reliable_threshold_is_configurable():
    state = ModelState(available=True, reliability=0.55)
    assert priority(state, threshold=0.5).value == 40
    assert priority(state, threshold=0.6).value == 20


def test_override_replaces_base_and_position_but_state_still_counts():
    result = priority(ModelState(available=False), position=4, override=30)
    assert result.value == 30 - 20
    assert result.describe() == ["override 30", "model not available -20"]


def test_no_floor():
    result = priority(ModelState(available=True, outdated=True, reliability=0.1), override=-100)
    assert result.value == -125


def test_reasons_list_every_adjustment_in_order():
    result = priority(
        ModelState(available=True, outdated=True, reliability=0.4), category="watchlist", position=2
    )
    assert result.describe() == [
        "watchlist 40",
        "position 2 +10",
        "model outdated -10",
        "reliability < 0.5 -15",
    ]
    assert result.value == sum(amount for _, amount in result.reasons)


# ---------------------------------------------------------------- promotion, retraining, retries
def test_first_model_is_always_promoted():
    decision = promotion_decision(0.2, False, 0.5)
    assert decision.promote and decision.rule == "first model" and decision.stage == "production"


@pytest.mark.parametrize(
    ("new", "gap", "tolerance", "promoted", "rule"),
    [
        (0.62, +0.02, 0.05, True, "not worse than the served model"),
        (0.60, -0.03, 0.05, True, "not worse than the served model"),  # within the noise: the newer data wins
        (0.58, -0.06, 0.05, False, "worse than the served model"),
        (0.45, +0.10, 0.05, False, "below min_reliability_for_update"),
        (None, 0.0, 0.05, False, "no reliability measured"),
        (float("nan"), 0.0, 0.05, False, "no reliability measured"),
        (0.55, None, 0.0, True, "not worse than the served model"),
    ],
)
def test_a_model_worse_beyond_the_noise_or_weak_does_not_replace_the_served_one(
    new, gap, tolerance, promoted, rule
):
    decision = promotion_decision(new, True, 0.5, gap=gap, tolerance=tolerance)
    assert decision.promote is promoted and decision.rule == rule and decision.rule in PROMOTION_RULES
    assert decision.stage == ("production" if promoted else "candidate")
    if gap is not None and rule.endswith("served model"):
        assert "on the same test segment" in decision.reason


def test_a_served_model_that_reads_other_inputs_is_replaced():
    decision = promotion_decision(0.51, True, 0.5, comparable=False)
    assert decision.promote and decision.rule == "the served model reads other inputs"


def test_the_paired_gap_counts_only_samples_both_models_call():
    realised = np.array([0.01, -0.02, 0.03, 0.0, 0.01, -0.01])
    new = np.array([1.0, -1.0, 1.0, 1.0, -1.0, 0.0])
    old = np.array([1.0, 1.0, -1.0, 1.0, -1.0, 1.0])
    gap, error = paired_accuracy_gap(new, old, realised)  # samples 0, 1, 2, 4: new right 3, old right 1
    assert gap == pytest.approx(0.5) and error > 0


def test_retrain_due_counts_days_on_the_given_clock():
    trained = pd.Timestamp("2020-01-01")
    assert retrain_due(None, trained, 45)
    assert not retrain_due(trained, trained + pd.Timedelta(days=45), 45)
    assert retrain_due(trained, trained + pd.Timedelta(days=45, seconds=1), 45)


def test_retry_backoff_doubles():
    assert [retry_delay(n, 30) for n in (1, 2, 3)] == [30, 60, 120]
