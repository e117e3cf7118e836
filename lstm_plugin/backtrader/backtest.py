"""The main job: three strategies on the same data and costs, walk-forward, side by side.

``lstm`` is :class:`~lstm_plugin.backtrader.LSTMRebalanceStrategy` (models trained inside the run);
``technical`` is the same strategy with ``lstm.weight = 0``; ``buy_hold`` buys equal weights on
the first day and holds. All three trade the same Backtrader ``PandasData`` feeds (the cleaned,
split- and dividend-adjusted bars), from ``start`` to ``end``, with the config's costs; scores and
models read each symbol's full history before ``start`` too, cut at each bar.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypedDict, cast

import pandas as pd

from lstm_plugin.backtrader.analyzer import ForecastAnalysis
from lstm_plugin.backtrader.variants import VariantSummary, parse_variants, run_variants
from lstm_plugin.backtrader.walk_forward import run_inputs, run_strategy, strategy_runs
from lstm_plugin.core.config import Config, training_backend
from lstm_plugin.core.data import DEFAULT_END, DEFAULT_START, DataSource
from lstm_plugin.core.statistics import Estimate
from lstm_plugin.portfolio.performance import performance_metrics, sharpe_difference
from lstm_plugin.portfolio.rebalancing import rebalance_dates

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_END",
    "DEFAULT_START",
    "BacktestResult",
    "BacktestSummary",
    "ForecastSummary",
    "rebalance_dates",
    "run_main_job",
    "survivorship_caveat",
]

STRATEGIES = ("lstm", "technical", "buy_hold")


class ForecastSummary(TypedDict):
    """The LSTM run's forecasts, measured against what followed them (docs/main-job.md)."""

    hit_rate: float | None  # up/down calls right, of n_directional (neutral forecasts make no call)
    base_rate: float | None
    n_directional: int
    ic: float | None
    rank_ic: float | None
    icir: float | None
    rank_icir: float | None
    ic_low: float | None  # 95 % block-bootstrap interval of the mean IC over rebalance dates
    ic_high: float | None
    ic_t: float | None  # its Newey–West t-statistic
    rank_ic_low: float | None
    rank_ic_high: float | None
    rank_ic_t: float | None
    ic_dates: int
    n_predictions: int
    n_evaluated: int
    model_usage: dict[str, int]
    calibration: list[dict[str, Any]]
    rebalances: int
    trained: int  # models fitted in the run (promoted or shelved)
    promoted: int  # stages the run decided (of its new models, and of identical ones it found): served
    shelved: int  # ... kept as candidates, never served
    shelved_rules: dict[str, int]  # why, by rule (lstm_plugin.training.policy.PROMOTION_RULES)
    reused: int
    failed: int
    model_age: dict[str, Any]  # {median_days, over_6_months, forecasts}: how old the answering models were
    #: the daily evidence against the baselines (``None`` with ``backtest.daily_evaluation`` off):
    #: ``{horizons, reference, forecasters, differences}`` of
    #: :func:`~lstm_plugin.serving.evidence.forecast_evidence` (docs/forecast-evidence.md)
    evidence: dict[str, Any] | None
    #: the blend weight: ``{mode, mean, zero, last, by_rebalance}``, one ``EarnedWeight`` per rebalance
    weight: dict[str, Any]


class _ReportFolder(TypedDict, total=False):
    report: str  # the report folder, added by :func:`~lstm_plugin.backtrader.report.write_report`


class BacktestSummary(_ReportFolder):
    """Performance of each strategy (``None`` when not run), the forecasts, the settings, wall times."""

    lstm: dict[str, Any] | None
    technical: dict[str, Any] | None
    buy_hold: dict[str, Any] | None
    forecast: ForecastSummary | None
    #: ``Sharpe(lstm) − Sharpe(technical)`` with its paired 95 % interval: what the forecasts added
    lstm_minus_technical_sharpe: Estimate | None
    caveats: list[str]
    settings: dict[str, Any]
    seconds: dict[str, float]
    #: ``--variants``: each variant's figures and paired differences against ``base``
    #: (:class:`~lstm_plugin.backtrader.variants.VariantSummary`; ``None`` without variants)
    variants: dict[str, VariantSummary] | None


