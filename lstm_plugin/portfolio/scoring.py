"""How an LSTM forecast moves a technical score: pure functions, documented to the number.

For a successful forecast with class probabilities ``P(up)``, ``P(down)``::

    trust        = min(1, reliability / reliability_threshold)
                 × min(1, quality / model_quality_threshold)        (lstm.below_threshold = "scale")
                 = 1 if both metrics reach their thresholds, else 0  (lstm.below_threshold = "ignore")
    signal       = trust × (P(up) − P(down))                          # −1 .. +1
    combined     = clip(technical + 100 × weight × signal, 0, 100)
    contribution = combined − technical

So at the default ``weight`` 0.3 a certain, fully trusted "up" adds 30 points;
``weight = 0`` adds exactly nothing; the size of the contribution never falls as
``weight`` rises. ``reliability`` is the model's out-of-sample directional accuracy and
``quality`` its out-of-sample ROC AUC (:func:`lstm_plugin.model.metrics.forecast_metrics`): under
``scale`` a model at 90 % of the reliability threshold counts at 90 %; a model without a finite
measure does not count. A failed forecast (no model, no data, a broken file) contributes 0 and its
status and message say why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from lstm_plugin.core.config import LSTMSection

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def forecast_edge(prediction: Mapping[str, Any]) -> float:
    """``P(up) − P(down)`` of a successful forecast, else 0."""
    probabilities = prediction.get("probabilities") or {}
    if prediction.get("status") != "success" or not probabilities:
        return 0.0
    return float(probabilities.get("up", 0.0)) - float(probabilities.get("down", 0.0))


def _finite(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and math.isfinite(value) else None


def forecast_trust(reliability: Any, quality: Any, lstm: LSTMSection) -> tuple[float, str]:
    """The 0..1 factor a model's validation metrics give its forecasts, and why it is below 1."""
    measured = {"reliability": _finite(reliability), "quality": _finite(quality)}
    missing = [name for name, value in measured.items() if value is None]
    if missing:
        return 0.0, f"model has no {' or '.join(missing)} measure"
    pairs = (
        ("reliability", measured["reliability"], lstm.reliability_threshold, "reliability_threshold"),
        ("quality", measured["quality"], lstm.model_quality_threshold, "model_quality_threshold"),
    )
    trust, reasons = 1.0, []
    for name, value, threshold, key in pairs:
        assert value is not None
        if value >= threshold:
            continue
        factor = max(0.0, value / threshold) if lstm.below_threshold == "scale" else 0.0
        trust *= factor
        reasons.append(
            f"{name} {value:.3f} < {key} {threshold:g}"
            + (f" (×{factor:.2f})" if lstm.below_threshold == "scale" else "")
        )
    return trust, "; ".join(reasons)


def lstm_entry(prediction: Mapping[str, Any], lstm: LSTMSection) -> dict[str, Any]:
    """``analysis['lstm']`` before the score is known: the forecast, its trust and its signal."""
    success = prediction.get("status") == "success"
    if success:
        trust, why = forecast_trust(prediction.get("reliability"), prediction.get("quality"), lstm)
    else:
        trust, why = 0.0, f"{prediction.get('status')}: {prediction.get('message') or 'no forecast'}"
    signal = trust * forecast_edge(prediction)
    return {
        "status": prediction.get("status"),
        "used": success and trust > 0,
        "reason": why,
        "direction": prediction.get("predicted_direction", "neutral") if success else "neutral",
        "confidence": float(prediction.get("confidence") or 0.0) if success else 0.0,
        "price_change_pct": float(prediction.get("price_change_pct") or 0.0) if success else 0.0,
        "signal": signal,
        "trust": trust,
        "contribution": 0.0,
        "model_type": prediction.get("model_type"),
        "model_version": prediction.get("model_version"),
        "reliability": prediction.get("reliability"),
        "quality": prediction.get("quality"),
        "as_of": prediction.get("as_of"),
    }


def integrate_score(technical: float, signal: float, weight: float) -> float:
    """``clip(technical + 100 · weight · signal, 0, 100)``; exactly ``technical`` when ``weight`` or
    ``signal`` is 0."""
    if weight == 0 or signal == 0:
        return technical
    return min(100.0, max(0.0, technical + 100.0 * weight * signal))
