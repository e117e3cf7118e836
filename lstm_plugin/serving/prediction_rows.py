"""A successful forecast dict built from one model output row, with the per-row work done once per batch.

A backtest serves thousands of rows a run: reading a version's metadata, converting numpy scalars and
formatting the bar for each of them cost more than the onnxruntime call. :func:`batch_rows` converts a
whole batch at once, :func:`served_fields` reads a version's metadata once, and :func:`row_prediction`
puts them together into the same dict, key for key and bit for bit, that per-bar serving builds
(:func:`~lstm_plugin.serving.forecast.success_prediction` is this function on one row).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np

from lstm_plugin.model.features import CLASSES
from lstm_plugin.serving.inference import finite_rows
from lstm_plugin.serving.registry import ModelRecord
from lstm_plugin.serving.results import Prediction

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: one output row: its class probabilities, expected log return and likeliest class
BatchRow = tuple[list[float], float, int]
#: an output row and the bar it answers for (``Timestamp.isoformat()``)
RowAnswer = tuple[list[float], float, int, str]


class ServedFields(NamedTuple):
    """What every forecast of one model version repeats."""

    model_type: str
    version: int
    horizon: int
    reliability: Any
    quality: Any
    trained_at: Any


def served_fields(record: ModelRecord) -> ServedFields:
    metrics = record.metadata.get("metrics", {})
    return ServedFields(
        record.model_type,
        record.version,
        int(record.metadata["horizon"]),
        metrics.get("reliability"),
        metrics.get("quality"),
        record.metadata["trained_at"],
    )


def batch_rows(probabilities: np.ndarray, expected: np.ndarray) -> list[BatchRow | None]:
    """Each output row as Python numbers (``None`` for a row that is not finite)."""
    finite = finite_rows(probabilities, expected).tolist()
    best = np.argmax(probabilities, axis=1).tolist()
    rows = zip(probabilities.tolist(), expected.tolist(), best, finite, strict=True)
    return [(row, value, choice) if ok else None for row, value, choice, ok in rows]


def row_prediction(symbol: str, fields: ServedFields, row: RowAnswer, provider: str | None) -> Prediction:
    """The forecast of one output row: the likeliest class, its probability, the expected move."""
    probabilities, expected, best, as_of = row
    return {
        "symbol": symbol,
        "status": "success",
        "message": "",
        "predicted_direction": CLASSES[best],
        "confidence": probabilities[best],
        "price_change_pct": float(math.expm1(expected) * 100.0),
        "probabilities": dict(zip(CLASSES, probabilities, strict=True)),
        "expected_log_return": expected,
        "horizon": fields.horizon,
        "model_type": fields.model_type,  # type: ignore[typeddict-item]  # a ModelRecord's model type
        "model_version": fields.version,
        "reliability": fields.reliability,
        "quality": fields.quality,
        "trained_at": fields.trained_at,
        "as_of": as_of,
        "cached": False,
        "provider": provider,
    }