@dataclass
class BacktestResult:
    """Everything the report needs, as plain data and pandas objects."""

    settings: dict[str, Any]
    metrics: dict[str, dict[str, Any] | None]
    equity: pd.DataFrame  # date x strategy
    orders: list[dict[str, Any]]  # fills, with a 'strategy' column
    forecast: ForecastAnalysis | None  # LSTMForecastAnalyzer.get_analysis() of the lstm run
    seconds: dict[str, float] = field(default_factory=dict)
    caveats: list[str] = field(default_factory=list)  # what the figures cannot show, in plain words
    variants: dict[str, VariantSummary] | None = None  # with ``variants``: see VariantSummary
    #: where the lstm run's seconds went (training in workers, the driver's phases, forecasts,
    #: evaluation, and ``strategy``: the rest, Backtrader's bars and the selection); not in summary.json
    phases: dict[str, float] = field(default_factory=dict)

    def forecast_value(self, key: str, default: Any = None) -> Any:
        """``key`` of the forecast analysis; ``default`` without an LSTM run, or where the run has none."""
        return default if self.forecast is None else cast(Mapping[str, Any], self.forecast).get(key, default)

    def _sharpe_difference(self) -> Estimate | None:
        if not {"lstm", "technical"} <= set(self.equity.columns):
            return None
        return sharpe_difference(self.equity, float(self.settings["cash"]), "lstm", "technical")

    def summary(self) -> BacktestSummary:
        """The ``--json`` object and ``summary.json`` (docs/main-job.md)."""
        forecast: ForecastSummary | None = None
        if self.forecast is not None:
            f = self.forecast
            forecast = {
                "hit_rate": f["hit_rate"],
                "base_rate": f["base_rate"],
                "n_directional": f["n_directional"],
                "ic": f["ic"]["mean"],
                "rank_ic": f["rank_ic"]["mean"],
                "icir": f["ic"]["icir"],
                "rank_icir": f["rank_ic"]["icir"],
                "ic_low": f["ic"]["low"],
                "ic_high": f["ic"]["high"],
                "ic_t": f["ic"]["t"],
                "rank_ic_low": f["rank_ic"]["low"],
                "rank_ic_high": f["rank_ic"]["high"],
                "rank_ic_t": f["rank_ic"]["t"],
                "ic_dates": f["ic"]["dates"],
                "n_predictions": f["n_predictions"],
                "n_evaluated": f["n_evaluated"],
                "model_usage": f["model_usage"],
                "calibration": f["calibration"],
                "rebalances": f["n_rebalances"],
                "trained": f["training"]["trained"],
                "promoted": f["training"]["promoted"],
                "shelved": f["training"]["shelved"],
                "shelved_rules": f["training"]["shelved_rules"],
                "reused": f["training"]["reused"],
                "failed": f["training"]["failed"],
                "model_age": f["model_age"],
                "evidence": _evidence_summary(f.get("evidence")),
                "weight": _weight_summary(f["weight_mode"], f["weights"]),
            }
        return {
            "lstm": self.metrics.get("lstm"),
            "technical": self.metrics.get("technical"),
            "buy_hold": self.metrics.get("buy_hold"),
            "forecast": forecast,
            "lstm_minus_technical_sharpe": self._sharpe_difference(),
            "caveats": list(self.caveats),
            "settings": self.settings,
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "variants": self.variants,
        }


def _evidence_summary(evidence: dict[str, Any] | None) -> dict[str, Any] | None:
    """The evidence's figures without its per-date series."""
    if evidence is None:
        return None
    return {key: value for key, value in evidence.items() if key != "rank_ic_by_date"}


def _weight_summary(mode: str, weights: list[dict[str, Any]]) -> dict[str, Any]:
    values = [w["weight"] for w in weights]
    return {
        "mode": mode,
        "mean": sum(values) / len(values) if values else None,
        "zero": sum(1 for v in values if v == 0),
        "last": values[-1] if values else None,
        "by_rebalance": weights,
    }


