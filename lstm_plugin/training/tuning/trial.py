"""One tuning trial as data in, data out: the unit a backend runs, as a training job is.

A :class:`TrialJob` carries a training job (the bars, cut at the tuning date, or a source travelling by
path) and the trial's parameters; :func:`run_trial` builds the samples under those settings, fits one
network per walk-forward fold (:mod:`~.folds`) and returns the mean of the folds' scores. After each
epoch it scores the network on the fold's block and applies the median rule against the curves of the
trials finished when this one was proposed (carried in the job), so a trial is pruned, or not, the same
way on every backend. Nothing here touches the study or the registry.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from lstm_plugin.core.config import ModelSection
from lstm_plugin.core.config_tuning import apply_parameters
from lstm_plugin.core.errors import InsufficientDataError
from lstm_plugin.model.samples import SampleSet
from lstm_plugin.plugins.manager import PluginManager
from lstm_plugin.training.fit_export import core_builder
from lstm_plugin.training.jobs import (
    TrainJob,
    feature_names,
    job_frames,
    job_plugins,
    job_samples,
    worker_name,
)
from lstm_plugin.training.reproducible import fixed_torch_threads
from lstm_plugin.training.tuning.folds import (
    STEPS_PER_FOLD,
    Fold,
    fold_score,
    median_says_prune,
    tuning_folds,
    tuning_span,
)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


@dataclass(frozen=True)
class TrialJob:
    """Trial ``number`` of a study: ``parameters`` on ``train`` (its ``model`` holds the untuned settings)."""

    train: TrainJob
    number: int
    parameters: dict[str, Any]
    folds: int
    prune: bool
    startup_trials: int
    warmup_epochs: int
    #: the intermediate scores ``{step: score}`` of the trials finished when this one was proposed
    peers: tuple[dict[int, float], ...] = ()

    @property
    def label(self) -> str:
        return f"trial {self.number} of {self.train.label}"

    def run(self, plugins: PluginManager | None = None) -> TrialResult:
        """What a backend calls in its worker: :func:`run_trial`."""
        return run_trial(self, plugins)


@dataclass(frozen=True)
class TrialResult:
    """A trial's value (the mean fold score; ``None`` when pruned) and its intermediate scores."""

    number: int
    value: float | None
    curve: dict[int, float]
    pruned: bool
    seconds: float
    worker: str


class _Pruned(Exception):
    """Raised from an epoch to stop a trial the median rule prunes."""


def run_trial(job: TrialJob, plugins: PluginManager | None = None) -> TrialResult:
    """Fit and score ``job``'s settings on every fold, one torch thread per ``model.torch_threads``."""
    started = time.perf_counter()
    settings = apply_parameters(job.train.model, job.parameters)
    train = dataclasses.replace(job.train, model=settings)
    curve: dict[int, float] = {}
    with fixed_torch_threads(settings.torch_threads):
        try:
            value = _scored_folds(job, train, settings, plugins or job_plugins(train), curve)
        except _Pruned:
            return TrialResult(job.number, None, curve, True, time.perf_counter() - started, worker_name())
    return TrialResult(job.number, value, curve, False, time.perf_counter() - started, worker_name())


def _scored_folds(
    job: TrialJob, train: TrainJob, settings: ModelSection, plugins: PluginManager, curve: dict[int, float]
) -> float:
    from lstm_plugin.model.fitting import split_samples

    frames = job_frames(train)
    samples = job_samples(train, frames, plugins, feature_names(train, frames, plugins))
    split_samples(samples, settings, train.label)  # a training's own checks: enough samples, a test segment
    gap = settings.horizon
    span = tuning_span(samples.dates, settings.validation_fraction, settings.test_fraction, gap)
    try:
        folds = tuning_folds(samples.dates, span, job.folds, settings.validation_fraction, gap)
    except ValueError as exc:
        raise InsufficientDataError(f"{job.label} › insufficient data › {exc}") from None
    build = core_builder(train, plugins)
    values = [
        _fold_value(job, k, samples, fold, settings, lambda n: build(n, settings), curve)
        for k, fold in enumerate(folds)
    ]
    return float(np.mean(values))


def _fold_value(
    job: TrialJob,
    k: int,
    samples: SampleSet,
    fold: Fold,
    settings: ModelSection,
    build_core: Callable[[int], Any],
    curve: dict[int, float],
) -> float:
    """Fold ``k``'s score: a network fitted before its block, stopped early as a training is, scored on the
    block; each epoch's score goes into ``curve`` and may prune the trial."""
    from lstm_plugin.model.fitting import fit_network, predict_torch

    scored = samples.subset(fold.score)
    windows = np.ascontiguousarray(scored.windows)
    own: dict[int, float] = {}

    def score(network: Any) -> float:
        return fold_score(predict_torch(network, windows)[1], scored.returns, scored.dates)

    def on_epoch(epoch: int, network: Any) -> None:
        step = k * STEPS_PER_FOLD + epoch
        own[step] = curve[step] = score(network)
        if job.prune and median_says_prune(own, job.peers, step, job.startup_trials, job.warmup_epochs):
            raise _Pruned

    fitted = fit_network(
        samples.subset(fold.fit), samples.subset(fold.stop), settings, build_core, on_epoch=on_epoch
    )
    return score(fitted.forecaster)
