"""The model lifecycle for one job: data up to the training time -> features -> fit -> ONNX -> registry.

A training at time T reads only bars dated <= T (``lookback_years`` of them) and only samples whose
label is known by T; the registered model is stamped ``trained_at = T``. An identical training —
same model type and name, same data (by content hash), same config and features — is found in the
registry and reused instead of repeated.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import __version__
from .clock import Clock, SystemClock, as_timestamp
from .config import Config, model_config_hash
from .data import DataSource, frame_fingerprint, validate_symbol
from .errors import InsufficientDataError, ModelError
from .features import CLASSES
from .plugins import PluginManager, get_plugin_manager
from .registry import UNIVERSAL_NAME, ModelRecord, ModelRegistry
from .samples import SampleSet, compute_features, pooled_samples, training_samples

logger = logging.getLogger(__name__)

__all__ = ["TrainOutcome", "ModelTrainer"]


@dataclass(frozen=True)
class TrainOutcome:
    """What one training job produced: the registered record and whether it was reused."""

    record: ModelRecord
    reused: bool
    seconds: float

    def summary(self) -> dict[str, Any]:
        meta = self.record.metadata
        return {
            "status": "reused" if self.reused else "trained",
            "model_type": self.record.model_type,
            "model_version": self.record.version,
            "trained_at": meta["trained_at"],
            "train_start": meta.get("train_start"),
            "train_end": meta.get("train_end"),
            "metrics": meta.get("metrics", {}),
            "seconds": round(self.seconds, 3),
            "path": str(self.record.onnx_path),
        }


def _day(value: Any) -> str:
    return pd.Timestamp(value).isoformat()


class ModelTrainer:
    """Trains, exports and registers models; stateless between jobs, safe to share between threads."""

    def __init__(
        self,
        config: Config,
        source: DataSource,
        registry: ModelRegistry,
        plugins: PluginManager | None = None,
        clock: Clock | None = None,
        progress: bool = True,
    ) -> None:
        self.config = config
        self.source = source
        self.registry = registry
        self.plugins = plugins or get_plugin_manager(config.plugins)
        self.clock = clock or SystemClock()
        self.progress = progress

    # ------------------------------------------------------------------ helpers
    def _history(self, symbol: str, trained_at: pd.Timestamp) -> pd.DataFrame:
        frame = self.source.load(symbol, end=trained_at)
        if frame.empty:
            raise InsufficientDataError(f"{symbol} › no bars at or before {trained_at:%Y-%m-%d}")
        years = self.config.model.lookback_years
        whole, months = int(years), int(round((years % 1) * 12))
        start = frame.index[-1] - pd.DateOffset(years=whole, months=months)
        return frame.loc[start:]

    def _features(self, frame: pd.DataFrame) -> pd.DataFrame:
        return compute_features(frame, self.plugins, self.config.model)

    def _build_core(self, n_features: int) -> Any:
        core = self.plugins.call_first("lstm_build_model", n_features=n_features, config=self.config.model)
        if core is None:
            raise ModelError("lstm_build_model › no plugin returned a model")
        return core

    def _training_key(self, model_type: str, name: str, config_hash: str, fingerprints: dict[str, str]) -> str:
        payload = "|".join([model_type, name, config_hash, *(f"{s}={fp}" for s, fp in sorted(fingerprints.items()))])
        return hashlib.sha256(payload.encode()).hexdigest()

    def _reusable(self, model_type: str, name: str, key: str, trained_at: pd.Timestamp) -> ModelRecord | None:
        record = self.registry.find_training(model_type, name, key)
        return record if record is not None and record.trained_at <= trained_at else None

    # ------------------------------------------------------------------ jobs
    def train_specific(self, symbol: str, as_of: Any = None, force: bool = False) -> TrainOutcome:
        """Train (or reuse) ``symbol``'s own model as of ``as_of`` (default: the clock's now)."""
        started = time.perf_counter()
        symbol = validate_symbol(symbol)
        trained_at = as_timestamp(as_of) if as_of is not None else self.clock.now()
        frame = self._history(symbol, trained_at)
        features = self._features(frame)
        names = [str(c) for c in features.columns]
        config_hash = model_config_hash(self.config.model, names)
        key = self._training_key("specific", symbol, config_hash, {symbol: frame_fingerprint(frame)})
        if not force and (record := self._reusable("specific", symbol, key, trained_at)) is not None:
            logger.info("%s: identical training found (%s); reused", symbol, record.label)
            return TrainOutcome(record, True, time.perf_counter() - started)
        samples = training_samples(frame, features, self.config.model)
        record = self._fit_and_publish(
            "specific", symbol, samples, names, trained_at, config_hash, key,
            {"data_end": _day(frame.index[-1]), "symbols": [symbol]},
        )
        return TrainOutcome(record, False, time.perf_counter() - started)

    def train_universal(self, symbols: Iterable[str] | None = None, as_of: Any = None, force: bool = False) -> TrainOutcome:
        """Train (or reuse) the pooled model over ``symbols`` (default: the configured universe)."""
        started = time.perf_counter()
        chosen = sorted({validate_symbol(s) for s in (symbols or self.config.data.symbols or self.source.symbols())})
        trained_at = as_timestamp(as_of) if as_of is not None else self.clock.now()
        frames, fingerprints, per_symbol, names = {}, {}, {}, None
        for symbol in chosen:
            try:
                frames[symbol] = self._history(symbol, trained_at)
            except InsufficientDataError:
                logger.info("universal model: %s has no bars by %s; left out", symbol, trained_at)
                continue
            features = self._features(frames[symbol])
            names = [str(c) for c in features.columns]
            fingerprints[symbol] = frame_fingerprint(frames[symbol])
            per_symbol[symbol] = training_samples(frames[symbol], features, self.config.model)
        if names is None:
            raise InsufficientDataError(f"universal model › no symbol has bars at or before {trained_at:%Y-%m-%d}")
        config_hash = model_config_hash(self.config.model, names)
        key = self._training_key("universal", UNIVERSAL_NAME, config_hash, fingerprints)
        if not force and (record := self._reusable("universal", UNIVERSAL_NAME, key, trained_at)) is not None:
            return TrainOutcome(record, True, time.perf_counter() - started)
        samples = pooled_samples(per_symbol)
        data_end = max(f.index[-1] for f in frames.values())
        record = self._fit_and_publish(
            "universal", UNIVERSAL_NAME, samples, names, trained_at, config_hash, key,
            {"data_end": _day(data_end), "symbols": sorted(frames)},
        )
        return TrainOutcome(record, False, time.perf_counter() - started)

    def _fit_and_publish(
        self,
        model_type: str,
        name: str,
        samples: SampleSet,
        feature_names: list[str],
        trained_at: pd.Timestamp,
        config_hash: str,
        training_key: str,
        extra: dict[str, Any],
    ) -> ModelRecord:
        import onnx
        import onnxruntime
        import torch

        from .export import export_onnx, opset_for
        from .training import fit_forecaster

        model = self.config.model
        label = f"{model_type} {name} @ {trained_at:%Y-%m-%d}"
        result = fit_forecaster(samples, model, self._build_core, progress=self.progress, label=label)
        forecaster = result.forecaster
        metadata: dict[str, Any] = {
            "trained_at": trained_at.isoformat(),
            "created_at": pd.Timestamp.now(tz="UTC").isoformat(),
            "train_start": _day(result.train_start),
            "train_end": _day(result.train_end),
            "horizon": model.horizon,
            "window": model.window,
            "direction_threshold": model.direction_threshold,
            "classes": list(CLASSES),
            "features": feature_names,
            "config_hash": config_hash,
            "training_key": training_key,
            "model_config": model.model_dump(mode="json"),
            "metrics": result.metrics,
            "training_device": result.device,
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
            **extra,
        }
        embedded = {k: metadata[k] for k in ("trained_at", "features", "window", "horizon", "classes", "scaler")}
        embedded.update(model_type=model_type, symbol=name, training_key=training_key)
        parity_windows = samples.windows[-64:] if len(samples) >= 2 else samples.windows
        blob = export_onnx(forecaster, np.ascontiguousarray(parity_windows), embedded, exporter=model.exporter)
        return self.registry.publish(model_type, name, blob, metadata)