def run_main_job(
    config: Config,
    source: DataSource,
    registry_path: str | Path,
    symbols: list[str] | None = None,
    start: str | pd.Timestamp = DEFAULT_START,
    end: str | pd.Timestamp = DEFAULT_END,
    lstm: bool = True,
    progress: bool = True,
    variants: Sequence[str] | str | None = None,
) -> BacktestResult:
    """Run ``lstm`` (unless ``lstm`` is false), ``technical`` and ``buy_hold`` and measure them; then each
    of ``variants`` (``base``, ``exits``, ``risk``, ``vol`` or parts joined by ``+``:
    :mod:`lstm_plugin.backtrader.variants`) on the LSTM run's models, compared with ``base``.

    Raises :class:`~lstm_plugin.core.errors.DataError` (bad or missing data) and :class:`ValueError`
    (bad dates, unknown variants, variants without the LSTM run) before anything runs.
    """
    chosen_variants = [] if variants is None else parse_variants(variants)
    if chosen_variants and not lstm:
        raise ValueError("--variants › the variants are the LSTM strategy's: drop --no-lstm")
    inputs = run_inputs(config, source, symbols, start, end)
    config, begin = inputs.config, inputs.begin
    settings = _settings(config, inputs.symbols, inputs.calendar, registry_path, source)
    settings["variants"] = chosen_variants
    metrics: dict[str, dict[str, Any] | None] = {name: None for name in STRATEGIES}
    curves, orders, seconds = {}, [], {}
    forecast, lstm_exposures, phases = None, [], {}
    runs = strategy_runs(config, source, registry_path, begin, lstm, progress)
    for name, strategy, params in runs:
        cerebro = inputs.cerebro()
        started = time.perf_counter()
        result = run_strategy(cerebro, strategy, params, begin, config, measure=name == "lstm")
        seconds[name] = time.perf_counter() - started
        recorded = result.analyzers.portfolio.get_analysis()
        curves[name] = recorded["equity"]
        orders += [dict(fill, strategy=name) for fill in recorded["orders"]]
        metrics[name] = figures = performance_metrics(
            recorded["equity"], config.backtest.cash, [o["value"] for o in recorded["orders"]]
        )
        if name == "lstm":
            forecast = result.analyzers.forecast.get_analysis()
            lstm_exposures = result.lstm.controls.exposures
            phases = run_phases(seconds[name], result.lstm.seconds(), result.analyzers.forecast.seconds)
        logger.info("%s: %.1f s, final value %.2f", name, seconds[name], figures["final_value"])
    equity = pd.DataFrame(curves)
    summaries = None
    if chosen_variants:
        lstm_orders = [o for o in orders if o["strategy"] == "lstm"]
        done = run_variants(inputs, runs[0], curves["lstm"], lstm_orders, chosen_variants, lstm_exposures)
        equity = equity.join(done.equity)
        orders += done.orders
        summaries = done.summaries
        seconds["variants"] = sum(s["seconds"] for s in summaries.values())
    equity.index.name = "date"
    return BacktestResult(
        settings,
        metrics,
        equity,
        orders,
        forecast,
        seconds,
        survivorship_caveat(inputs.frames, inputs.calendar),
        summaries,
        phases,
    )


def run_phases(wall: float, spent: dict[str, float], evaluation: float) -> dict[str, float]:
    """The lstm run's seconds by phase: ``training`` (summed over workers, so beside the wall time), then the
    wall time split into the driver's ``plan``, ``prepare``, ``wait``, ``forecasts``, ``evaluation`` and
    the rest, ``strategy``; ``publish`` runs in a callback thread while the driver waits, so it is inside
    ``wait``, not beside it. With the ``sync`` backend the trainings run in the driver, inside ``strategy``.
    """
    phases = dict(spent, evaluation=evaluation)
    inside = ("plan", "prepare", "wait", "forecasts", "evaluation")
    phases["strategy"] = max(0.0, wall - sum(phases.get(k, 0.0) for k in inside))
    phases["wall"] = wall
    return phases


def survivorship_caveat(frames: dict[str, pd.DataFrame], calendar: pd.DatetimeIndex) -> list[str]:
    """A warning when every symbol of a fixed universe still trades on the last day: a list of
    today's survivors leaves out the companies that were delisted on the way (docs/honesty.md)."""
    if not frames or any(frame.index[-1] < calendar[-1] for frame in frames.values()):
        return []
    return [
        f"survivorship: all {len(frames)} symbols still trade on {calendar[-1]:%Y-%m-%d}; a universe chosen "
        "with hindsight leaves out the companies delisted on the way, so every strategy here looks better "
        "than it would have"
    ]


def _settings(
    config: Config,
    chosen: list[str],
    calendar: pd.DatetimeIndex,
    registry_path: str | Path,
    source: DataSource,
) -> dict[str, Any]:
    """The run's settings, as ``summary.json`` records them."""
    return {
        "symbols": chosen,
        "start": f"{calendar[0]:%Y-%m-%d}",
        "end": f"{calendar[-1]:%Y-%m-%d}",
        "bars": len(calendar),
        "rebalance": config.backtest.rebalance,
        "cash": config.backtest.cash,
        "commission": config.backtest.commission,
        "slippage": config.backtest.slippage,
        "num_symbols": config.portfolio.num_symbols,
        "weight": config.lstm.weight,
        "weight_mode": config.lstm.weight_mode,
        "daily_evaluation": config.backtest.daily_evaluation,
        "baselines": list(config.backtest.baselines) if config.backtest.daily_evaluation else [],
        "registry": str(registry_path),
        "data": source.name,
        "backend": training_backend(config, walk_forward=True),
    }
