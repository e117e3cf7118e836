"""Forecasts and model statuses as the documented dicts (README, *Python*), with a TTL cache on the clock.

A forecast at clock time t uses bars dated <= t and the newest model version trained at or before t: the
symbol's own (``model_type: 'specific'``) or else the pooled ``universal`` one. Every failure is a
status, never an exception: ``not_available`` (no model), ``stale`` (the model was trained more than
``lstm.max_model_age_days`` ago), ``insufficient_data`` (no or too few bars), ``error`` (a data file that
is malformed, or a model that cannot serve these features; the message names the file and line or the
model). Each successful forecast is kept in the registry's track record (docs/dashboard.md).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from lstm_plugin.core.clock import Clock, default_clock, resolve_as_of
from lstm_plugin.core.config import Config
from lstm_plugin.core.data import DataSource, clean_ohlcv, validate_symbol
from lstm_plugin.core.errors import (
    BrokenModelError,
    DataError,
    InsufficientDataError,
    LSTMPluginError,
    ModelError,
)
from lstm_plugin.core.statuses import ModelStatus, PredictionStatus
from lstm_plugin.model.samples import latest_window
from lstm_plugin.plugins.manager import PluginManager, get_plugin_manager
from lstm_plugin.serving.freshness import retrain_due
from lstm_plugin.serving.inference import OnnxRunner
from lstm_plugin.serving.live_scores import LiveScore, LiveScores, degradation
from lstm_plugin.serving.prediction_rows import row_prediction, served_fields
from lstm_plugin.serving.registry import UNIVERSAL_NAME, ModelRecord, ModelRegistry
from lstm_plugin.serving.results import ModelStatusReport, Prediction, candidate_model
from lstm_plugin.serving.track_record import TrackRecordWriter, track_rows
from lstm_plugin.serving.trained_settings import trained_settings
from lstm_plugin.serving.tuned import TunedStore, tuning_of

logger = logging.getLogger(__name__)

__all__ = [
    "ForecastService",
    "ModelStatusReport",
    "Prediction",
    "data_failure",
    "empty_prediction",
    "success_prediction",
]

TrainingState = Callable[[str], "ModelStatus | None"]
DAY_NS = 86_400_000_000_000
#: A window waiting for its model's batch: ``(symbol, record, window, last bar, cache key)``.
Pending = tuple[str, ModelRecord, np.ndarray, pd.Timestamp, tuple[Any, ...]]


def empty_prediction(
    symbol: str, status: PredictionStatus, message: str, record: ModelRecord | None = None
) -> Prediction:
    """A failure dict with every key of a success, so callers can read it the same way."""
    return {
        "symbol": symbol,
        "status": status,
        "message": message,
        "predicted_direction": "neutral",
        "confidence": 0.0,
        "price_change_pct": 0.0,
        "probabilities": None,
        "expected_log_return": None,
        "horizon": record.metadata["horizon"] if record else None,
        "model_type": record.model_type if record else None,
        "model_version": record.version if record else None,
        "reliability": None,
        "quality": None,
        "trained_at": record.metadata["trained_at"] if record else None,
        "as_of": None,
        "cached": False,
        "provider": None,
    }


def registry_name(prediction: Mapping[str, Any]) -> str:
    """The registry name of the model behind a forecast: its symbol, or the universal model's name."""
    return prediction["symbol"] if prediction["model_type"] == "specific" else UNIVERSAL_NAME


def data_failure(exc: DataError) -> PredictionStatus:
    """The status of a forecast whose bars could not be read: too few of them, or a broken file."""
    return "insufficient_data" if isinstance(exc, InsufficientDataError) else "error"


def success_prediction(
    symbol: str,
    record: ModelRecord,
    probabilities: np.ndarray,
    expected: float,
    as_of: pd.Timestamp,
    provider: str | None = None,
) -> Prediction:
    """The forecast of one model output row: the likeliest class, its probability, the expected move."""
    best = int(np.argmax(probabilities))
    row = ([float(p) for p in probabilities], float(expected), best, as_of.isoformat())
    return row_prediction(symbol, served_fields(record), row, provider)


