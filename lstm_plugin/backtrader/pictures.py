"""The report's pictures, each drawn on its own :class:`~matplotlib.figure.Figure` with an Agg canvas.

Backtrader's ``cerebro.plot()`` needs Tk and a display; and switching matplotlib's global backend
would take a running notebook away from inline plotting, so no picture here goes through ``pyplot``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lstm_plugin.backtrader.backtest import BacktestResult
from lstm_plugin.portfolio.performance import drawdown_series

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def draw_pictures(result: BacktestResult, folder: Path) -> None:
    """``equity.png``, ``ic.png`` and ``calibration.png``, each on its own Agg canvas."""
    for draw, name in (
        (_equity_picture, "equity.png"),
        (_ic_picture, "ic.png"),
        (_calibration_picture, "calibration.png"),
    ):
        figure = draw(result)
        FigureCanvasAgg(figure)  # attaches itself: this figure renders with Agg, whatever pyplot uses
        figure.tight_layout()
        figure.savefig(folder / name, dpi=110)


def _equity_picture(result: BacktestResult) -> Figure:
    cash = float(result.settings["cash"])
    figure = Figure(figsize=(10, 6.5))
    top, bottom = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3]})
    for name in result.equity.columns:
        curve = result.equity[name]
        top.plot(curve.index, curve / cash, label=name, linewidth=1.3)
        bottom.plot(curve.index, -100 * drawdown_series(curve, cash), linewidth=1.0, label=name)
    top.set_ylabel("value / starting cash")
    top.set_title(
        f"{len(result.settings['symbols'])} symbols, {result.settings['start']} .. {result.settings['end']}, "
        f"{result.settings['rebalance']} rebalances, costs on"
    )
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    return figure


def _ic_picture(result: BacktestResult) -> Figure:
    """Top: the rank IC per rebalance, its running mean and interval, and the daily rank IC's 63-bar mean;
    bottom: the blend weight used at each rebalance (adaptive or fixed)."""
    figure = Figure(figsize=(10, 5.6))
    axis, below = figure.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [2.4, 1]})
    rows = result.forecast_value("ic_by_date") or []
    if rows:
        frame = pd.DataFrame(rows)
        dates = pd.to_datetime(frame["date"])
        axis.bar(dates, frame["rank_ic"], width=20, alpha=0.5, label="rank IC per rebalance")
        axis.plot(dates, frame["rank_ic"].expanding().mean(), color="black", label="running mean")
        summary = result.forecast_value("rank_ic") or {}
        if summary.get("low") is not None and summary.get("high") is not None:
            label = f"95% interval of the mean ({summary['low']:+.3f} .. {summary['high']:+.3f})"
            axis.axhspan(summary["low"], summary["high"], color="tab:blue", alpha=0.15, label=label)
        daily = (
            ((result.forecast_value("evidence") or {}).get("rank_ic_by_date") or {})
            .get("lstm", {})
            .get("model")
        )
        if daily is not None and len(daily):
            axis.plot(daily.index, daily.rolling(63, min_periods=21).mean(), color="tab:orange",
                      label="daily rank IC, 63-bar mean")  # fmt: skip
        axis.axhline(0, color="grey", linewidth=0.8)
        axis.legend(loc="upper left", fontsize=8)
    else:
        axis.text(0.5, 0.5, "no forecasts", ha="center", va="center", transform=axis.transAxes)
    axis.set_ylabel("rank IC")
    axis.set_title("Spearman IC of expected vs realised return across symbols")
    weights = result.forecast_value("weights") or []
    if weights:
        below.step(pd.to_datetime([w["date"] for w in weights]), [w["weight"] for w in weights], where="post")
    below.set_ylabel(f"lstm weight ({result.forecast_value('weight_mode', 'fixed')})")
    below.set_ylim(bottom=0)
    below.grid(alpha=0.3)
    return figure


#: Fewest forecasts a confidence bucket needs to be drawn: a bucket of one or two is a coin, not a rate.
MIN_BUCKET = 20


def drawn_buckets(calibration: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The calibration buckets the picture draws: those of at least :data:`MIN_BUCKET` forecasts."""
    return [row for row in calibration if row["n"] >= MIN_BUCKET]


def _calibration_picture(result: BacktestResult) -> Figure:
    """Share of forecasts that came true against their confidence, per bucket of at least
    :data:`MIN_BUCKET` forecasts (every bucket is in ``summary.json``)."""
    figure = Figure(figsize=(5.5, 5))
    axis = figure.subplots()
    buckets = drawn_buckets(result.forecast_value("calibration", []))
    axis.plot([1 / 3, 1], [1 / 3, 1], color="grey", linestyle="--", label="perfectly calibrated")
    if buckets:
        axis.plot(
            [b["mean_confidence"] for b in buckets],
            [b["accuracy"] for b in buckets],
            marker="o",
            label="forecasts",
        )
        for b in buckets:
            axis.annotate(
                str(b["n"]),
                (b["mean_confidence"], b["accuracy"]),
                textcoords="offset points",
                xytext=(4, 4),
                fontsize=8,
            )
    axis.set_xlabel("confidence (probability of the predicted class)")
    axis.set_ylabel("share that came true")
    axis.set_title(
        f"Calibration (labels: forecasts per bucket; buckets of ≥ {MIN_BUCKET} shown)", fontsize=10
    )
    axis.legend(loc="upper left")
    return figure
