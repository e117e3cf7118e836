"""One training job as data in, data out: the unit every backend runs.

A :class:`TrainJob` carries everything a worker needs — the bars (already cut at the training time),
the model and plugin config, the training keys the registry already holds — and
:func:`run_training_job` turns it into a :class:`JobResult` holding the ONNX bytes and their
metadata. Nothing here touches the registry or the data source, so a job runs the same in the
caller, in a worker process or in a Ray task on another machine; the driver verifies and
publishes the result.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import pandas as pd

from lstm_plugin.core.config import ModelSection, PluginsSection, model_config_hash
from lstm_plugin.core.data import DataSource, frame_fingerprint
from lstm_plugin.core.dates import iso_day
from lstm_plugin.core.errors import ModelError
from lstm_plugin.core.statuses import ModelType
from lstm_plugin.model.features import FEATURE_HISTORY
from lstm_plugin.model.samples import (
    SampleSet,
    compute_features,
    float32_samples,
    pooled_samples,
    training_samples,
)
from lstm_plugin.plugins.manager import PluginManager, get_plugin_manager
from lstm_plugin.training.history import training_frames
from lstm_plugin.training.reproducible import fixed_torch_threads

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


Result = TypeVar("Result", covariant=True)


@dataclass(frozen=True)
class ParentVersion:
    """The served version a warm-started retrain starts from (``model.warm_start``): its weights as text
    (:mod:`lstm_plugin.model.warm_weights`)."""

    version: int
    sha256: str
    weights: str

    def provenance(self) -> dict[str, Any]:
        return {"version": self.version, "sha256": self.sha256}


class Job(Protocol[Result]):
    """What a backend runs: a training (:class:`TrainJob`) or a tuning trial
    (:class:`lstm_plugin.training.tuning.trial.TrialJob`), plain data whose ``run`` gives plain data back."""

    @property
    def label(self) -> str: ...

    def run(self, plugins: PluginManager | None = None) -> Result: ...


@dataclass(frozen=True)
class TrainJob:
    """A specific model (``name`` = the symbol) or the universal one (``name`` = ``DEFAULT``)."""

    model_type: ModelType
    name: str
    trained_at: pd.Timestamp
    #: the bars, cut at ``trained_at``; ``None`` when the job carries its ``source`` by path instead
    frames: Mapping[str, pd.DataFrame] | None
    model: ModelSection
    plugins: PluginsSection = field(default_factory=PluginsSection)
    known_keys: frozenset[str] = frozenset()
    force: bool = False
    extra_plugins: tuple[Any, ...] = ()
    progress: bool = False
    #: the universe's mean forward log return by date, cut at ``trained_at`` (``model.target: excess``)
    benchmark: pd.Series | None = None
    #: a source travelling by path (a folder of files) the worker reads ``symbols`` from (``frames`` None)
    source: DataSource | None = None
    symbols: tuple[str, ...] = ()
    #: a version trained at ``trained_at`` is registered: likely this very training, worth a check before
    #: sending the job to a worker (:func:`reused_training`)
    rerun: bool = False
    #: the tuning whose settings ``model`` holds (:class:`lstm_plugin.serving.tuned.TunedSettings`), or None
    tuning: Mapping[str, Any] | None = None
    #: the version a warm start begins from, or None (a cold start)
    parent: ParentVersion | None = None

    @property
    def label(self) -> str:
        return f"{self.model_type} {self.name} @ {self.trained_at:%Y-%m-%d}"

    def run(self, plugins: PluginManager | None = None) -> JobResult:
        """What a backend calls in its worker: :func:`run_training_job`."""
        return run_training_job(self, plugins)


@dataclass(frozen=True)
class JobResult:
    """What a worker sends back: ONNX bytes and metadata, or only the key of an identical training."""

    model_type: ModelType
    name: str
    training_key: str
    onnx_bytes: bytes | None
    metadata: Mapping[str, Any] | None
    seconds: float
    worker: str
    trained_at: pd.Timestamp | None = None
    #: a new model's held-out test samples (float32 windows): the retrain and the served model are compared
    #: on them (:meth:`~lstm_plugin.training.trainer.ModelTrainer.publish`)
    test: SampleSet | None = None
    #: trained although an identical training was registered (``train --force``): published as a new version
    force: bool = False
    #: ``(plugin, hook, message)`` of the plugins that failed in the worker (warned by the driver too)
    plugin_failures: tuple[tuple[str, str, str], ...] = ()

    @property
    def reused(self) -> bool:
        return self.onnx_bytes is None


def training_key(
    model_type: ModelType, name: str, config_hash: str, fingerprints: Mapping[str, str], setup: str = ""
) -> str:
    """Identity of a training: the same type, name, config, features, ``setup`` (torch threads, plugins) and
    data — each symbol's bars by content, so a pooled model's symbol set too — give the same key."""
    payload = "|".join(
        [model_type, name, config_hash, setup, *(f"{s}={fp}" for s, fp in sorted(fingerprints.items()))]
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def training_setup(job: TrainJob) -> str:
    """What shapes a model besides its config and bars: the torch threads its reductions split over, the
    plugins' settings and the extra plugin objects' classes."""
    extra = sorted(f"{type(p).__module__}.{type(p).__qualname__}" for p in job.extra_plugins)
    setup = (
        f"threads={job.model.torch_threads};plugins={job.plugins.model_dump_json()};extra={','.join(extra)}"
    )
    if job.tuning is not None:  # the settings are in the config hash; which study chose them is here
        setup += ";tuning=" + json.dumps(dict(job.tuning), sort_keys=True)
    if job.parent is not None:  # a warm start's bytes depend on the weights it began from
        setup += f";parent={job.parent.sha256}"
    return setup


_SOURCES: dict[tuple[str, str], DataSource] = {}  # a worker's sources, so each reads a file once


def job_frames(job: TrainJob) -> Mapping[str, pd.DataFrame]:
    """The job's bars: carried, or read from its source (in a worker, a source kept for the process
    reads each file once across jobs)."""
    if job.frames is not None:
        return job.frames
    if job.source is None:
        raise ModelError(f"{job.label} › the job carries neither bars nor a data source")
    source = job.source
    if getattr(source, "_arrived_by_path", False):  # unpickled here: share one per folder in this process
        with _MANAGERS_LOCK:
            source = _SOURCES.setdefault((type(source).__qualname__, source.name), source)
    return training_frames(source, job.model_type, job.symbols, job.trained_at, job.model.lookback_years)


_MANAGERS: dict[str, PluginManager] = {}
_MANAGERS_LOCK = threading.Lock()


def job_plugins(job: TrainJob) -> PluginManager:
    """A plugin manager for the job; cached per process when the job brings no plugin objects."""
    if job.extra_plugins:
        return get_plugin_manager(job.plugins, list(job.extra_plugins))
    key = job.plugins.model_dump_json()
    with _MANAGERS_LOCK:
        if key not in _MANAGERS:
            _MANAGERS[key] = get_plugin_manager(job.plugins)
        return _MANAGERS[key]


def run_training_job(job: TrainJob, plugins: PluginManager | None = None) -> JobResult:
    """Features -> samples -> fit -> ONNX (parity-checked), or only the key when it is in
    ``job.known_keys``; on ``model.torch_threads`` torch threads."""
    with fixed_torch_threads(job.model.torch_threads):
        return _run_training_job(job, plugins)


def feature_names(job: TrainJob, frames: Mapping[str, pd.DataFrame], plugins: PluginManager) -> list[str]:
    """The job's feature names, from the last few bars of one symbol: names do not depend on how many bars
    are featurised."""
    first = min(frames)
    tail = frames[first].iloc[-(FEATURE_HISTORY + 2) :]
    return [str(c) for c in compute_features(tail, plugins, job.model, first).columns]


def _identity(
    job: TrainJob, frames: Mapping[str, pd.DataFrame], plugins: PluginManager
) -> tuple[list[str], str, str]:
    """``(feature names, config hash, training key)``; a training already registered costs a hash of its
    bars, not its features."""
    names = feature_names(job, frames, plugins)
    fingerprints = {symbol: frame_fingerprint(frame) for symbol, frame in frames.items()}
    if job.benchmark is not None:  # the excess target's labels depend on the whole universe's bars
        fingerprints["<benchmark>"] = frame_fingerprint(job.benchmark.to_frame())
    config_hash = model_config_hash(job.model, names)
    key = training_key(job.model_type, job.name, config_hash, fingerprints, training_setup(job))
    return names, config_hash, key


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def reused_training(job: TrainJob, plugins: PluginManager | None = None) -> JobResult | None:
    """The result of ``job`` when an identical training is registered (its key is in
    ``job.known_keys`` and ``force`` is off), else ``None``: lets a driver skip sending a rerun to a
    worker. Only for a ``rerun`` job: for any other, the worker finds out (it reads the bars anyway)."""
    if job.force or not job.rerun:
        return None
    started = time.perf_counter()
    key = _identity(job, job_frames(job), plugins or job_plugins(job))[2]
    if key not in job.known_keys:
        return None
    return JobResult(
        job.model_type,
        job.name,
        key,
        None,
        None,
        time.perf_counter() - started,
        worker_name(),
        job.trained_at,
    )


def _run_training_job(job: TrainJob, plugins: PluginManager | None) -> JobResult:
    started = time.perf_counter()
    plugins = plugins or job_plugins(job)
    frames = job_frames(job)
    names, config_hash, key = _identity(job, frames, plugins)
    worker = worker_name()
    if not job.force and key in job.known_keys:
        seconds = time.perf_counter() - started
        return JobResult(
            job.model_type,
            job.name,
            key,
            None,
            None,
            seconds,
            worker,
            job.trained_at,
            plugin_failures=_failures(plugins),
        )
    samples = job_samples(job, frames, plugins, names)
    data_end = iso_day(max(frame.index[-1] for frame in frames.values()))
    from lstm_plugin.training.fit_export import fit_and_export

    blob, metadata, test = fit_and_export(job, plugins, samples, names, config_hash, key, data_end)
    metadata.update(symbols=sorted(frames), worker=worker)
    seconds = time.perf_counter() - started
    return JobResult(
        job.model_type,
        job.name,
        key,
        blob,
        metadata,
        seconds,
        worker,
        job.trained_at,
        test,
        job.force,
        _failures(plugins),
    )


def _failures(plugins: PluginManager) -> tuple[tuple[str, str, str], ...]:
    return tuple((name, hook, message) for (name, hook), message in plugins.failures.items())


def job_samples(
    job: TrainJob, frames: Mapping[str, pd.DataFrame], plugins: PluginManager, names: list[str]
) -> SampleSet:
    """The labelled windows a job trains on: the symbol's own, or every pooled symbol's."""
    per_symbol: dict[str, SampleSet] = {}
    for symbol in sorted(frames):
        frame = frames[symbol]
        features = compute_features(frame, plugins, job.model, symbol)
        if [str(c) for c in features.columns] != names:
            raise ModelError(f"lstm_features › the plugins produce different features for {symbol}")
        pooled = job.model_type != "specific"  # kept as their rows: a pooled set is window times smaller
        per_symbol[symbol] = training_samples(frame, features, job.model, job.benchmark, lazy=pooled)
    return per_symbol[job.name] if job.model_type == "specific" else pooled_samples(per_symbol)


def held_out_samples(job: TrainJob, plugins: PluginManager | None = None) -> SampleSet:
    """The test samples a training of ``job`` is measured on (the newest, after a gap), rebuilt from its
    bars: how a driver compares a reused training with the model it serves."""
    from lstm_plugin.model.fitting import split_samples

    plugins = plugins or job_plugins(job)
    frames = job_frames(job)
    names = _identity(job, frames, plugins)[0]
    return float32_samples(split_samples(job_samples(job, frames, plugins, names), job.model, job.label)[2])
