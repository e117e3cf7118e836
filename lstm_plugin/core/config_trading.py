"""The trading sections of the config: how the portfolio is selected and how backtests trade and measure.

Part of :mod:`lstm_plugin.core.config`, which re-exports them (docs/configuration.md).
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StringConstraints

from lstm_plugin.core.config_fields import COUNT, Days, Section, bounded

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: Bars a position is held under each named rebalancing rule (a numeric rule is its own count).
BARS_PER_RULE = {"monthly": 21, "weekly": 5}


class PortfolioSection(Section):
    """Selection and weighting of the portfolio managers (see lstm_plugin.portfolio.allocation and
    .technical)."""

    num_symbols: Annotated[int, bounded(1, 10_000)] = Field(
        10, description="Positions select_portfolio() aims for."
    )
    candidate_multiple: Annotated[float, bounded(1, 100)] = Field(
        2.0, description="select_portfolio() analyses the best num_symbols × this many scanned candidates."
    )
    min_score: Annotated[float, bounded(0, 100)] = Field(
        60.0, description="Least final score for a position (60 is the 'buy' band)."
    )
    weighting: Literal["score", "equal", "inverse_volatility"] = Field(
        "score", description="How selected symbols are weighted before the cap."
    )
    max_weight: Annotated[float, bounded(0.01, 1)] = Field(
        0.2, description="Cap per position; what the cap holds back stays in cash."
    )
    min_dollar_volume: Annotated[float, bounded(0, 1e15)] = Field(
        1e6, description="Least 20-bar mean of close × volume for a symbol to be scanned."
    )
    min_history_bars: Annotated[int, bounded(201, COUNT)] = Field(
        252, description="Bars of history a symbol needs to be scanned (the score itself reads 201)."
    )
    max_stale_days: Days = Field(10, description="A symbol whose last bar is older than this is not scanned.")
    stats_lookback_bars: Annotated[int, bounded(20, COUNT)] = Field(
        252, description="Bars of history behind get_portfolio_stats()'s expected return and volatility."
    )
    confidence_sizing: bool = Field(
        False, description="Scale position weights by forecast confidence (LSTM manager only)."
    )
    full_size_edge: Annotated[float, bounded(0.01, 1)] = Field(
        0.2, description="Confidence sizing: the trusted P(up) - P(down) at which a position gets full size."
    )


def _rebalance_rule(value: Any) -> Any:
    if value in ("monthly", "weekly") or (
        isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= COUNT
    ):
        return value
    raise ValueError(f"must be 'monthly', 'weekly' or a number of bars (1 to {COUNT})")


#: The built-in baselines (lstm_plugin.model.baselines); plugins add others by name (the
#: ``lstm_baselines`` hook), checked when a backtest starts.
BUILTIN_BASELINE_NAMES = ("momentum_12_1", "reversal_1m", "ridge")
BASELINE_NAME = r"^[a-z][a-z0-9_]*$"  # a lower-case identifier: config, --baselines and the hook alike
BaselineName = Annotated[str, StringConstraints(pattern=BASELINE_NAME, max_length=64)]


def is_baseline_name(text: str) -> bool:
    """Whether ``text`` may name a baseline (:data:`BASELINE_NAME`)."""
    return re.fullmatch(BASELINE_NAME, text) is not None


class BacktestSection(Section):
    """Backtests: costs, cash and the rebalancing schedule (lstm_plugin.backtrader)."""

    cash: Annotated[float, bounded(1, 1e12)] = Field(100_000.0, description="Starting cash.")
    commission: Annotated[float, bounded(0, 0.1)] = Field(
        0.001, description="Commission as a fraction of traded value (0.001 = 10 bp)."
    )
    slippage: Annotated[float, bounded(0, 0.1)] = Field(
        0.0005, description="Slippage as a fraction of price, against the trade (0.0005 = 5 bp)."
    )
    rebalance: Annotated[Any, AfterValidator(_rebalance_rule)] = Field(
        "monthly",
        description="'monthly' (first bar of each month), 'weekly' (first bar of each week) or every N bars.",
        json_schema_extra={
            "anyOf": [{"enum": ["monthly", "weekly"]}, {"type": "integer", "minimum": 1, "maximum": COUNT}]
        },
    )
    cash_buffer: Annotated[float, bounded(0, 0.5)] = Field(
        0.02, description="Share of the portfolio kept in cash so buys at the next open are not refused."
    )
    backend: Literal["sync", "local", "ray"] | None = Field(
        None,
        description="Where a backtest's (and pretrain's) trainings run; null: lstm_service.backend. Each "
        "rebalance's trainings run concurrently on 'local' worker processes or 'ray' tasks and the run waits "
        "for them, so the models and orders are the same bytes as 'sync' (one after another, in the run's "
        "process).",
    )
    workers: Annotated[int, bounded(0, 1024)] = Field(
        0,
        description="Local workers for a backtest's trainings; 0: one per core, at most "
        "lstm.max_training_models.",
    )
    daily_evaluation: bool = Field(
        True,
        description="Measure the served forecasts on every bar, not only on rebalance days "
        "(docs/forecast-evidence.md).",
    )
    baselines: list[BaselineName] = Field(
        default_factory=lambda: list(BUILTIN_BASELINE_NAMES),
        description="Baseline forecasters measured beside the LSTM (needs daily_evaluation): the built-ins "
        "or a plugin's (hook lstm_baselines); [] for none.",
    )


def holding_bars(rule: Any) -> int:
    """The bars between rebalances under ``rule`` (``'monthly'`` 21, ``'weekly'`` 5, or N): the holding period
    ``model.horizon: "rebalance"`` stands for."""
    return int(BARS_PER_RULE.get(rule, rule))
