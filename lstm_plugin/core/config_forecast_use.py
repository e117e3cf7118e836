"""The ``lstm.exits`` and ``lstm.risk`` blocks: forecasts between rebalances and in the book's size.

Part of :mod:`lstm_plugin.core.config`, which re-exports them (docs/configuration.md,
docs/exits-and-risk.md). Both are off by default: the evidence on the bundled set and on the S&P 500
set did not support turning them on (docs/forecast-evidence.md).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from lstm_plugin.core.config_fields import Section, bounded

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class ExitsSection(Section):
    """Forecast exits: between rebalances a holding whose fresh forecast breaches the threshold for
    ``bars`` bars in a row is sold (or trimmed to ``keep``) at the next open; nothing re-enters before
    the next rebalance (lstm_plugin.portfolio.forecast_exits)."""

    enabled: bool = Field(False, description="Watch the holdings' forecasts on every bar between rebalances.")
    signal: Literal["zscore", "loss_probability"] = Field(
        "zscore",
        description="'zscore': the holding's expected return in cross-sectional z-units of the bar's "
        "forecasts; 'loss_probability': the model's probability of the 'down' class.",
    )
    min_z: Annotated[float, bounded(-5, 5)] = Field(
        -1.0, description="signal 'zscore': a holding below this z is breaching."
    )
    max_loss_probability: Annotated[float, bounded(0.01, 0.99)] = Field(
        0.5, description="signal 'loss_probability': a holding whose P(down) is above this is breaching."
    )
    bars: Annotated[int, bounded(1, 252)] = Field(
        2, description="Bars in a row a holding must breach before it is exited (k)."
    )
    keep: Annotated[float, bounded(0, 0.95)] = Field(
        0.0, description="Share of the position kept at an exit: 0 sells it all, 0.5 trims it to half."
    )


class RiskSection(Section):
    """Forecast risk: parts that scale the rebalance's targets, each on or off
    (lstm_plugin.portfolio.forecast_risk)."""

    exposure: bool = Field(
        False,
        description="Scale gross exposure by the cross-sectional mean forecast and by the serving "
        "models' reliability, within [min_exposure, 1].",
    )
    mean_scale: Annotated[float, bounded(1e-4, 1)] = Field(
        0.01,
        description="exposure: a mean expected log return of -mean_scale (per model horizon) takes the "
        "exposure to min_exposure; 0 or above leaves it full.",
    )
    reliability_cap: bool = Field(
        False,
        description="Shrink each position's cap (portfolio.max_weight) with its model's live hit rate.",
    )
    cap_floor: Annotated[float, bounded(0, 1)] = Field(
        0.25, description="reliability_cap: the share of max_weight left to a model no better than a coin."
    )
    full_hit_rate: Annotated[float, bounded(0.5, 1)] = Field(
        0.55, description="reliability_cap: the live hit rate that earns the full max_weight."
    )
    volatility_targeting: bool = Field(
        False,
        description="Scale gross exposure to target_volatility on the book's realised volatility: the "
        "plain baseline the forecast parts must beat.",
    )
    target_volatility: Annotated[float, bounded(0.01, 2)] = Field(
        0.15, description="volatility_targeting: the annualised volatility aimed at."
    )
    volatility_bars: Annotated[int, bounded(5, 1000)] = Field(
        63, description="volatility_targeting: the bars of daily returns the realised volatility reads."
    )
    min_exposure: Annotated[float, bounded(0, 1)] = Field(
        0.3, description="The least gross exposure the scaling parts leave (a share of the targets)."
    )

    @property
    def active(self) -> bool:
        """Whether any part is on."""
        return self.exposure or self.reliability_cap or self.volatility_targeting
