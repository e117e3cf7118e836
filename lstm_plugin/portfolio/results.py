"""The shape of a symbol's analysis (plain dicts, typed for readers and checkers; docs/portfolio.md)."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: ``ok``, or why no score could be made.
AnalysisStatus = Literal["ok", "insufficient_data", "error"]


class _LSTMExtras(TypedDict, total=False):
    """What :class:`~lstm_plugin.portfolio.enhanced_manager.LSTMEnhancedPortfolioManager` adds."""

    lstm: dict[str, Any]  # the forecast, its trust and its contribution to the score
    score_adjustments: list[dict[str, Any]]  # from lstm_adjust_score plugins


class Analysis(_LSTMExtras):
    """One symbol at one bar: its score (0-100), the recommendation and what the score is made of."""

    symbol: str
    status: AnalysisStatus
    message: str
    score: float
    technical_score: float
    recommendation: str
    components: dict[str, Any]
    indicators: dict[str, Any]
    as_of: str | None
