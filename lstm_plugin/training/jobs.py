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
from lstm_plugin.core.data import frame_fingerprint
from lstm_plugin.core.errors import ModelError
from lstm_plugin.core.version import __version__
from lstm_plugin.model.features import CLASSES, FEATURE_HISTORY
from lstm_plugin.model.samples import SampleSet, compute_features, pooled_samples, training_samples
from lstm_plugin.plugins.manager import PluginManager, get_plugin_manager

__all__ = ["JobResult", "TrainJob", "run_training_job", "training_key"]


@dataclass(frozen=True)
class TrainJob:
    """A specific model (``name`` = the symbol) or the universal one (``name`` = ``DEFAULT``)."""

    model_type: str
    name: str
    trained_at: pd.Timestamp
    frames: Mapping[str, pd.DataFrame]
    model: ModelSection
    plugins: PluginsSection = field(default_factory=PluginsSection)
    known_keys: frozenset[str] = frozenset()
    force: bool = False
    extra_plugins: tuple[Any, ...] = ()
    progress: bool = False
    #: the universe's mean forward log return by date, cut at ``trained_at`` (``model.target: excess``)
    benchmark: pd.Series | None = None

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

    @property
    def reused(self) -> bool:
        return self.onnx_bytes is None


def training_key(model_type: str, name: str, config_hash: str, fingerprints: Mapping[str, str]) -> str:
    """Identity of a training: same type, name, config, features and data give the same key."""
    payload = "|".join(
        [model_type, name, config_hash, *(f"{s}={fp}" for s, fp in sorted(fingerprints.items()))]
    )
    return hashlib.sha256(payload.encode()).hexdigest()


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
    ``job.known_keys``."""
    started = time.perf_counter()
    plugins = plugins or _plugins_for(job)
    # the key first (feature names do not depend on how many bars are featurised): a training
    # already registered costs a hash of its bars, not its features and samples
    first = job.frames[min(job.frames)]
    names = [
        str(c) for c in compute_features(first.iloc[-(FEATURE_HISTORY + 2) :], plugins, job.model).columns
    ]
    fingerprints = {symbol: frame_fingerprint(frame) for symbol, frame in job.frames.items()}
    if job.benchmark is not None:  # the excess target's labels depend on the whole universe's bars
        fingerprints["<benchmark>"] = frame_fingerprint(job.benchmark.to_frame())
    config_hash = model_config_hash(job.model, names)
    key = training_key(job.model_type, job.name, config_hash, fingerprints)
    worker = f"{socket.gethostname()}:{os.getpid()}"
    if not job.force and key in job.known_keys:
        return JobResult(job.model_type, job.name, key, None, None, time.perf_counter() - started, worker)
    per_symbol: dict[str, SampleSet] = {}
    for symbol in sorted(job.frames):
        frame = job.frames[symbol]
        features = compute_features(frame, plugins, job.model)
        if [str(c) for c in features.columns] != names:
            raise ModelError(f"lstm_features › the plugins produce different features for {symbol}")
        per_symbol[symbol] = training_samples(frame, features, job.model, job.benchmark)
    samples = per_symbol[job.name] if job.model_type == "specific" else pooled_samples(per_symbol)
    data_end = _day(max(frame.index[-1] for frame in job.frames.values()))
    blob, metadata = _fit_and_export(job, plugins, samples, names, config_hash, key, data_end)
    metadata.update(symbols=sorted(job.frames), worker=worker)
    return JobResult(job.model_type, job.name, key, blob, metadata, time.perf_counter() - started, worker)


def _fit_and_export(
    job: TrainJob,
    plugins: PluginManager,
    samples: SampleSet,
    feature_names: list[str],
    config_hash: str,
    key: str,
    data_end: str,
) -> tuple[bytes, dict[str, Any]]:
    from lstm_plugin.model.ensemble import fit_ensemble
    from lstm_plugin.model.export import export_onnx
    from lstm_plugin.model.fitting import fit_forecaster

    model = job.model

    def build_member(n_features: int, settings: ModelSection) -> Any:
        core = plugins.call_first("lstm_build_model", n_features=n_features, config=settings)
        if core is None:
            raise ModelError("lstm_build_model › no plugin returned a model")
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
    json.dumps(metadata)  # fail here, in the worker, if anything is not plain data
    return blob, metadata


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
