"""``lstm-plugin status``'s track-record columns: each served model's live hit rate and rank IC, and a legend.

The figures are those of the dashboard's Models page (:mod:`lstm_plugin.serving.track_record`): the
served version's recorded forecasts scored on the outcomes the data holds at the clock's now.
"""

from __future__ import annotations

from typing import Any

from lstm_plugin.cli.context import CommandContext
from lstm_plugin.cli.tables import pct
from lstm_plugin.serving.track_record import closes_until, no_forecasts, score_models, score_track

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

STATUS_LEGEND = (
    "live: the served version's recorded forecasts scored on the outcomes known now (n); hit = share of "
    "right signs [95 %], base = always calling the likelier sign; rank_ic [95 %] (docs/dashboard.md)"
)


def with_tracks(ctx: CommandContext, results: dict[str, Any]) -> dict[str, Any]:
    """``results`` (symbol → status) with ``track``: the served own model's track record, else ``None``."""
    now = ctx.clock.now()
    served = {
        symbol: record
        for symbol, status in results.items()
        if status["model_version"] and (record := ctx.registry.resolve("specific", symbol, now)) is not None
    }
    scored = score_models(ctx.registry.root, served.values(), closes_until(ctx.source, now))
    empty = score_track(no_forecasts())
    for symbol, status in results.items():
        record = served.get(symbol)
        found = None if record is None else scored.get(str(record.metadata["sha256"]), (empty, None))[0]
        results[symbol] = dict(status, track=found)
    return results


def _band(value: Any, low: Any, high: Any) -> str:
    if value is None:
        return "-"
    return pct(value, 3) + ("" if low is None else f" [{pct(low, 2)},{pct(high, 2)}]")


def status_rows(results: dict[str, Any]) -> list[list[str]]:
    """The table of ``lstm-plugin status``: one row per symbol, the header first."""
    rows = [
        [
            "symbol",
            "status",
            "version",
            "trained_at",
            "age_days",
            "reliability",
            "quality",
            "served_by",
            "live_n",
            "hit [95%]",
            "base",
            "rank_ic [95%]",
        ]
    ]
    for symbol, st in results.items():
        track = st.get("track") or {}
        rows.append(
            [
                symbol,
                st["status"],
                f"v{st['model_version']}" if st["model_version"] else "-",
                (st["trained_at"] or "-")[:10],
                pct(st["age_days"], 1),
                pct(st["reliability"], 3),
                pct(st["quality"], 3),
                st["served_by"] or "-",
                str(track["n"]) if track else "-",
                _band(track.get("hit_rate"), track.get("hit_low"), track.get("hit_high")),
                pct(track.get("base_rate"), 3),
                _band(track.get("rank_ic"), track.get("ic_low"), track.get("ic_high")),
            ]
        )
    return rows
