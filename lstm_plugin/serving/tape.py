"""Vectorised forecasts for historical runs: the same answers as per-bar serving, in a few batched calls.

:class:`ForecastTape` is a :class:`~lstm_plugin.serving.forecast.ForecastService` for backtests over a
fixed data set. It featurises each symbol once, over all its bars (features are causal and
start-invariant, so the rows at bar t are the bits a per-bar computation would give), and the
first time a model version answers for a symbol it computes that version's forecasts for every
bar it is expected to serve — from that bar for ``force_retrain_days`` (``universal.retrain_days``
for the universal model) worth of bars — in one onnxruntime call per version, all symbols it
serves stacked. Later bars are looked up; a version that serves longer gets one more call per span.

Honesty does not depend on the batching: each row uses only its own window (bars ≤ its date),
the model is chosen at the asked time (trained at or before it), and onnxruntime computes each row
of a batch independently. The tests check the rows against per-bar calls and that prices after T
do not change one bit of the forecasts dated ≤ T.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from lstm_plugin.core.clock import resolve_as_of
from lstm_plugin.core.config import ModelSection
from lstm_plugin.core.errors import BrokenModelError, DataError, LSTMPluginError, ModelError
from lstm_plugin.model.features import FEATURE_HISTORY, make_windows
from lstm_plugin.model.samples import compute_features
from lstm_plugin.serving.forecast import ForecastService, data_failure, empty_prediction
from lstm_plugin.serving.inference import not_finite
from lstm_plugin.serving.prediction_rows import (
    RowAnswer,
    ServedFields,
    batch_rows,
    row_prediction,
    served_fields,
)
from lstm_plugin.serving.registry import ModelRecord
from lstm_plugin.serving.results import Prediction
from lstm_plugin.serving.trained_settings import trained_settings

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

BARS_PER_DAY = 252 / 365.25


@dataclass(frozen=True)
class _SymbolFeatures:
    index: pd.DatetimeIndex
    values: np.ndarray  # (bars, features) float64
    names: tuple[str, ...]
    invalid_before: np.ndarray  # invalid_before[i] = invalid rows among 0..i-1
    #: the bars as int64 nanoseconds: per-bar lookups in numpy, not through pandas
    stamps: np.ndarray = field(init=False)
    #: every bar a whole second without a time zone (daily bars): numpy writes them as isoformat does
    plain: bool = field(init=False)

    def __post_init__(self) -> None:
        stamps = self.index.as_unit("ns").asi8
        object.__setattr__(self, "stamps", stamps)
        object.__setattr__(self, "plain", self.index.tz is None and not (stamps % 1_000_000_000).any())

    def position(self, when: pd.Timestamp) -> int:
        """The last bar at or before ``when`` (-1: none)."""
        return int(np.searchsorted(self.stamps, when.value, side="right")) - 1

    def window_ok(self, end: int, window: int) -> bool:
        start = end - window + 1
        return start >= 0 and self.invalid_before[end + 1] - self.invalid_before[start] == 0

    def iso(self, rows: list[int]) -> list[str]:
        """The bars of ``rows`` as ``Timestamp.isoformat()`` writes them, in one numpy call when they are
        whole seconds without a time zone (daily bars), else one by one."""
        if self.plain:
            seconds = self.stamps[rows].view("datetime64[ns]").astype("datetime64[s]")
            return [str(text) for text in np.datetime_as_string(seconds, unit="s")]
        return [stamp.isoformat() for stamp in self.index[rows]]


#: A symbol's rows waiting for its model's batch: ``(symbol, features, row positions)``.
TapeRows = tuple[str, _SymbolFeatures, list[int]]
#: A forecast asked for: ``(symbol, model, features, row position)``.
Wanted = tuple[str, ModelRecord, _SymbolFeatures, int]


class ForecastTape(ForecastService):
    """Backtest forecasting; see the module docstring. ``predict_many`` with ``data`` falls back
    to per-bar serving (the frames are the caller's, not the tape's)."""

    def __init__(self, *args: Any, growing: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.growing = growing
        #: by symbol and the serving version's settings (plugins' features may depend on them)
        self._features: dict[tuple[str, str], _SymbolFeatures | LSTMPluginError] = {}
        #: by version, then symbol: the answer computed for each row position (``None``: not finite)
        self._rows: dict[tuple[Any, ...], dict[str, dict[int, RowAnswer | None]]] = {}
        self._fields: dict[tuple[Any, ...], ServedFields] = {}  # what each version's forecasts repeat

    def _symbol_features(self, symbol: str, record: ModelRecord) -> _SymbolFeatures:
        key = (symbol, str(record.metadata.get("config_hash")))
        cached = self._features.get(key)
        if cached is not None and not (self.growing and self.source is not None):
            if isinstance(cached, LSTMPluginError):
                raise cached
            return cached
        try:
            if self.source is None:
                raise DataError(f"{symbol} › no data source configured")
            bars = self.source.load(symbol)
            if isinstance(cached, _SymbolFeatures) and len(bars) == len(cached.index):
                return cached
            known = cached if isinstance(cached, _SymbolFeatures) else None
            cached = self._featurise(symbol, bars, trained_settings(record, self.config.model), known)
        except LSTMPluginError as exc:
            self._features[key] = exc
            raise
        self._features[key] = cached
        return cached

    def _featurise(
        self, symbol: str, bars: pd.DataFrame, settings: ModelSection, known: _SymbolFeatures | None
    ) -> _SymbolFeatures:
        """Features of every bar. ``growing``: a source that gains bars while it serves (a paper
        run's bar store) only featurises its new bars, on a tail of ``FEATURE_HISTORY`` bars before
        them — features are start-invariant (:mod:`lstm_plugin.model.features`), so the bits are the same."""
        done = 0
        if (
            known is not None
            and len(known.index) < len(bars)
            and bars.index[len(known.index) - 1] == known.index[-1]
        ):
            done = len(known.index)
        tail = bars.iloc[max(0, done - FEATURE_HISTORY) :]
        frame = compute_features(tail, self.plugins, settings, symbol)
        values = frame.to_numpy(dtype="float64")[len(tail) - (len(bars) - done) :]
        if done and known is not None:
            values = np.concatenate([known.values, values])
        invalid = np.concatenate([[0], np.cumsum(~np.isfinite(values).all(axis=1))])
        return _SymbolFeatures(bars.index, values, tuple(map(str, frame.columns)), invalid)

    def _span(self, record: ModelRecord) -> int:
        """Bars a version is expected to serve before it is retrained."""
        days = (
            self.config.lstm.force_retrain_days
            if record.model_type == "specific"
            else self.config.lstm_service.universal.retrain_days
        )
        return max(1, math.ceil(days * BARS_PER_DAY))

    def _predict(
        self,
        symbols: list[str],
        data: Mapping[str, pd.DataFrame] | None,
        force_refresh: bool,
        as_of: Any,
    ) -> dict[str, Prediction]:
        if data:
            return super()._predict(symbols, data, force_refresh, as_of)
        when = resolve_as_of(as_of, self.clock.now())
        results: dict[str, Prediction] = {}
        wanted: list[Wanted] = []
        pending: dict[tuple[Any, ...], tuple[ModelRecord, list[TapeRows]]] = {}
        order: list[str] = []
        for requested in symbols:
            symbol, record = self._model_for(requested, when, order, results)
            if record is None:
                continue
            try:
                features = self._symbol_features(symbol, record)
            except DataError as exc:
                results[symbol] = empty_prediction(symbol, data_failure(exc), str(exc), record)
                continue
            except LSTMPluginError as exc:
                results[symbol] = empty_prediction(symbol, "error", str(exc), record)
                continue
            expected_names = list(record.metadata["features"])
            if list(features.names) != expected_names:
                message = (
                    f"features › the model expects {', '.join(expected_names)} but the plugins produce "
                    f"{', '.join(features.names)}"
                )
                results[symbol] = empty_prediction(symbol, "error", message, record)
                continue
            window = int(record.metadata["window"])
            position = features.position(when)
            if position < 0 or not features.window_ok(position, window):
                message = f"need {window} bars of valid features at or before {when:%Y-%m-%d}"
                results[symbol] = empty_prediction(symbol, "insufficient_data", message, record)
                continue
            done = self._rows.setdefault(record.key, {}).setdefault(symbol, {})
            if position not in done:
                stop = min(len(features.index), position + self._span(record))
                rows = [p for p in range(position, stop) if p not in done and features.window_ok(p, window)]
                pending.setdefault(record.key, (record, []))[1].append((symbol, features, rows))
            wanted.append((symbol, record, features, position))

        retry = self._run_rows(pending, results)
        retry += self._answer(wanted, results, retry)
        if retry:  # their versions were set aside: the previous ones answer
            results.update(self._predict(retry, None, force_refresh, as_of))
        return {symbol: results[symbol] for symbol in order}

    def _answer(self, wanted: list[Wanted], results: dict[str, Prediction], failed: list[str]) -> list[str]:
        """The forecasts of ``wanted`` rows from the kept ones (not those whose batch ``failed``); returns the
        symbols to ask again: a row that is not finite sets its version aside — only now, at the bar it
        answers for, so a row of a later bar never decides this one."""
        retry: list[str] = []
        for symbol, record, _, position in wanted:
            if symbol in results or symbol in failed:
                continue
            row = self._rows[record.key][symbol][position]
            if row is None:
                self.set_aside(record, BrokenModelError(not_finite(1, 1)))
                retry.append(symbol)
                continue
            results[symbol] = row_prediction(symbol, self._served_fields(record), row, self.runner.provider)
        return retry

    def _served_fields(self, record: ModelRecord) -> ServedFields:
        fields = self._fields.get(record.key)
        if fields is None:
            fields = self._fields[record.key] = served_fields(record)
        return fields

    def _run_rows(
        self,
        pending: dict[tuple[Any, ...], tuple[ModelRecord, list[TapeRows]]],
        results: dict[str, Prediction],
    ) -> list[str]:
        """One onnxruntime call per model version for every row its symbols will need; rows are kept (a
        row that is not finite too: it sets its version aside when its own bar asks for it). Returns the
        symbols whose version could not load or run (set aside now)."""
        retry: list[str] = []
        for record, items in pending.values():
            window = int(record.metadata["window"])
            batch = np.concatenate([make_windows(f.values, np.asarray(rows), window) for _, f, rows in items])
            try:
                probabilities, expected = self.runner.run(record, batch, check_finite=False)
            except BrokenModelError as exc:
                self.set_aside(record, exc)
                retry.extend(symbol for symbol, _, _ in items)
                continue
            except ModelError as exc:
                for symbol, _, _ in items:
                    results[symbol] = empty_prediction(symbol, "error", str(exc), record)
                continue
            answers = batch_rows(probabilities, expected)
            offset = 0
            for symbol, features, rows in items:
                done = self._rows[record.key][symbol]
                for row, bar, answer in zip(rows, features.iso(rows), answers[offset:], strict=False):
                    done[row] = None if answer is None else (*answer, bar)
                offset += len(rows)
        return retry

    def _release(self, key: tuple[Any, ...]) -> None:
        super()._release(key)
        self._rows.pop(key, None)
        self._fields.pop(key, None)

    def clear_cache(self) -> None:
        super().clear_cache()
        self._rows.clear()
