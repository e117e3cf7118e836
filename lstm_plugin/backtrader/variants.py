"""Strategy variants of a backtest: the LSTM strategy with forecast exits, forecast risk or volatility
targeting turned on, each run on the same models as the plain one (docs/exits-and-risk.md).

A variant is ``base`` or parts joined by ``+``: ``exits`` (``lstm.exits``), ``risk`` (``lstm.risk``'s
forecast parts: exposure and the reliability cap) and ``vol`` (``lstm.risk``'s volatility targeting,
the plain baseline the forecast parts must beat). Each part keeps the config's thresholds; ``base`` has
every part off. The model section is the same in all of them, so the first run's trainings serve the
others (their passes find them registered: reused, not trained again).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from lstm_plugin.backtrader.walk_forward import RunInputs, StrategyRun, run_strategy
from lstm_plugin.core.config import Config
from lstm_plugin.core.statistics import Estimate
from lstm_plugin.portfolio.variant_statistics import (
    DaySeries,
    VariantFigures,
    day_series,
    fill_cost,
    paired_differences,
    variant_figures,
)

logger = logging.getLogger(__name__)

__all__ = [
    "VARIANT_PARTS",
    "VariantRuns",
    "VariantSummary",
    "parse_variants",
    "run_variants",
    "variant_config",
]

#: each part a variant may turn on, and the settings it switches
VARIANT_PARTS = ("exits", "risk", "vol")
BASE = "base"


def parse_variants(names: Sequence[str] | str) -> list[str]:
    """The variants in a canonical spelling (parts in :data:`VARIANT_PARTS` order), ``base`` first and each
    once; or the one-line :class:`ValueError` naming the first unknown one."""
    items = (
        [n.strip() for n in names.split(",")] if isinstance(names, str) else [str(n).strip() for n in names]
    )
    chosen = [BASE]
    for item in items:
        parts = [p.strip() for p in item.split("+")]
        if item == BASE:
            continue
        unknown = [p for p in parts if p not in VARIANT_PARTS]
        if not item or unknown or len(set(parts)) < len(parts):
            raise ValueError(
                f"--variants › unknown variant {item!r}: give base, or {', '.join(VARIANT_PARTS)} joined "
                "by + (e.g. base,exits,risk,exits+risk)"
            )
        chosen.append("+".join(p for p in VARIANT_PARTS if p in parts))
    return list(dict.fromkeys(chosen))


def variant_config(config: Config, name: str) -> Config:
    """``config`` with the parts of variant ``name`` on and every other part off."""
    parts = set() if name == BASE else set(name.split("+"))
    lstm = config.lstm
    exits = lstm.exits.model_copy(update={"enabled": "exits" in parts})
    risk = lstm.risk.model_copy(
        update={
            "exposure": "risk" in parts,
            "reliability_cap": "risk" in parts,
            "volatility_targeting": "vol" in parts,
        }
    )
    return config.model_copy(update={"lstm": lstm.model_copy(update={"exits": exits, "risk": risk})})


class VariantSummary(TypedDict):
    """One variant in ``summary.json``: its figures, its exits, and its paired differences against
    ``base`` (``None`` for ``base`` itself)."""

    figures: VariantFigures
    exits: int  # exit orders filled
    #: the mean and least gross exposure the risk parts sized the rebalances to (``None`` with them off)
    exposure: dict[str, float] | None
    vs_base: dict[str, Estimate] | None
    seconds: float


@dataclass
class VariantRuns:
    """The variants of one backtest: equity curves (date × variant), fills and summaries."""

    equity: pd.DataFrame
    orders: list[dict[str, Any]] = field(default_factory=list)
    summaries: dict[str, VariantSummary] = field(default_factory=dict)


def column(name: str) -> str:
    """The variant's column in ``equity.csv`` and its ``strategy`` in ``orders.csv``: ``lstm[exits]``."""
    return f"lstm[{name}]"


def run_variants(
    inputs: RunInputs,
    lstm_run: StrategyRun,
    lstm_equity: pd.Series,
    lstm_orders: list[dict[str, Any]],
    names: Sequence[str],
    lstm_exposures: Sequence[float] = (),
) -> VariantRuns:
    """Run each variant of ``names`` (checked by :func:`parse_variants`) after the LSTM run ``lstm_run``;
    a variant whose config is the LSTM run's own takes that run's curve, fills and exposures
    (``lstm_exposures``) instead of running again."""
    _, strategy, params = lstm_run
    config: Config = params["config"]
    curves: dict[str, pd.Series] = {}
    fills: dict[str, list[dict[str, Any]]] = {}
    seconds: dict[str, float] = {}
    exposures: dict[str, list[float]] = {}
    for name in names:
        chosen = variant_config(config, name)
        if chosen == config:
            curves[name], fills[name], seconds[name] = lstm_equity, lstm_orders, 0.0
            exposures[name] = list(lstm_exposures)
            continue
        started = time.perf_counter()
        result = run_strategy(
            inputs.cerebro(), strategy, dict(params, config=chosen, progress=False), inputs.begin, chosen
        )
        seconds[name] = time.perf_counter() - started
        recorded = result.analyzers.portfolio.get_analysis()
        curves[name], fills[name] = recorded["equity"], recorded["orders"]
        exposures[name] = result.lstm.controls.exposures
        logger.info("variant %s: %.1f s", name, seconds[name])
    cash, slippage = config.backtest.cash, config.backtest.slippage
    series: dict[str, DaySeries] = {n: day_series(curves[n], cash, fills[n], slippage) for n in names}
    runs = VariantRuns(pd.DataFrame({column(n): curves[n] for n in names}))
    for name in names:
        runs.orders += [dict(fill, strategy=column(name)) for fill in fills[name]]
        runs.summaries[name] = {
            "figures": variant_figures(series[name], sum(fill_cost(f, slippage) for f in fills[name])),
            "exits": sum(1 for f in fills[name] if f.get("reason") == "exit"),
            "exposure": {"mean": float(np.mean(exposures[name])), "least": min(exposures[name])}
            if exposures[name]
            else None,
            "vs_base": None if name == BASE else paired_differences(series[name], series[BASE]),
            "seconds": round(seconds[name], 2),
        }
    return runs
