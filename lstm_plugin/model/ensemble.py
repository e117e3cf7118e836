"""Ensembles: several networks trained per symbol as one unit and served as one ONNX graph (docs/models.md).

Every member sees the same samples, split the same way: it fits on the training segment (reading
the last ``window`` bars of each sample's window) and stops early on the validation segment. On
the validation segment — out of sample for every member, and known at the training time — each
member's expected returns give its standardisation (mean and standard deviation) and its rank IC.
The weights are equal, or (``ensemble_weights: ic``) by :func:`member_weights`. The test segment,
untouched so far, measures the combined graph: those are the metrics stored with the model.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence

import numpy as np
from torch import nn

from lstm_plugin.core.config import EnsembleMember, ModelSection
from lstm_plugin.model.fitting import FitResult, FittedNetwork, fit_network, predict_torch, split_samples
from lstm_plugin.model.metrics import forecast_metrics, spearman
from lstm_plugin.model.network import EnsembleForecaster
from lstm_plugin.model.samples import SampleSet

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: ``build(n_features, member_config)``: a member's core (the ``lstm_build_model`` hook)
BuildMember = Callable[[int, ModelSection], nn.Module]


def member_config(model: ModelSection, member: EnsembleMember) -> ModelSection:
    """The model section one member trains with: the shared training settings, its own architecture."""
    return model.model_copy(
        update={
            "cell": member.cell,
            "window": member.window,
            "hidden_size": member.hidden_size,
            "num_layers": member.num_layers,
            "ensemble": [],
        }
    )


def member_weights(ics: Sequence[float], mode: str, shrinkage: float) -> np.ndarray:
    """Equal weights, or with ``mode == 'ic'``: ``shrinkage / M + (1 − shrinkage) · ic⁺ᵢ / Σ ic⁺`` — each
    member's positive validation rank IC, shrunk toward equal; equal when no member's IC is positive."""
    count = len(ics)
    equal = np.full(count, 1.0 / count)
    positive = np.clip(np.nan_to_num(np.asarray(ics, dtype="float64"), nan=0.0), 0.0, None)
    if mode != "ic" or positive.sum() <= 0:
        return equal
    return shrinkage * equal + (1.0 - shrinkage) * positive / positive.sum()


def _build(build_member: BuildMember, settings: ModelSection, n_features: int) -> nn.Module:
    return build_member(n_features, settings)


def _last_bars(part: SampleSet, window: int) -> SampleSet:
    return SampleSet(part.windows[:, -window:, :], part.returns, part.dates)


def _fit_member(
    train: SampleSet,
    val: SampleSet,
    config: ModelSection,
    member: EnsembleMember,
    build_member: BuildMember,
    progress: bool,
    label: str,
) -> tuple[FittedNetwork, float, float, float]:
    """One member fitted, with the mean, standard deviation and rank IC of its validation forecasts."""
    settings = member_config(config, member)
    validation = _last_bars(val, member.window)
    network = fit_network(
        _last_bars(train, member.window),
        validation,
        settings,
        functools.partial(_build, build_member, settings),
        progress=progress,
        label=label,
    )
    _, expected = predict_torch(network.forecaster, validation.windows)
    return network, float(np.mean(expected)), float(np.std(expected)) or 1e-6, spearman(expected, val.returns)


def fit_ensemble(
    samples: SampleSet,
    config: ModelSection,
    build_member: BuildMember,
    *,
    progress: bool = False,
    label: str = "training",
) -> FitResult:
    """Fit every member of ``config.ensemble`` and combine them (see the module docstring)."""
    train, val, test = split_samples(samples, config, label)
    started = time.perf_counter()
    fitted = [
        _fit_member(train, val, config, member, build_member, progress, f"{label} member {i + 1}")
        for i, member in enumerate(config.ensemble)
    ]
    means, stds, ics = (np.array([f[k] for f in fitted]) for k in (1, 2, 3))
    weights = member_weights(list(ics), config.ensemble_weights, config.ensemble_shrinkage)
    networks = [f[0] for f in fitted]
    ensemble = EnsembleForecaster(
        [n.forecaster for n in networks], [m.window for m in config.ensemble], weights, means, stds
    )
    probabilities, expected = predict_torch(ensemble, test.windows)
    metrics = forecast_metrics(probabilities, expected, test.returns)
    metrics.update(
        n_train=len(train),
        n_validation=len(val),
        epochs_run=sum(len(n.history) for n in networks),
        fit_seconds=round(time.perf_counter() - started, 3),
    )
    return FitResult(
        forecaster=ensemble,
        metrics=metrics,
        history=[row for n in networks for row in n.history],
        train_start=train.dates.min(),
        train_end=train.dates.max(),
        device=networks[0].device,
        test=test,
        members=[
            {
                **member.model_dump(),
                "weight": float(w),
                "validation_ic": _plain(ic),
                "best_epoch": n.best_epoch,
            }
            for member, w, ic, n in zip(config.ensemble, weights, ics, networks)
        ],
    )


def _plain(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None
