"""Fit a job's network and export it: ONNX bytes, parity-checked, with the version's metadata.

The worker's half of :func:`lstm_plugin.training.jobs.run_training_job` once the samples are built: the
``lstm_build_model`` hook gives the core (told the symbol and its effective settings), the fit loop trains
it, and the export embeds the provenance that every load checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
import pandas as pd

from lstm_plugin.core.config import ModelSection
from lstm_plugin.core.dates import iso_day
from lstm_plugin.core.errors import ModelError
from lstm_plugin.core.statuses import ModelType
from lstm_plugin.core.version import __version__
from lstm_plugin.model.features import CLASSES
from lstm_plugin.model.samples import SampleSet, float32_samples
from lstm_plugin.model.warm_weights import WEIGHTS_PROPERTY, decode_weights, encode_weights
from lstm_plugin.plugins.manager import PluginManager
from lstm_plugin.training.reproducible import kernels_in_use

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class WarmStart(Protocol):
    """The version a warm start begins from (:class:`lstm_plugin.training.jobs.ParentVersion`)."""

    @property
    def weights(self) -> str: ...

    def provenance(self) -> dict[str, Any]: ...


class FitJob(Protocol):
    """What the fit and the export read of a job (:class:`lstm_plugin.training.jobs.TrainJob` is one):
    named here, so this module needs nothing of the module that calls it."""

    @property
    def model_type(self) -> ModelType: ...
    @property
    def name(self) -> str: ...
    @property
    def trained_at(self) -> pd.Timestamp: ...
    @property
    def model(self) -> ModelSection: ...
    @property
    def progress(self) -> bool: ...
    @property
    def label(self) -> str: ...
    @property
    def tuning(self) -> Mapping[str, Any] | None: ...
    @property
    def parent(self) -> WarmStart | None: ...


def core_builder(job: FitJob, plugins: PluginManager) -> Callable[[int, ModelSection], Any]:
    """``build(n_features, settings)``: the network core the ``lstm_build_model`` hook gives for ``job``'s
    symbol (or the universal model), checked to be a ``torch.nn.Module`` with weights."""

    def build(n_features: int, settings: ModelSection) -> Any:
        import torch

        name, core = plugins.call_first_named(
            "lstm_build_model",
            n_features=n_features,
            config=settings,
            symbol=job.name,
            model_type=job.model_type,
        )
        if core is None:
            raise ModelError("lstm_build_model › no plugin returned a model")
        if not isinstance(core, torch.nn.Module) or not any(True for _ in core.parameters()):
            kind = "module without weights" if isinstance(core, torch.nn.Module) else type(core).__name__
            raise ModelError(f"plugin {name!r} › lstm_build_model › returned a {kind}, not a torch.nn.Module")
        return core

    return build


def fit_and_export(
    job: FitJob,
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
    from lstm_plugin.model.network import Forecaster

    model = job.model
    build_member = core_builder(job, plugins)

    def build_core(n_features: int) -> Any:
        return build_member(n_features, model)

    if model.ensemble:
        result = fit_ensemble(samples, model, build_member, progress=job.progress, label=job.label)
    else:
        initial = None if job.parent is None else decode_weights(job.parent.weights)
        result = fit_forecaster(
            samples, model, build_core, progress=job.progress, label=job.label, initial=initial
        )
    forecaster = result.forecaster
    metadata = _training_metadata(job, result, feature_names, config_hash, key, data_end)
    # provenance inside the file itself, checked on every load (lstm_plugin.model.model_files)
    embedded: dict[str, Any] = {
        k: metadata[k]
        for k in ("trained_at", "data_end", "features", "window", "horizon", "classes", "scaler")
    }
    embedded.update(model_type=job.model_type, symbol=job.name, training_key=key)
    if model.warm_start and isinstance(forecaster, Forecaster):  # what the next retrain starts from
        embedded[WEIGHTS_PROPERTY] = encode_weights(forecaster.core.state_dict())
    parity_windows = samples.windows[-64:] if len(samples) >= 2 else samples.windows
    blob = export_onnx(forecaster, np.ascontiguousarray(parity_windows), embedded, exporter=model.exporter)
    verify_onnx(blob, model.window, len(feature_names))  # here, in the worker: the driver only publishes
    json.dumps(metadata)  # fail here, in the worker, if anything is not plain data
    return blob, metadata, None if result.test is None else float32_samples(result.test)


def _training_metadata(
    job: FitJob, result: Any, feature_names: list[str], config_hash: str, key: str, data_end: str
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
        "train_start": iso_day(result.train_start),
        "train_end": iso_day(result.train_end),
        "data_end": data_end,
        "horizon": model.horizon,
        "window": model.window,
        "direction_threshold": model.direction_threshold,
        "classes": list(CLASSES),
        "features": feature_names,
        "config_hash": config_hash,
        "training_key": key,
        "model_config": model.model_dump(mode="json"),
        "tuning": None if job.tuning is None else dict(job.tuning),
        "parent": None
        if job.parent is None
        else {**job.parent.provenance(), "warm": bool(getattr(result, "warm", False))},
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
            "torch": str(torch.__version__),  # a plain str: its own class would import torch where it arrives
            "onnx": onnx.__version__,
            "onnxruntime": onnxruntime.__version__,
            "opset": opset_for(model.exporter),
            "exporter": model.exporter,
        },
    }
    return metadata