class ForecastService:
    """``get_lstm_prediction``, batched ``predict_many`` and ``get_model_status`` over a registry.

    ``confidence`` is the probability of the predicted class; ``price_change_pct`` is the expected
    move over ``horizon`` bars, ``100 * (exp(expected_log_return) - 1)``. Predictions are cached
    for ``lstm.prediction_cache_ttl`` seconds of the clock, keyed by symbol, model version and last
    bar; ``force_refresh=True`` bypasses the cache.
    """

    def __init__(
        self,
        config: Config,
        registry: ModelRegistry,
        source: DataSource | None = None,
        clock: Clock | None = None,
        runner: OnnxRunner | None = None,
        plugins: PluginManager | None = None,
        training_state: TrainingState | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.source = source
        self.clock = clock or default_clock(source)
        self.runner = runner or OnnxRunner(
            config.inference.device, config.inference.intra_op_threads, config.inference.session_cache_mb
        )
        self.plugins = plugins or get_plugin_manager(config.plugins)
        self.training_state = training_state or (lambda symbol: None)
        self._cache: dict[tuple[Any, ...], tuple[pd.Timestamp, Prediction]] = {}
        self._serving: dict[tuple[str, str], tuple[Any, ...]] = {}  # each model's version last served
        self.seconds = 0.0  # spent in predict_many: what serving costs a run (benchmarks/bench_backtest.py)
        self._lock = threading.Lock()
        self.live = LiveScores()  # every served forecast, scored as outcomes become known (in this process)
        self.tuned = TunedStore(registry.root)  # the settings tunings chose (docs/tuning.md)
        self.track = TrackRecordWriter(registry.root)  # served forecasts, for tools (docs/dashboard.md)

    # ------------------------------------------------------------------ models
    def resolve_model(self, symbol: str, as_of: pd.Timestamp | None = None) -> ModelRecord | None:
        """The symbol's own newest model at ``as_of`` (default: now), else the universal one, else
        ``None``."""
        when = self.clock.now() if as_of is None else as_of
        return self.registry.resolve("specific", symbol, when) or self.registry.resolve(
            "universal", UNIVERSAL_NAME, when
        )

    def get_model_status(self, symbol: str) -> ModelStatusReport:
        """The symbol's own model: ``not_available | stale | outdated | ready | scheduled | training``.

        A model is ``outdated`` once older than ``lstm.force_retrain_days`` on the clock, ``stale`` once
        older than ``lstm.max_model_age_days`` (its forecasts are refused).
        ``served_by`` says which model would answer a forecast now (``universal`` when only the
        pooled model exists). ``candidate`` describes a newer model that was trained but kept
        from serving by ``retraining.min_reliability_for_update`` (else ``None``).
        """
        symbol = validate_symbol(symbol)
        now = self.clock.now()
        own, newest = self.registry.resolve_with_candidate("specific", symbol, now)
        fallback = own or self.registry.resolve("universal", UNIVERSAL_NAME, now)
        state = self.training_state(symbol)
        metrics = own.metadata.get("metrics", {}) if own is not None else {}
        live, degraded = self.live_health(own, now)
        status: ModelStatusReport = {
            "symbol": symbol,
            "status": "not_available",
            "model_type": None if own is None else "specific",
            "model_version": None if own is None else own.version,
            "reliability": metrics.get("reliability"),
            "quality": metrics.get("quality"),
            "ic": metrics.get("ic"),
            "trained_at": None if own is None else own.metadata["trained_at"],
            "age_days": None if own is None else round((now - own.trained_at) / pd.Timedelta(days=1), 3),
            "served_by": fallback.model_type if fallback else None,
            "candidate": candidate_model(newest),
            "live": live,
            "degraded": degraded,
            "provider": self.runner.provider,
            "tuning": tuning_of(own),
            "tuned": self.tuned.provenance_at("specific", symbol, now),
        }
        if own is not None:
            due = retrain_due(own.trained_at, now, self.config.lstm.force_retrain_days)
            limit = self.config.lstm.max_model_age_days
            stale = limit is not None and status["age_days"] is not None and status["age_days"] > limit
            status["status"] = "stale" if stale else "outdated" if due else "ready"
        if state in ("scheduled", "training"):
            status["status"] = state
        return status

    def live_health(
        self, record: ModelRecord | None, now: pd.Timestamp | None = None
    ) -> tuple[LiveScore | None, str | None]:
        """A model's live figures on the outcomes known at ``now`` (default: the clock's now), and why it
        is degraded (``None`` when it is not, or when ``retraining.on_degradation`` is off)."""
        if record is None or self.source is None:
            return None, None
        when = self.clock.now() if now is None else now
        source = self.source
        live = self.live.score(
            (record.model_type, record.symbol, record.version),
            lambda symbol: source.load(symbol, end=when)["close"],
            record.metadata.get("metrics", {}),
        )
        settings = self.config.lstm_service.retraining
        if not settings.on_degradation:
            return live, None
        return live, degradation(live, settings.degradation_margin, settings.degradation_min_outcomes)

    # ------------------------------------------------------------------ forecasts
    def get_lstm_prediction(
        self, symbol: str, data: pd.DataFrame | None = None, force_refresh: bool = False, as_of: Any = None
    ) -> Prediction:
        """One symbol's forecast dict. ``data`` overrides the data source for this call."""
        frames = None if data is None else {symbol: data}
        return next(iter(self.predict_many([symbol], frames, force_refresh, as_of).values()))

    def predict_many(
        self,
        symbols: Iterable[str],
        data: Mapping[str, pd.DataFrame] | None = None,
        force_refresh: bool = False,
        as_of: Any = None,
    ) -> dict[str, Prediction]:
        """Forecasts for many symbols with one onnxruntime call per model version in use.

        ``as_of`` (default: the clock's now) picks the bars and the model; it may not be later
        than the clock's now, which would read the future. A version onnxruntime cannot load or
        run, or whose output is not finite, is set aside with a warning and the previous one answers.
        """
        started = time.perf_counter()
        results = self._predict(list(symbols), data, force_refresh, as_of)
        self.live.record(results.values(), registry_name)
        self.track.add(track_rows(results.values(), self.registry.records, registry_name))
        with self._lock:
            self.seconds += time.perf_counter() - started
        return results

    def _predict(
        self,
        symbols: list[str],
        data: Mapping[str, pd.DataFrame] | None,
        force_refresh: bool,
        as_of: Any,
    ) -> dict[str, Prediction]:
        """:meth:`predict_many` before its forecasts are recorded."""
        now = self.clock.now()
        ttl = pd.Timedelta(seconds=self.config.lstm.prediction_cache_ttl)
        when = resolve_as_of(as_of, now)
        results: dict[str, Prediction] = {}
        pending: dict[tuple[Any, ...], list[Pending]] = {}
        order: list[str] = []
        for requested in symbols:
            symbol, record = self._model_for(requested, when, order, results)
            if record is None:
                continue
            try:
                bars = self._bars(
                    symbol, None if data is None else data.get(requested, data.get(symbol)), when
                )
            except DataError as exc:
                results[symbol] = empty_prediction(symbol, data_failure(exc), str(exc), record)
                continue
            last_bar = bars.index[-1]
            cache_key = (symbol, record.key, last_bar)
            if not force_refresh and ttl > pd.Timedelta(0):
                with self._lock:
                    hit = self._cache.get(cache_key)
                if hit is not None and now - hit[0] < ttl:
                    results[symbol] = hit[1].copy()
                    results[symbol]["cached"] = True
                    continue
            try:
                window = latest_window(
                    bars,
                    self.plugins,
                    trained_settings(record, self.config.model),
                    list(record.metadata["features"]),
                    int(record.metadata["window"]),
                    symbol,
                )
            except DataError as exc:
                results[symbol] = empty_prediction(symbol, data_failure(exc), str(exc), record)
                continue
            except ModelError as exc:
                results[symbol] = empty_prediction(symbol, "error", str(exc), record)
                continue
            pending.setdefault(record.key, []).append((symbol, record, window, last_bar, cache_key))

        retry = self._run_batches(pending, results, now, ttl)
        if retry:  # their versions were set aside: the previous ones answer
            results.update(self._predict(retry, data, force_refresh, as_of))
        return {symbol: results[symbol] for symbol in order}

    def _run_batches(
        self,
        pending: dict[tuple[Any, ...], list[Pending]],
        results: dict[str, Prediction],
        now: pd.Timestamp,
        ttl: pd.Timedelta,
    ) -> list[str]:
        """One onnxruntime call per model version for the windows waiting on it; results are cached.
        Returns the symbols to ask again: their version was set aside (:meth:`set_aside`)."""
        retry: list[str] = []
        for items in pending.values():
            record = items[0][1]
            try:
                probabilities, expected = self.runner.run(record, np.concatenate([item[2] for item in items]))
            except BrokenModelError as exc:
                self.set_aside(record, exc)
                retry.extend(symbol for symbol, *_ in items)
                continue
            except ModelError as exc:
                for symbol, *_ in items:
                    results[symbol] = empty_prediction(symbol, "error", str(exc), record)
                continue
            for row, (symbol, _, _, last_bar, cache_key) in enumerate(items):
                prediction = success_prediction(
                    symbol, record, probabilities[row], float(expected[row]), last_bar, self.runner.provider
                )
                results[symbol] = prediction
                self._remember(cache_key, now, ttl, prediction)
        return retry

    def set_aside(self, record: ModelRecord, exc: BrokenModelError) -> None:
        """``record`` cannot serve: warned once, and never asked again in this process; the previous
        version of its model (or the universal one) answers from now on."""
        self.registry.set_aside(record, str(exc))

    def _model_for(
        self, requested: str, when: pd.Timestamp, order: list[str], results: dict[str, Prediction]
    ) -> tuple[str, ModelRecord | None]:
        """The canonical symbol and the model serving it at ``when``; on failure the failure is put
        in ``results`` and the record is ``None``. The symbol joins ``order`` either way."""
        try:
            symbol = validate_symbol(requested)
        except LSTMPluginError as exc:
            order.append(str(requested))
            results[str(requested)] = empty_prediction(str(requested), "error", str(exc))
            return str(requested), None
        order.append(symbol)
        record = self.resolve_model(symbol, when)
        if record is None:
            results[symbol] = empty_prediction(
                symbol, "not_available", f"no model for {symbol} trained by {when:%Y-%m-%d}"
            )
            return symbol, None
        age = (when.value - record.trained_at.value) / DAY_NS  # what (when - trained_at) / 1 day gives
        limit = self.config.lstm.max_model_age_days
        if limit is not None and age > limit:
            message = f"{record.label} was trained {age:.0f} days ago, over lstm.max_model_age_days ({limit})"
            results[symbol] = empty_prediction(symbol, "stale", message, record)
            return symbol, None
        self._serve(record)
        return symbol, record

    def _serve(self, record: ModelRecord) -> None:
        """``record`` serves its model from now on: the version it replaces is released (its session, and
        what was kept for it), since a run moving forward never asks for it again (if asked, it loads
        again, with the same answers)."""
        name, key = (record.model_type, record.symbol), record.key
        if self._serving.get(name) == key:  # the common case: it served the last bar too
            return
        with self._lock:
            replaced = self._serving.get(name)
            self._serving[name] = key
        if replaced is not None and replaced != key:
            self._release(replaced)

    def _release(self, key: tuple[Any, ...]) -> None:
        self.runner.release(key)

    def _remember(
        self, key: tuple[Any, ...], now: pd.Timestamp, ttl: pd.Timedelta, prediction: Prediction
    ) -> None:
        with self._lock:
            if len(self._cache) > 10_000:  # long runs: forget what has expired
                self._cache = {k: v for k, v in self._cache.items() if now - v[0] < ttl}
            self._cache[key] = (now, prediction.copy())

    def _bars(self, symbol: str, frame: pd.DataFrame | None, now: pd.Timestamp) -> pd.DataFrame:
        if frame is not None:
            bars = clean_ohlcv(frame, source=f"DataFrame[{symbol}]").loc[:now]
        elif self.source is None:
            raise InsufficientDataError(f"{symbol} › no data source configured and no data given")
        else:
            bars = self.source.load(symbol, end=now)
        if bars.empty:
            raise InsufficientDataError(f"{symbol} › no bars at or before {now:%Y-%m-%d}")
        return bars

    def clear_cache(self) -> None:
        with self._lock:
            self._cache.clear()
