"""``LSTMForecastAnalyzer``: every forecast made at a rebalance, beside the return that followed, and
the daily forecast evidence against baselines."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, TypedDict

import backtrader as bt
import numpy as np
import pandas as pd

from lstm_plugin.core.config_trading import BUILTIN_BASELINE_NAMES
from lstm_plugin.serving.baselines import available_baselines, baseline_panels, check_baselines
from lstm_plugin.serving.evaluation import ForecastEvaluation, forecast_evaluation
from lstm_plugin.serving.evidence import forecast_evidence, forward_returns

__all__ = [
    "STALE_DAYS",
    "ForecastAnalysis",
    "LSTMForecastAnalyzer",
    "PortfolioRecorder",
    "TrainingCounts",
    "fill_row",
    "model_age",
]


class TrainingCounts(TypedDict):
    """The run's trainings (docs/architecture.md, *Glossary*): fitted (``trained``), promoted, shelved
    (by rule), reused, failed, and every finished job as a row."""

    trained: int
    promoted: int
    shelved: int
    shelved_rules: dict[str, int]
    reused: int
    failed: int
    events: list[dict[str, Any]]


class _Analysis(ForecastEvaluation):
    n_rebalances: int
    training: TrainingCounts
    model_age: dict[str, Any]
    records: list[dict[str, Any]]
    orders: list[dict[str, Any]]
    weight_mode: str
    weights: list[dict[str, Any]]
    risk: list[dict[str, Any]]


class ForecastAnalysis(_Analysis, total=False):
    """``LSTMForecastAnalyzer.get_analysis()``: the class docstring says what each key holds; the
    last three only with ``daily``."""

    evidence: dict[str, Any]
    daily: pd.DataFrame
    daily_outcomes: pd.DataFrame


def fill_row(order: Any, symbol: str) -> dict[str, Any]:
    """A completed order as plain data: ``date`` (filled), ``created``, ``symbol``, ``size``, ``price``,
    ``value``, ``commission``; and why it was sent: ``reason`` (``rebalance``, ``exit``, ...; empty for
    an order sent without one) and, for an exit, the rule that fired (``exit_reason``), the forecast and
    the model version behind it."""
    info = order.info
    return {
        "date": bt.num2date(order.executed.dt).date().isoformat(),
        "created": bt.num2date(order.created.dt).date().isoformat(),
        "symbol": symbol,
        "size": order.executed.size,
        "price": order.executed.price,
        "value": order.executed.size * order.executed.price,
        "commission": order.executed.comm,
        "reason": info.get("reason") or "",
        "exit_reason": info.get("exit_reason"),
        "forecast": info.get("forecast"),
        "model_version": info.get("model_version"),
    }


class LSTMForecastAnalyzer(bt.Analyzer):
    """Measures the forecasts of an :class:`~lstm_plugin.backtrader.signals.LSTMSignals` (by
    default the strategy's ``self.lstm``). ``get_analysis()`` returns plain data:

    - ``n_rebalances``; ``n_predictions`` (successful forecasts), ``n_evaluated`` (those whose
      outcome is known), ``n_directional`` (of them, ``up``/``down`` calls);
    - ``hit_rate``: share of ``up``/``down`` calls whose realised return had that sign; ``base_rate``:
      the score of always calling the likelier sign on the same outcomes;
    - ``ic``, ``rank_ic``: ``{mean, std, icir, dates}`` of the per-date Pearson / Spearman
      correlation across symbols between expected and realised return; ``ic_by_date``: ``[{date, n, ic,
      rank_ic}]``;
    - ``calibration``: ``[{bucket, n, mean_confidence, accuracy}]`` by confidence bucket;
    - ``model_usage``: ``{specific, universal, none}`` forecast counts;
    - ``training``: the run's training jobs: ``trained`` (models fitted here), ``reused`` (found registered:
      the same training), ``failed``; ``promoted`` and ``shelved`` (the stages this run decided, of new
      models and of other runs' identical ones it took; a shelved model is kept, never served), and
      ``shelved_rules`` (why, by rule); ``events``, one row per job;
    - ``model_age``: ``{median_days, over_6_months, forecasts}`` — how old the models that answered the
      rebalance forecasts were (bar date − ``trained_at``), and the share older than 182 days;
    - ``records``: one dict per forecast (``date, symbol, status, model_type, model_version,
      predicted_direction, confidence, price_change_pct, expected_log_return, horizon, realized``);
    - ``orders``: one dict per filled order (``date, symbol, size, price, value, commission``);
    - ``weight_mode`` and ``weights``: the blend weight used at each rebalance, ``{date, weight,
      trailing_rank_ic, evidence}`` (see :mod:`lstm_plugin.portfolio.earned_weight`);
    - ``risk``: how ``lstm.risk`` sized each rebalance, ``{date, exposure, forecast_scale, mean_forecast,
      reliability, volatility_scale, realised_volatility, capped}`` (empty with every part off;
      :mod:`lstm_plugin.portfolio.forecast_risk`);
    - ``evidence`` (with ``daily=True``, the default): :func:`~lstm_plugin.serving.evidence.forecast_evidence`
      of the served model's forecast on *every* bar and of each of ``baselines``, at the model's horizon
      and at the holding period (the median bars between rebalances); ``daily``: one row per bar and
      symbol (``date, symbol, model_type, model_version, lstm`` = expected log return, then each
      baseline's score) and ``daily_outcomes`` (``date, symbol, realized_<bars>`` at both horizons).

    ``realized`` is the simple return from the forecast bar's close to the close ``horizon`` bars
    later, read after the run from the same data (``None`` past the end of the data).
    Definitions: :mod:`lstm_plugin.serving.evaluation`.
    """

    params = (
        ("signals", None),  # the LSTMSignals to measure; None: the strategy's `lstm` attribute
        ("daily", True),  # forecast every bar too, and measure the evidence (docs/forecast-evidence.md)
        # baselines measured beside the LSTM (with daily), by name; () for none
        ("baselines", BUILTIN_BASELINE_NAMES),
    )

    def start(self) -> None:
        signals = self.p.signals or getattr(self.strategy, "lstm", None)
        if signals is None:
            raise AttributeError(
                "LSTMForecastAnalyzer › the strategy has no `lstm` (LSTMSignals); pass signals="
            )
        self.signals: Any = signals
        signals.listeners.append(self)
        self.records: list[dict[str, Any]] = []
        self.orders: list[dict[str, Any]] = []
        self.rebalances = 0
        self.seconds = 0.0  # spent measuring the run after it (stop): the evaluation's share of a run
        self.rebalance_days: list[pd.Timestamp] = []
        self.weights: list[dict[str, Any]] = []
        self.sizing: list[dict[str, Any]] = []
        self.days: list[pd.Timestamp] = []
        self.calendar: list[pd.Timestamp] = []  # every bar: the spacing of the rebalances, in bars
        self.daily: list[tuple[pd.Timestamp, str, Any, Any, float]] = []
        self.available = available_baselines(signals.plugins)
        self.baselines = check_baselines(self.p.baselines, self.available)
        self.rets: ForecastAnalysis | dict[str, Any] = {}

    def prenext(self) -> None:
        self.next()

    def next(self) -> None:
        """The served model's forecast of every tradable symbol at this bar (after the strategy's
        ``next``, so a rebalance's new model answers on its own day, as it did for the trades)."""
        self.calendar.append(self.signals.today())
        first_day = getattr(self.strategy, "first_day", None)  # LSTMRebalanceStrategy's `start`
        if not self.p.daily or (first_day is not None and self.signals.today().date() < first_day):
            return
        self.days.append(self.signals.today())
        for symbol, p in self.signals.observe().items():
            if p["status"] == "success":
                self.daily.append(
                    (self.days[-1], symbol, p["model_type"], p["model_version"], p["expected_log_return"])
                )

    def on_decision(self, decision: Any) -> None:
        self.rebalances += 1
        self.rebalance_days.append(pd.Timestamp(decision.when))
        if decision.weight is not None:
            self.weights.append(dict(decision.weight))
        if decision.risk is not None:
            self.sizing.append({"date": decision.when.isoformat(), **decision.risk})
        for symbol, p in decision.forecasts.items():
            self.records.append(
                {
                    "date": decision.when.isoformat(),
                    "symbol": symbol,
                    "status": p["status"],
                    "model_type": p["model_type"] if p["status"] == "success" else None,
                    "model_version": p["model_version"] if p["status"] == "success" else None,
                    "predicted_direction": p["predicted_direction"],
                    "confidence": p["confidence"],
                    "price_change_pct": p["price_change_pct"],
                    "expected_log_return": p["expected_log_return"],
                    "horizon": p["horizon"],
                    "trained_at": p["trained_at"],
                }
            )

    def notify_order(self, order: Any) -> None:
        if order.status != order.Completed:
            return
        symbol = next((s for s, d in self.signals.feeds.items() if d is order.data), order.data._name)
        self.orders.append(fill_row(order, symbol))

    def stop(self) -> None:
        started = time.perf_counter()
        self._measure()
        self.seconds = time.perf_counter() - started

    def _measure(self) -> None:
        closes: dict[str, pd.Series] = {}
        for record in self.records:
            record["realized"] = None
            if record["status"] != "success":
                continue
            symbol = record["symbol"]
            if symbol not in closes:
                closes[symbol] = self.signals.source.load(symbol)["close"]
            close = closes[symbol]
            position = int(close.index.searchsorted(pd.Timestamp(record["date"]), side="right")) - 1
            later = position + int(record["horizon"])
            if position >= 0 and later < len(close):
                record["realized"] = float(close.iloc[later] / close.iloc[position] - 1.0)
        model = self.signals.config.model
        evaluated = excess_outcomes(self.records) if model.target == "excess" else self.records
        spacing = median_gap_bars(pd.DatetimeIndex(self.calendar), self.rebalance_days)
        overlap = max(1, math.ceil(model.horizon / spacing))  # rebalance forecasts whose outcomes overlap
        figures = forecast_evaluation(evaluated, model.direction_threshold, overlap)
        counts = self.signals.counts
        training: TrainingCounts = {
            "trained": counts["trained"],
            "promoted": counts["promoted"],
            "shelved": counts["shelved"],
            "shelved_rules": dict(sorted(self.signals.shelved_rules.items())),
            "reused": counts["reused"],
            "failed": counts["failed"],
            "events": list(self.signals.trainings),
        }
        analysis: ForecastAnalysis = {
            "n_rebalances": self.rebalances,
            **figures,
            "training": training,
            "model_age": model_age(self.records),
            "records": self.records,
            "orders": self.orders,
            "weight_mode": self.signals.config.lstm.weight_mode,
            "weights": self.weights,
            "risk": self.sizing,
        }
        if self.p.daily:
            analysis["evidence"], analysis["daily"], analysis["daily_outcomes"] = self._evidence()
        self.rets = analysis

    def get_analysis(self) -> ForecastAnalysis | dict[str, Any]:
        return self.rets

    def _evidence(self) -> tuple[dict[str, Any], pd.DataFrame, pd.DataFrame]:
        """The daily evidence of ``get_analysis()`` (see the class docstring)."""
        signals, days = self.signals, pd.DatetimeIndex(self.days)
        config = signals.config
        rows = pd.DataFrame(self.daily, columns=["date", "symbol", "model_type", "model_version", "lstm"])
        symbols = sorted(signals.feeds)
        panels = {"lstm": rows.pivot(index="date", columns="symbol", values="lstm").rename_axis(columns=None)}
        panels.update(
            baseline_panels(
                self.baselines,
                signals.source,
                symbols,
                self.rebalance_days,
                signals.plugins,
                config.model,
                self.available,
            )
        )
        panels = {name: panel.reindex(index=days, columns=symbols) for name, panel in panels.items()}
        closes = {symbol: signals.source.load(symbol)["close"] for symbol in symbols}
        horizons = {"model": config.model.horizon, "holding": median_gap_bars(days, self.rebalance_days)}
        evidence = forecast_evidence(
            panels,
            closes,
            horizons,
            self.rebalance_days,
            returns=("lstm", *(n for n in self.baselines if self.available[n].forecasts_returns)),
            relative=config.model.target == "excess",
        )
        daily = rows.set_index(["date", "symbol"])
        for name in self.baselines:
            daily[name] = panels[name].stack().reindex(daily.index)
        outcomes = pd.DataFrame(index=daily.index)
        for bars in dict.fromkeys(horizons.values()):
            outcomes[f"realized_{bars}"] = forward_returns(closes, bars).stack().reindex(daily.index)
        return dict(evidence), daily.reset_index(), outcomes.reset_index()


#: A model older than this at the bar it answers counts as not keeping up with the data.
STALE_DAYS = 182


def model_age(records: list[dict[str, Any]]) -> dict[str, Any]:
    """The age (days) of the model behind each successful forecast: median, and the share over
    :data:`STALE_DAYS`."""
    ages = [
        (pd.Timestamp(r["date"]) - pd.Timestamp(r["trained_at"])).days
        for r in records
        if r["status"] == "success" and r.get("trained_at")
    ]
    if not ages:
        return {"median_days": None, "over_6_months": None, "forecasts": 0}
    return {
        "median_days": float(np.median(ages)),
        "over_6_months": sum(age > STALE_DAYS for age in ages) / len(ages),
        "forecasts": len(ages),
    }


def excess_outcomes(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Copies of the records whose ``realized`` is the excess over the mean realised return of that date's
    forecasts: the outcome an ``excess`` target forecasts."""
    by_date: dict[str, list[float]] = {}
    for record in records:
        if record.get("realized") is not None:
            by_date.setdefault(record["date"], []).append(record["realized"])
    return [
        dict(r, realized=r["realized"] - float(np.mean(by_date[r["date"]])))
        if r.get("realized") is not None
        else dict(r)
        for r in records
    ]


def median_gap_bars(days: pd.DatetimeIndex, rebalance_days: Sequence[pd.Timestamp]) -> int:
    """The holding period: the median bars between consecutive rebalances (1 with fewer than two)."""
    positions = days.searchsorted(pd.DatetimeIndex(rebalance_days))
    gaps = np.diff(positions)
    return max(1, round(float(np.median(gaps)))) if gaps.size else 1


class PortfolioRecorder(bt.Analyzer):
    """The portfolio value at every bar's close from ``start`` on, and every fill, for any strategy.

    ``get_analysis()``: ``{'equity': pd.Series (date -> value), 'orders': [fill rows]}``.
    """

    params = (("start", None),)  # first date recorded (YYYY-MM-DD); None: every bar

    def start(self) -> None:
        self.first_day = None if self.p.start is None else pd.Timestamp(self.p.start).date()
        self.dates: list[pd.Timestamp] = []
        self.values: list[float] = []
        self.orders: list[dict[str, Any]] = []

    def prenext(self) -> None:
        self.next()

    def next(self) -> None:
        today = self.strategy.datetime.date(0)
        if self.first_day is None or today >= self.first_day:
            self.dates.append(pd.Timestamp(today))
            self.values.append(self.strategy.broker.getvalue())

    def notify_order(self, order: Any) -> None:
        if order.status == order.Completed:
            self.orders.append(fill_row(order, order.data._name))

    def get_analysis(self) -> dict[str, Any]:
        return {
            "equity": pd.Series(
                self.values, index=pd.DatetimeIndex(self.dates, name="date"), dtype="float64"
            ),
            "orders": self.orders,
        }
