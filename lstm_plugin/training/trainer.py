"""The driver side of training: prepare a job from the data source, publish its result to the registry.

A training at time T reads only bars dated <= T (``lookback_years`` of them) and only samples whose
label is known by T; the registered model is stamped ``trained_at = T``. An identical training —
same model type and name, same data (by content hash), same config and features — is found in the
registry and reused instead of repeated.

Publishing applies the retraining policy: a new model worse than the one served beyond the noise — both
scored on the same bars, the new model's held-out test segment after the served model's training
segment — or below ``lstm_service.retraining.min_reliability_for_update``, is registered as a
``candidate``: shelved, kept and reported, never served (``lstm-plugin promote`` serves it by hand).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lstm_plugin.core.clock import Clock, as_timestamp, default_clock
from lstm_plugin.core.config import Config, ModelSection
from lstm_plugin.core.data import DataSource, validate_symbol
from lstm_plugin.core.errors import BrokenModelError, InsufficientDataError, RegistryError
from lstm_plugin.core.statuses import ModelType, OutcomeSummary, TrainStatus
from lstm_plugin.model.metrics import paired_accuracy_gap
from lstm_plugin.model.model_files import INPUT_NAME, OUTPUT_NAMES
from lstm_plugin.model.onnx_wire import read_signature
from lstm_plugin.model.samples import SampleSet, universe_forward_mean
from lstm_plugin.model.sessions import open_session, run_in_blocks
from lstm_plugin.model.warm_weights import WEIGHTS_PROPERTY
from lstm_plugin.model.window_rows import WindowRows
from lstm_plugin.plugins.manager import PluginManager, get_plugin_manager, training_plugins
from lstm_plugin.serving.inference import CPU, OnnxRunner
from lstm_plugin.serving.registry import UNIVERSAL_NAME, ModelRecord, ModelRegistry
from lstm_plugin.serving.run_registry import RunRegistry
from lstm_plugin.serving.tuned import TunedStore
from lstm_plugin.training.history import symbol_history, training_frames
from lstm_plugin.training.jobs import (
    JobResult,
    ParentVersion,
    TrainJob,
    held_out_samples,
    run_training_job,
)
from lstm_plugin.training.policy import Promotion, promotion_decision

logger = logging.getLogger(__name__)

__all__ = ["ModelTrainer", "TrainOutcome", "unseen_by"]


@dataclass(frozen=True)
class TrainOutcome:
    """What one training job produced: the registered record, whether it was reused, and how long it took."""

    record: ModelRecord
    reused: bool
    seconds: float
    #: whether this training's stage was decided now (a new model, or another run's adopted), not reused
    decided: bool = False

    @property
    def status(self) -> TrainStatus:
        """``reused``, ``candidate`` (shelved: registered, not served) or ``trained`` (promoted)."""
        if self.reused:
            return "reused"
        return "candidate" if self.record.stage == "candidate" else "trained"

    def summary(self) -> OutcomeSummary:
        meta = self.record.metadata
        return {
            "status": self.status,
            "stage": self.record.stage,
            "stage_reason": meta.get("stage_reason"),
            "stage_rule": meta.get("stage_rule"),
            "decided": self.decided,
            "model_type": self.record.model_type,
            "model_version": self.record.version,
            "trained_at": meta["trained_at"],
            "train_start": meta.get("train_start"),
            "train_end": meta.get("train_end"),
            "metrics": meta.get("metrics", {}),
            "symbols": meta.get("symbols"),
            "seconds": round(self.seconds, 3),
            "path": str(self.record.onnx_path),
        }


#: sessions the promotion's scoring keeps, in MiB (about ten default models)
PROMOTION_CACHE_MB = 4.0


class ModelTrainer:
    """Prepares jobs, runs them in the caller when asked, and publishes results; safe to share between
    threads."""

    def __init__(
        self,
        config: Config,
        source: DataSource,
        registry: ModelRegistry,
        plugins: PluginManager | None = None,
        clock: Clock | None = None,
        progress: bool = True,
        extra_plugins: Iterable[Any] = (),
        by_path: bool = True,
    ) -> None:
        self.config = config
        self.source = source
        self.registry = registry
        extra = tuple(extra_plugins)
        self.plugins = plugins or get_plugin_manager(config.plugins, list(extra))
        self.extra_plugins = training_plugins(extra)  # what travels with each job
        self.clock = clock or default_clock(source)
        self.progress = progress
        #: a source that travels by path goes with each job instead of its bars (off for workers on
        #: other machines: ``Backend.by_path``)
        self.by_path = by_path
        self._onnx: OnnxRunner | None = None
        self.tuned = TunedStore(registry.root)

    # ------------------------------------------------------------------ preparing
    def _history(self, symbol: str, trained_at: pd.Timestamp) -> pd.DataFrame:
        return symbol_history(self.source, symbol, trained_at, self.config.model.lookback_years)

    def _when(self, as_of: Any) -> pd.Timestamp:
        return as_timestamp(as_of) if as_of is not None else self.clock.now()

    def _known(
        self, model_type: ModelType, name: str, trained_at: pd.Timestamp
    ) -> tuple[frozenset[str], bool]:
        """The training keys registered by ``trained_at``, and whether one was trained at that very time."""
        return self.registry.training_keys(model_type, name, trained_at)

    def _job(
        self,
        model_type: ModelType,
        name: str,
        symbols: list[str],
        trained_at: pd.Timestamp,
        force: bool,
        tuned: bool = True,
    ) -> TrainJob:
        """The job, on the model's tuned settings as of ``trained_at`` (``tuned``) or the config's; a source
        that travels by path (a folder of files) goes instead of the bars, and the worker reads and cuts
        its own: the driver's work per job stays a registry lookup."""
        self.registry.check_folder(model_type, name)  # a link in the way fails now, not after the training
        choice = self.tuned.at(model_type, name, trained_at) if tuned else None
        model = self.config.model if choice is None else choice.settings(self.config.model)
        benchmark = self.benchmark(trained_at) if model.target == "excess" else None
        by_path = self.source.by_path and self.by_path
        known_keys, rerun = self._known(model_type, name, trained_at)
        return TrainJob(
            model_type=model_type,
            name=name,
            trained_at=trained_at,
            frames=None if by_path else self._frames(model_type, symbols, trained_at),
            source=self.source if by_path else None,
            symbols=tuple(symbols),
            model=model,
            tuning=None if choice is None else choice.provenance(),
            parent=self._parent(model, model_type, name, trained_at),
            plugins=self.config.plugins,
            known_keys=known_keys,
            rerun=rerun,
            force=force,
            extra_plugins=self.extra_plugins,
            progress=self.progress,
            benchmark=benchmark,
        )

    def _parent(
        self, model: ModelSection, model_type: ModelType, name: str, trained_at: pd.Timestamp
    ) -> ParentVersion | None:
        """The version served just before ``trained_at`` when it kept its weights (``model.warm_start``); a
        warm start begins from it. Strictly before: a run again over the registry finds this very training
        at ``trained_at``, and must begin from what the first run began from."""
        if not model.warm_start or model.ensemble:
            return None
        served = self.registry.resolve(model_type, name, trained_at - pd.Timedelta(microseconds=1))
        if served is None:
            return None
        try:
            weights = read_signature(served.read_bytes()).properties.get(WEIGHTS_PROPERTY)
        except (OSError, ValueError, RegistryError) as exc:
            logger.warning("%s: no warm start from %s: %s", name, served.label, exc)
            return None
        if weights is None:
            return None
        return ParentVersion(served.version, str(served.metadata["sha256"]), weights)

    def _frames(
        self, model_type: ModelType, symbols: list[str], trained_at: pd.Timestamp
    ) -> dict[str, pd.DataFrame]:
        return training_frames(self.source, model_type, symbols, trained_at, self.config.model.lookback_years)

    def benchmark(self, trained_at: pd.Timestamp) -> pd.Series:
        """The universe's mean forward log return by date from bars ≤ ``trained_at`` (the excess target's
        benchmark; labels past ``trained_at`` stay unknown)."""
        closes = {}
        for symbol in self.universe():
            try:
                closes[symbol] = self._history(symbol, trained_at)["close"]
            except InsufficientDataError:
                continue
        return universe_forward_mean(closes, self.config.model.horizon)

    def prepare_specific(
        self, symbol: str, as_of: Any = None, force: bool = False, tuned: bool = True
    ) -> TrainJob:
        """The job for ``symbol``'s own model as of ``as_of`` (default: the clock's now), on its tuned
        settings unless ``tuned`` is off."""
        symbol = validate_symbol(symbol)
        return self._job("specific", symbol, [symbol], self._when(as_of), force, tuned)

    def universe(self, symbols: Iterable[str] | None = None) -> list[str]:
        """The symbols a universal model pools: ``symbols``, else the config's, else the data source's."""
        chosen = (
            symbols
            or self.config.lstm_service.universal.symbols
            or self.config.data.symbols
            or self.source.symbols()
        )
        return sorted({validate_symbol(s) for s in chosen})

    def prepare_universal(
        self, symbols: Iterable[str] | None = None, as_of: Any = None, force: bool = False, tuned: bool = True
    ) -> TrainJob:
        """The job for the pooled model over ``symbols`` (default: :meth:`universe`); symbols with no bars
        by then are left out."""
        universe = self.universe(symbols)
        return self._job("universal", UNIVERSAL_NAME, universe, self._when(as_of), force, tuned)

    # ------------------------------------------------------------------ publishing
    def publish(self, result: JobResult) -> TrainOutcome:
        """Register a worker's result (verified there; the registry checks its signature against the
        metadata), promoted or shelved as a candidate (:meth:`_promotion`). A reused training is the
        registered version; a run's view (:class:`~lstm_plugin.serving.run_registry.RunRegistry`)
        decides its stage for itself when another run registered it."""
        self.plugins.report(result.plugin_failures, f"in the training of {result.model_type} {result.name}")
        if result.reused:
            record = self.registry.find_training(
                result.model_type, result.name, result.training_key, result.trained_at
            )
            if record is None:
                raise RegistryError(
                    f"{result.model_type}/{result.name} › the reused training is no longer registered"
                )
            return self._reused(record, result.seconds)
        assert result.onnx_bytes is not None and result.metadata is not None
        metadata = dict(result.metadata)
        trained_at = pd.Timestamp(metadata["trained_at"])
        served = self.registry.resolve(result.model_type, result.name, trained_at)
        promotion, basis = self._promotion(metadata, served, lambda: result.test, result.onnx_bytes)
        metadata.update(
            stage=promotion.stage, stage_reason=promotion.reason, stage_rule=promotion.rule, stage_basis=basis
        )
        commit = self.registry.commit(
            result.model_type, result.name, result.onnx_bytes, metadata, unless_registered=not result.force
        )
        if not commit.written:  # another process registered this very training while this one trained
            return self._reused(commit.record, result.seconds)
        if not promotion.promote:
            logger.info("%s kept as a candidate, not served: %s", commit.record.label, promotion.reason)
        return TrainOutcome(commit.record, False, result.seconds, True)

    def _reused(self, record: ModelRecord, seconds: float) -> TrainOutcome:
        """A registered version of the training asked for: the run's own, or adopted with the run's stage."""
        decided = not self.registry.owns(record)
        if decided:
            record = self._adopt(record)
        logger.info("%s: identical training found (%s); reused", record.symbol, record.label)
        return TrainOutcome(record, True, seconds, decided)

    def _adopt(self, record: ModelRecord) -> ModelRecord:
        """Another run's version of this very training, with the stage this run gives it: the one recorded
        when the model served then was the one this run serves, else decided again on its test segment."""
        assert isinstance(self.registry, RunRegistry)
        served = self.registry.resolve(record.model_type, record.symbol, record.trained_at)
        basis: dict[str, Any] = dict(record.metadata.get("stage_basis") or {})
        if basis.get("served_sha256", "") == (None if served is None else served.metadata["sha256"]):
            promotion = Promotion(basis["stage"] == "production", basis["rule"], basis["reason"])
        else:
            symbols = list(record.metadata.get("symbols") or [record.symbol])
            job = self._job(record.model_type, record.symbol, symbols, record.trained_at, False)
            promotion, basis = self._promotion(
                dict(record.metadata), served, lambda: held_out_samples(job, self.plugins), record
            )
        return self.registry.adopt(
            record, promotion.stage, promotion.reason, stage_rule=promotion.rule, stage_basis=basis
        )

    def _promotion(
        self,
        metadata: dict[str, Any],
        served: ModelRecord | None,
        test: Callable[[], SampleSet | None],
        model: bytes | ModelRecord,
    ) -> tuple[Promotion, dict[str, Any]]:
        """The new ``model`` against the one served, both scored on the new model's held-out test segment,
        where the served model never trained either (:func:`unseen_by`; a paired comparison,
        :func:`~lstm_plugin.model.metrics.paired_accuracy_gap`); and that basis
        (``stage_basis``), so a run that serves the same model can take the decision as it is."""
        comparable = served is not None and (
            list(served.metadata["features"]) == list(metadata["features"])
            and int(served.metadata["window"]) == int(metadata["window"])
        )
        samples = unseen_by(served, test()) if comparable else None
        gap = standard_error = None
        if served is not None and samples is not None and len(samples):
            try:
                served_scores = self._score(served, samples.windows)
            except BrokenModelError as exc:  # the served model cannot serve: the one before it is served
                self.registry.set_aside(served, str(exc))
                previous = self.registry.resolve(served.model_type, served.symbol, metadata["trained_at"])
                return self._promotion(metadata, previous, test, model)
            gap, standard_error = paired_accuracy_gap(
                self._score(model, samples.windows), served_scores, samples.returns
            )
        promotion = promotion_decision(
            metadata.get("metrics", {}).get("reliability"),
            served is not None,
            self.config.lstm_service.retraining.min_reliability_for_update,
            gap=gap,
            tolerance=0.0 if standard_error is None else 2.0 * standard_error,
            comparable=comparable,
        )
        basis = {
            "served_sha256": None if served is None else served.metadata["sha256"],
            "accuracy_gap": gap,
            "gap_standard_error": standard_error,
            "stage": promotion.stage,
            "rule": promotion.rule,
            "reason": promotion.reason,
        }
        return promotion, basis

    def _score(self, model: bytes | ModelRecord, windows: np.ndarray | WindowRows) -> np.ndarray:
        """``P(up) − P(down)`` of ``model`` (ONNX bytes or a registered version) on ``windows``."""
        windows = np.asarray(windows)
        if isinstance(model, ModelRecord):
            probabilities = self._runner().run(model, windows)[0]
        else:
            session = open_session(model, 1, [CPU])
            probabilities = run_in_blocks(session, OUTPUT_NAMES[:1], INPUT_NAME, windows)[0]
        return np.asarray(probabilities[:, 2] - probabilities[:, 0])

    def _runner(self) -> OnnxRunner:
        """One CPU thread, as a training has: scoring the served model is small and runs beside workers. A
        small cache: each served version is scored when the next one is decided, then rarely again."""
        if self._onnx is None:
            self._onnx = OnnxRunner("cpu", 1, cache_mb=PROMOTION_CACHE_MB)
        return self._onnx

    # ------------------------------------------------------------------ in the caller
    def run(self, job: TrainJob) -> TrainOutcome:
        """Run ``job`` here and publish it."""
        started = time.perf_counter()
        outcome = self.publish(run_training_job(job, self.plugins))
        return TrainOutcome(outcome.record, outcome.reused, time.perf_counter() - started, outcome.decided)

    def train_specific(self, symbol: str, as_of: Any = None, force: bool = False) -> TrainOutcome:
        """Train (or reuse) ``symbol``'s own model as of ``as_of`` (default: the clock's now)."""
        return self.run(self.prepare_specific(symbol, as_of, force))

    def train_universal(
        self, symbols: Iterable[str] | None = None, as_of: Any = None, force: bool = False
    ) -> TrainOutcome:
        """Train (or reuse) the pooled model over ``symbols`` (default: :meth:`universe`)."""
        return self.run(self.prepare_universal(symbols, as_of, force))


def unseen_by(served: ModelRecord | None, samples: SampleSet | None) -> SampleSet | None:
    """The ``samples`` dated after ``served``'s training segment: out of sample for it too, so an old
    model is not compared on bars it learnt from."""
    if samples is None or served is None or not served.metadata.get("train_end"):
        return samples
    end = np.datetime64(pd.Timestamp(served.metadata["train_end"]).to_datetime64())
    return samples.subset(np.asarray(samples.dates) > end)
