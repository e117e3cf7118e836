"""The Models page and the One-symbol page: what serves each symbol, how old it is, and how it has done.

Each row's status, version, age, reliability and shelved candidate come from
:meth:`~lstm_plugin.serving.forecast.ForecastService.get_model_status`, so they are those of
``lstm-plugin status --json``. The track record (hit rate and rank IC on the outcomes known now, with
their intervals) is the served version's recorded forecasts scored against the data
(:mod:`lstm_plugin.serving.track_record`). Flags say in words why a row needs a look.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict

import pandas as pd

from lstm_plugin.core.statuses import ModelType
from lstm_plugin.dashboard.sources import Sources
from lstm_plugin.model.model_files import ModelRecord
from lstm_plugin.serving.freshness import retrain_due
from lstm_plugin.serving.live_scores import LiveScore, degradation
from lstm_plugin.serving.registry import UNIVERSAL_NAME
from lstm_plugin.serving.results import candidate_model
from lstm_plugin.serving.track_record import (
    TrackRecord,
    closes_until,
    no_forecasts,
    score_models,
    score_track,
)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class ModelRow(TypedDict):
    """One line of the Models page (``/api/models``)."""

    symbol: str
    model_type: ModelType  # specific | universal
    status: str
    version: int | None
    served_by: str | None
    trained_at: str | None
    age_days: float | None
    sha256: str | None  # the first 12 hex digits
    reliability: float | None
    quality: float | None
    test_ic: float | None
    track: TrackRecord | None
    degraded: str | None
    candidate: dict[str, Any] | None
    tuned: dict[str, Any] | None
    flags: list[str]


def _naive(when: pd.Timestamp) -> pd.Timestamp:
    return when.tz_convert(None) if when.tzinfo is not None else when


def tracks(sources: Sources, records: list[ModelRecord]) -> dict[str, tuple[TrackRecord, pd.DataFrame]]:
    """Each record's (by sha256) track record and its scored forecasts."""
    return score_models(sources.registry.root, records, closes_until(sources.source, sources.clock.now()))


def _flags(row: ModelRow, force_retrain_days: float) -> list[str]:
    flags = []
    if row["status"] == "outdated":
        flags.append(f"outdated: trained {row['age_days']:,.0f} days ago, over {force_retrain_days:g}")
    elif row["status"] == "not_available" and row["served_by"] is None:
        flags.append("no model serves it: neither its own nor the universal one")
    if row["candidate"]:
        candidate = row["candidate"]
        flags.append(f"v{candidate['model_version']} shelved: {candidate['reason'] or 'no reason recorded'}")
    if row["degraded"]:
        flags.append(row["degraded"])
    track = row["track"]
    if track is not None and track["up_calls"] in (0.0, 1.0) and track["n"] >= 10:
        direction = "a rise" if track["up_calls"] == 1.0 else "a fall"
        flags.append(
            f"calls {direction} every time ({track['n']} known outcomes): its hit rate is the base rate"
        )
    if track is not None and _below_base_rate(track):
        flags.append(
            f"live hit rate {track['hit_rate']:.3f}: its whole interval is below always calling the likelier "
            f"sign ({track['base_rate']:.3f})"
        )
    return flags


def _below_base_rate(track: TrackRecord) -> bool:
    high, base = track["hit_high"], track["base_rate"]
    return high is not None and base is not None and high < base


def _degraded(sources: Sources, track: TrackRecord | None, metrics: Mapping[str, Any]) -> str | None:
    if track is None:
        return None
    settings = sources.config.lstm_service.retraining
    live: LiveScore = {
        "n": track["n"],
        "hit_rate": track["hit_rate"],
        "ic": track["rank_ic"],
        "test_hit_rate": metrics.get("reliability"),
        "test_ic": metrics.get("ic"),
    }
    return degradation(live, settings.degradation_margin, settings.degradation_min_outcomes)


def _universal_row(sources: Sources) -> tuple[ModelRow, ModelRecord] | None:
    now = sources.clock.now()
    served, newest = sources.registry.resolve_with_candidate("universal", UNIVERSAL_NAME, now)
    if served is None:
        return None
    age = round((now - served.trained_at) / pd.Timedelta(days=1), 3)
    due = retrain_due(served.trained_at, now, sources.config.lstm.force_retrain_days)
    metrics = served.metadata.get("metrics", {})
    row: ModelRow = {
        "symbol": UNIVERSAL_NAME,
        "model_type": "universal",
        "status": "outdated" if due else "ready",
        "version": served.version,
        "served_by": "universal",
        "trained_at": served.metadata["trained_at"],
        "age_days": age,
        "sha256": str(served.metadata["sha256"])[:12],
        "reliability": metrics.get("reliability"),
        "quality": metrics.get("quality"),
        "test_ic": metrics.get("ic"),
        "track": None,
        "degraded": None,
        "candidate": dict(candidate) if (candidate := candidate_model(newest)) else None,
        "tuned": sources.forecasts.tuned.provenance_at("universal", UNIVERSAL_NAME, now),
        "flags": [],
    }
    return row, served


