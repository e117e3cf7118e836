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
from typing import Any

import numpy as np
import pandas as pd

from lstm_plugin.core.config import ModelSection, PluginsSection, model_config_hash
from lstm_plugin.core.data import DataSource, frame_fingerprint
from lstm_plugin.core.errors import ModelError
from lstm_plugin.core.version import __version__
from lstm_plugin.model.features import CLASSES, FEATURE_HISTORY
from lstm_plugin.model.samples import SampleSet, compute_features, pooled_samples, training_samples
from lstm_plugin.plugins.manager import PluginManager, get_plugin_manager
from lstm_plugin.training.history import history_window, symbol_history, training_frames
from lstm_plugin.training.reproducible import fixed_torch_threads, kernels_in_use

logger = logging.getLogger("lstm_plugin.training.trainer")

__all__ = [
    "JobResult",
    "TrainJob",
    "fixed_torch_threads",
    "held_out_samples",
    "history_window",
    "job_frames",
    "job_samples",
    "reused_training",
    "run_training_job",
    "symbol_history",
    "training_frames",
    "training_key",
    "training_setup",
]


@dataclass(frozen=True)
class TrainJob:
    """A specific model (``name`` = the symbol) or the universal one (``name`` = ``DEFAULT``)."""

    model_type: str
    name: str
    trained_at: pd.Timestamp
    #: the bars, cut at ``trained_at``; ``None`` when the job carries a portable ``source`` instead
    frames: Mapping[str, pd.DataFrame] | None
    model: ModelSection
    plugins: PluginsSection = field(default_factory=PluginsSection)
    known_keys: frozenset[str] = frozenset()
    force: bool = False
    extra_plugins: tuple[Any, ...] = ()
    progress: bool = False
    #: the universe's mean forward log return by date, cut at ``trained_at`` (``model.target: excess``)
    benchmark: pd.Series | None = None
    #: a portable data source (a folder of files) the worker reads ``symbols`` from, when ``frames`` is None
    source: DataSource | None = None
    symbols: tuple[str, ...] = ()
    #: a version trained at ``trained_at`` is registered: likely this very training, worth a check before
    #: sending the job to a worker (:func:`reused_training`)
    rerun: bool = False

    @property
    def label(self) -> str:
        return f"{self.model_type} {self.name} @ {self.trained_at:%Y-%m-%d}"


@dataclass(frozen=True)
class JobResult:
    """What a worker sends back: ONNX bytes and metadata, or only the key of an identical training."""

    model_type: str
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
    model_type: str, name: str, config_hash: str, fingerprints: Mapping[str, str], setup: str = ""
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
    return (
        f"threads={job.model.torch_threads};plugins={job.plugins.model_dump_json()};extra={','.join(extra)}"
    )


_SOURCES: dict[tuple[str, str], DataSource] = {}  # a worker's sources, so each reads a file once


def job_frames(job: TrainJob) -> Mapping[str, pd.DataFrame]:
    """The job's bars: carried, or read from its source (in a worker, a source kept for the process
    reads each file once across jobs)."""
    if job.frames is not None:
        return job.frames
    if job.source is None:
        raise ModelError(f"{job.label} › the job carries neither bars nor a data source")
    source = job.source
    if getattr(source, "_shipped", False):  # unpickled here: share one per folder in this process
        with _MANAGERS_LOCK:
            source = _SOURCES.setdefault((type(source).__qualname__, source.name), source)
    return training_frames(source, job.model_type, job.symbols, job.trained_at, job.model.lookback_years)


_MANAGERS: dict[str, PluginManager] = {}
_MANAGERS_LOCK = threading.Lock()


def _plugins_for(job: TrainJob) -> PluginManager:
    """A plugin manager for the job; cached per process when the job brings no plugin objects."""
    if job.extra_plugins:
        return get_plugin_manager(job.plugins, list(job.extra_plugins))
    key = job.plugins.model_dump_json()
    with _MANAGERS_LOCK:
        if key not in _MANAGERS:
            _MANAGERS[key] = get_plugin_manager(job.plugins)
        return _MANAGERS[key]


def _day(value: Any) -> str:
    return pd.Timestamp(value).isoformat()


def run_training_job(job: TrainJob, plugins: PluginManager | None = None) -> JobResult:
    """Features -> samples -> fit -> ONNX (parity-checked), or only the key when it is in
    ``job.known_keys``; on ``model.torch_threads`` torch threads."""
    with fixed_torch_threads(job.model.torch_threads):
        return _run_training_job(job, plugins)


def _identity(
    job: TrainJob, frames: Mapping[str, pd.DataFrame], plugins: PluginManager
) -> tuple[list[str], str, str]:
    """``(feature names, config hash, training key)``: feature names do not depend on how many bars
    are featurised, so a training already registered costs a hash of its bars, not its features."""
    first = frames[min(frames)]
    names = [
        str(c) for c in compute_features(first.iloc[-(FEATURE_HISTORY + 2) :], plugins, job.model).columns
    ]
    fingerprints = {symbol: frame_fingerprint(frame) for symbol, frame in frames.items()}
    if job.benchmark is not None:  # the excess target's labels depend on the whole universe's bars
        fingerprints["<benchmark>"] = frame_fingerprint(job.benchmark.to_frame())
    config_hash = model_config_hash(job.model, names)
    key = training_key(job.model_type, job.name, config_hash, fingerprints, training_setup(job))
    return names, config_hash, key


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def reused_training(job: TrainJob, plugins: PluginManager | None = None) -> JobResult | None:
    """The result of ``job`` when an identical training is registered (its key is in
    ``job.known_keys`` and ``force`` is off), else ``None``: lets a driver skip sending a rerun to a
    worker. Only for a ``rerun`` job: for any other, the worker finds out (it reads the bars anyway)."""
    if job.force or not job.rerun:
        return None
    started = time.perf_counter()
    key = _identity(job, job_frames(job), plugins or _plugins_for(job))[2]
    if key not in job.known_keys:
        return None
    return JobResult(
        job.model_type,
        job.name,
        key,
        None,
        None,
        time.perf_counter() - started,
        _worker_name(),
        job.trained_at,
    )