def model_rows(sources: Sources) -> list[ModelRow]:
    """The universal model's row (when there is one), then one row per symbol, in symbol order."""
    sources.read_training()
    forecasts = sources.forecasts
    now = sources.clock.now()
    rows: list[tuple[ModelRow, ModelRecord | None]] = []
    universal = _universal_row(sources)
    if universal is not None:
        rows.append(universal)
    for symbol in sources.symbols():
        status = forecasts.get_model_status(symbol)
        own = sources.registry.resolve("specific", symbol, now) if status["model_version"] else None
        row: ModelRow = {
            "symbol": symbol,
            "model_type": "specific",
            "status": status["status"],
            "version": status["model_version"],
            "served_by": status["served_by"],
            "trained_at": status["trained_at"],
            "age_days": status["age_days"],
            "sha256": None if own is None else str(own.metadata["sha256"])[:12],
            "reliability": status["reliability"],
            "quality": status["quality"],
            "test_ic": status["ic"],
            "track": None,
            "degraded": None,
            "candidate": dict(status["candidate"]) if status["candidate"] else None,
            "tuned": status["tuned"],
            "flags": [],
        }
        rows.append((row, own))
    scored = tracks(sources, [r for _, r in rows if r is not None])
    for row, record in rows:
        if record is not None:
            found = scored.get(str(record.metadata["sha256"]))
            row["track"] = found[0] if found else score_track(no_forecasts())
            row["degraded"] = _degraded(sources, row["track"], record.metadata.get("metrics", {}))
        row["flags"] = _flags(row, sources.config.lstm.force_retrain_days)
    return [row for row, _ in rows]


#: The most forecasts a symbol page lists (the newest; a pooled model serves thousands).
MAX_POINTS = 5000
EVENTS = {"production": "promoted", "candidate": "shelved", "discarded": "discarded"}


def symbol_detail(sources: Sources, symbol: str) -> dict[str, Any]:
    """One symbol's page (``/api/symbol/<SYMBOL>``): its version timeline, its served forecasts against
    their outcomes, their calibration and the model's age at each forecast. ``symbol`` must be one the
    registry or the data lists (else :class:`KeyError`): nothing else reaches the file system."""
    model_type: ModelType = "universal" if symbol == UNIVERSAL_NAME else "specific"
    if symbol not in set(sources.symbols()) | {UNIVERSAL_NAME}:
        raise KeyError(symbol)
    records = sources.registry.records(model_type, symbol)
    scored = tracks(sources, records)
    versions = []
    for record in sorted(records, key=lambda r: (r.trained_at, r.version)):
        reason = record.metadata.get("stage_reason")
        event = EVENTS.get(record.stage, record.stage)
        if record.stage == "production" and reason and "by hand" in reason:
            event = "promoted by hand"
        track = scored.get(str(record.metadata["sha256"]))
        versions.append(
            {
                "version": record.version,
                "event": event,
                "reason": reason,
                "trained_at": record.metadata["trained_at"],
                "sha256": str(record.metadata["sha256"])[:12],
                "reliability": record.reliability,
                "track": None if track is None else track[0],
            }
        )
    served = pd.concat([rows for _, rows in scored.values()]) if scored else no_forecasts()
    return {
        "symbol": symbol,
        "model_type": model_type,
        "versions": versions,
        "forecasts_recorded": len(served),
        "forecasts": _forecast_points(served.sort_values(["bar", "symbol"]).tail(MAX_POINTS), records),
        "calibration": _calibration(served),
    }


def _forecast_points(frame: pd.DataFrame, records: list[ModelRecord]) -> list[dict[str, Any]]:
    """The forecasts in ``frame``: bar, symbol, version, score, expected and realised return, model age."""
    if frame.empty:
        return []
    trained = {str(r.metadata["sha256"]): (r.version, r.trained_at) for r in records}
    points = []
    for row in frame.itertuples(index=False):
        version, trained_at = trained[row.sha256]
        bar = pd.Timestamp(row.bar)
        points.append(
            {
                "bar": row.bar,
                "symbol": row.symbol,
                "version": version,
                "score": row.score,
                "expected": row.expected,
                "realised": None if pd.isna(row.realised) else float(row.realised),
                "age_days": round((bar - _naive(trained_at)) / pd.Timedelta(days=1), 1),
            }
        )
    return points


def _calibration(frame: pd.DataFrame, buckets: int = 5) -> list[dict[str, Any]]:
    """Forecast bucket (quintiles of the score) → mean realised return and share that rose."""
    known = frame[frame["realised"].notna()] if not frame.empty else frame
    if len(known) < buckets:
        return []
    groups = pd.qcut(known["score"].rank(method="first"), buckets, labels=False)
    table = []
    for bucket, rows in known.groupby(groups):
        table.append(
            {
                "bucket": int(bucket) + 1,
                "n": len(rows),
                "score_low": float(rows["score"].min()),
                "score_high": float(rows["score"].max()),
                "mean_realised": float(rows["realised"].mean()),
                "share_up": float((rows["realised"] > 0).mean()),
            }
        )
    return table