def _run_training_job(job: TrainJob, plugins: PluginManager | None) -> JobResult:
    started = time.perf_counter()
    plugins = plugins or _plugins_for(job)
    frames = job_frames(job)
    names, config_hash, key = _identity(job, frames, plugins)
    worker = _worker_name()
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
    data_end = _day(max(frame.index[-1] for frame in frames.values()))
    blob, metadata, test = _fit_and_export(job, plugins, samples, names, config_hash, key, data_end)
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
        features = compute_features(frame, plugins, job.model)
        if [str(c) for c in features.columns] != names:
            raise ModelError(f"lstm_features › the plugins produce different features for {symbol}")
        per_symbol[symbol] = training_samples(frame, features, job.model, job.benchmark)
    return per_symbol[job.name] if job.model_type == "specific" else pooled_samples(per_symbol)


def held_out_samples(job: TrainJob, plugins: PluginManager | None = None) -> SampleSet:
    """The test samples a training of ``job`` is measured on (the newest, after a gap), rebuilt from its
    bars: how a driver compares a reused training with the model it serves."""
    from lstm_plugin.model.fitting import split_samples

    plugins = plugins or _plugins_for(job)
    frames = job_frames(job)
    names = _identity(job, frames, plugins)[0]
    return _float32(split_samples(job_samples(job, frames, plugins, names), job.model, job.label)[2])


def _float32(samples: SampleSet) -> SampleSet:
    """Float32 windows: what serving feeds a model, at half the bytes on the way back to the driver."""
    return SampleSet(np.ascontiguousarray(samples.windows, dtype=np.float32), samples.returns, samples.dates)


def _fit_and_export(
    job: TrainJob,
    plugins: PluginManager,
    samples: SampleSet,
    feature_names: list[str],
    config_hash: str,
    key: str,
    data_end: str,
) -> tuple[bytes, dict[str, Any], SampleSet | None]:
    from lstm_plugin.model.ensemble import fit_ensemble
    from lstm_plugin.model.export import export_onnx, verify_onnx
    from lstm_plugin.model.fitting import fit_forecaster

    model = job.model

    def build_member(n_features: int, settings: ModelSection) -> Any:
        import torch

        name, core = plugins.call_first_named("lstm_build_model", n_features=n_features, config=settings)
        if core is None:
            raise ModelError("lstm_build_model › no plugin returned a model")
        if not isinstance(core, torch.nn.Module) or not any(True for _ in core.parameters()):
            kind = "module without weights" if isinstance(core, torch.nn.Module) else type(core).__name__
            raise ModelError(f"plugin {name!r} › lstm_build_model › returned a {kind}, not a torch.nn.Module")
        return core

    def build_core(n_features: int) -> Any:
        return build_member(n_features, model)

    if model.ensemble:
        result = fit_ensemble(samples, model, build_member, progress=job.progress, label=job.label)
    else:
        result = fit_forecaster(samples, model, build_core, progress=job.progress, label=job.label)
    forecaster = result.forecaster
    metadata = _training_metadata(job, result, feature_names, config_hash, key, data_end)
    # provenance inside the file itself, checked on every load (lstm_plugin.model.model_files)
    embedded: dict[str, Any] = {
        k: metadata[k]
        for k in ("trained_at", "data_end", "features", "window", "horizon", "classes", "scaler")
    }
    embedded.update(model_type=job.model_type, symbol=job.name, training_key=key)
    parity_windows = samples.windows[-64:] if len(samples) >= 2 else samples.windows
    blob = export_onnx(forecaster, np.ascontiguousarray(parity_windows), embedded, exporter=model.exporter)
    verify_onnx(blob, model.window, len(feature_names))  # here, in the worker: the driver only publishes
    json.dumps(metadata)  # fail here, in the worker, if anything is not plain data
    return blob, metadata, None if result.test is None else _float32(result.test)


def _training_metadata(
    job: TrainJob, result: Any, feature_names: list[str], config_hash: str, key: str, data_end: str
) -> dict[str, Any]:
    """The version's metadata: when and on what it was trained, its config, metrics, scaling and versions."""
    import onnx
    import onnxruntime
    import torch

    from lstm_plugin.model.export import opset_for

    model = job.model
    forecaster = result.forecaster
    metadata: dict[str, Any] = {
        "trained_at": job.trained_at.isoformat(),
        "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
        "train_start": _day(result.train_start),
        "train_end": _day(result.train_end),
        "data_end": data_end,
        "horizon": model.horizon,
        "window": model.window,
        "direction_threshold": model.direction_threshold,
        "classes": list(CLASSES),
        "features": feature_names,
        "config_hash": config_hash,
        "training_key": key,
        "model_config": model.model_dump(mode="json"),
        "metrics": result.metrics,
        "ensemble": result.members,
        "training_device": result.device,
        "torch_threads": torch.get_num_threads(),
        "kernels": kernels_in_use(),
        "scaler": {
            "mean": forecaster.feature_mean.tolist(),
            "std": forecaster.feature_std.tolist(),
            "target_scale": float(forecaster.target_scale),
        },
        "versions": {
            "lstm_plugin": __version__,
            "torch": torch.__version__,
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "opset": opset_for(model.exporter),
            "exporter": model.exporter,
        },
    }
    return metadata
