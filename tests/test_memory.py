"""Memory that stays flat as model versions accumulate: sessions bounded by bytes, superseded versions
released, and a pooled training set held once (docs/benchmarks.md, *Memory*)."""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

from lstm_plugin import ForecastService, ManualClock, bundled_source
from lstm_plugin.backtrader.backtest import run_main_job
from lstm_plugin.model.features import make_windows, sample_end_indices
from lstm_plugin.model.fitting import fit_forecaster
from lstm_plugin.model.network import LSTMCore
from lstm_plugin.model.samples import (
    SampleSet,
    compute_features,
    float32_samples,
    pooled_samples,
    training_samples,
)
from lstm_plugin.model.window_rows import WindowRows
from lstm_plugin.plugins.manager import get_plugin_manager
from lstm_plugin.serving.inference import OnnxRunner, session_cost
from lstm_plugin.serving.registry import ModelRegistry
from lstm_plugin.serving.tape import ForecastTape
from lstm_plugin.training.jobs import run_training_job
from lstm_plugin.training.trainer import ModelTrainer

from .conftest import tiny_config
from .paper_runs import FIVE


def _windows(record, rows: int = 4) -> np.ndarray:
    features = len(record.metadata["features"])
    return np.random.default_rng(0).standard_normal((rows, int(record.metadata["window"]), features))


def test_the_session_cache_is_bounded_by_bytes_and_keeps_the_one_in_use(trained):
    registry = trained["registry"]
    records = [registry.records("specific", s)[0] for s in ("AAPL", "MSFT")]
    records.append(registry.records("universal", "DEFAULT")[0])
    one = session_cost(len(records[0].read_bytes()))
    small = OnnxRunner("cpu", 1, cache_mb=1.5 * one / 2**20)  # room for one session, not two
    roomy = OnnxRunner("cpu", 1, cache_mb=64)
    for record in records:
        answer = small.run(record, _windows(record))
        assert small.cached() == 1 and small.held_bytes <= small.cache_bytes
        for got, expected in zip(answer, roomy.run(record, _windows(record)), strict=True):
            assert np.array_equal(got, expected)  # a session opened again answers to the bit
    assert roomy.cached() == 3
    tight = OnnxRunner("cpu", 1, cache_mb=0.001)  # smaller than any session: the one in use stays
    tight.run(records[0], _windows(records[0]))
    assert tight.cached() == 1
    roomy.release(records[0].key)
    roomy.release(records[0].key)  # twice: nothing to release
    assert roomy.cached() == 2 and roomy.held_bytes == sum(
        session_cost(len(r.read_bytes())) for r in records[1:]
    )


def test_a_superseded_version_is_released_and_answers_stay_the_same(copy_registry, source):
    registry = copy_registry()
    config = tiny_config()
    trainer = ModelTrainer(config, source, registry, progress=False)
    trained_again = trainer.train_specific("AAPL", as_of="2016-03-31").record
    newer = registry.set_stage("specific", "AAPL", trained_again.version, "production", "serve it")
    older = registry.records("specific", "AAPL")[-1]
    assert newer.version > older.version
    clock = ManualClock("2016-06-30")
    tape = ForecastTape(config, registry, bundled_source(), clock)
    days = source.load("AAPL").loc["2016-03-21":"2016-04-08"].index
    answers = {day: tape.predict_many(["AAPL", "KO"], as_of=day) for day in days}
    assert {a["AAPL"]["model_version"] for a in answers.values()} == {older.version, newer.version}
    # only the versions serving now are kept: AAPL's newer one and the universal one (KO)
    assert tape.runner.cached() == 2
    assert set(tape._rows) == {newer.key, registry.records("universal", "DEFAULT")[0].key}
    per_bar = ForecastService(config, registry, bundled_source(), clock)
    for day in (days[0], days[-1]):
        for symbol in ("AAPL", "KO"):
            assert answers[day][symbol] == per_bar.get_lstm_prediction(symbol, as_of=day, force_refresh=True)
    # asked again for a day the older version served: it loads again, with the same answer
    assert tape.predict_many(["AAPL"], as_of=days[0])["AAPL"] == answers[days[0]]["AAPL"]


def _sample_sets(seed: int = 0) -> dict[str, SampleSet]:
    rng = np.random.default_rng(seed)
    sets = {}
    span = pd.bdate_range("2020-01-01", periods=60).to_numpy()
    for symbol in ("A", "B", "C"):
        rows = int(rng.integers(10, 40))
        dates = np.sort(rng.choice(span, rows, replace=False))
        sets[symbol] = SampleSet(rng.random((rows, 5, 3)).astype("float32"), rng.random(rows), dates)
    return sets


def test_pooled_samples_are_one_copy_in_date_order_with_the_same_rows():
    sets = _sample_sets()
    parts = [sets[s] for s in sorted(sets)]
    dates = np.concatenate([p.dates for p in parts])
    order = np.argsort(dates, kind="stable")
    pooled = pooled_samples(sets)
    assert np.array_equal(pooled.windows, np.concatenate([p.windows for p in parts])[order])
    assert np.array_equal(pooled.returns, np.concatenate([p.returns for p in parts])[order])
    assert np.array_equal(pooled.dates, dates[order])


def test_a_run_of_rows_is_a_view_and_the_driver_gets_a_copy():
    pooled = pooled_samples(_sample_sets(1))
    mask = np.zeros(len(pooled), dtype=bool)
    mask[5:20] = True
    segment = pooled.subset(mask)
    assert np.shares_memory(segment.windows, pooled.windows)  # no second copy of the training set
    assert np.array_equal(segment.windows, pooled.windows[5:20])
    scattered = mask.copy()
    scattered[25] = True
    assert np.array_equal(pooled.subset(scattered).windows, pooled.windows[scattered])
    sent = float32_samples(segment)
    assert not np.shares_memory(sent.windows, pooled.windows)  # what goes back keeps no view alive
    assert np.array_equal(sent.windows, segment.windows) and sent.windows.dtype == np.float32


#: unpickles a file in a process where importing torch fails
NO_TORCH = """
import pickle, sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("torch imported in the driver")
sys.meta_path.insert(0, NoTorch())
result = pickle.load(open(sys.argv[1], "rb"))
print(type(result).__name__, len(result.onnx_bytes), "torch" in sys.modules)
"""


def test_a_workers_result_reaches_the_driver_without_importing_torch(source, tmp_path):
    """torch costs a process about 0.2 GiB: the driver of a local or ray run never needs it, and a torch
    object in a result (its version string was one) would import it there when the result arrives."""
    trainer = ModelTrainer(tiny_config(), source, ModelRegistry(tmp_path / "models"), progress=False)
    result = run_training_job(trainer.prepare_specific("KO", as_of="2015-12-31"))
    assert result.onnx_bytes and result.test is not None
    (tmp_path / "result.pickle").write_bytes(pickle.dumps(result))
    read = subprocess.run(
        [sys.executable, "-c", NO_TORCH, str(tmp_path / "result.pickle")], capture_output=True, text=True
    )
    assert read.returncode == 0, read.stderr
    assert read.stdout.split() == ["JobResult", str(len(result.onnx_bytes)), "False"]


def _features_with_gaps(rows: int = 120, columns: int = 4) -> tuple[np.ndarray, np.ndarray]:
    values = np.random.default_rng(2).standard_normal((rows, columns))
    values[[0, 1, 40]] = np.nan  # invalid rows: no window may hold them
    valid = np.isfinite(values).all(axis=1)
    ends = sample_end_indices(valid, 10, 5)
    return values, ends


def test_window_rows_cut_the_values_make_windows_stacks():
    values, ends = _features_with_gaps()
    stacked = make_windows(values, ends, 10)
    lazy = WindowRows(values.astype("float32"), ends, 10)
    assert lazy.shape == stacked.shape and len(lazy) == len(stacked)
    assert np.asarray(lazy).tobytes() == stacked.tobytes()
    picked = np.array([5, 0, 17, 5])
    assert lazy.take(picked).tobytes() == stacked[picked].tobytes()
    assert np.array_equal(lazy[:, -1, :], stacked[:, -1, :])
    shorter = lazy[:, -4:, :]
    assert isinstance(shorter, WindowRows) and np.asarray(shorter).tobytes() == stacked[:, -4:, :].tobytes()
    mask = np.arange(len(lazy)) % 3 == 0
    for key in (mask, slice(7, 30), np.array([3, 1])):
        part = lazy[key]
        assert isinstance(part, WindowRows) and np.asarray(part).tobytes() == stacked[key].tobytes()
    assert np.array_equal(lazy[2], stacked[2])  # anything else: stacked, then indexed


def _pooled(source, config, lazy: bool) -> SampleSet:
    plugins = get_plugin_manager(config.plugins)
    per_symbol = {}
    for symbol in ("AAPL", "KO", "XOM"):
        frame = source.load(symbol, end="2012-12-31").loc["2009-01-01":]
        features = compute_features(frame, plugins, config.model, symbol)
        per_symbol[symbol] = training_samples(frame, features, config.model, lazy=lazy)
    return pooled_samples(per_symbol)


def test_a_pooled_training_on_window_rows_fits_the_same_weights(source):
    """The universal model's windows are cut per batch from one copy of the rows: the fit sees the same
    batches, so it ends with the same weights and figures, to the bit."""
    config = tiny_config()
    lazy, stacked = _pooled(source, config, True), _pooled(source, config, False)
    assert isinstance(lazy.windows, WindowRows) and isinstance(stacked.windows, np.ndarray)
    assert np.asarray(lazy.windows).tobytes() == stacked.windows.tobytes()
    assert lazy.windows.rows.nbytes * 3 < stacked.windows.nbytes  # 10-bar windows: a tenth, with the gaps

    def build(n: int) -> LSTMCore:
        return LSTMCore(n, config.model.hidden_size, config.model.num_layers, config.model.dropout)

    fitted = [fit_forecaster(s, config.model, build, progress=False) for s in (lazy, stacked)]
    timing = ("fit_seconds",)
    assert {k: v for k, v in fitted[0].metrics.items() if k not in timing} == {
        k: v for k, v in fitted[1].metrics.items() if k not in timing
    }
    weights = [f.forecaster.state_dict() for f in fitted]
    assert weights[0].keys() == weights[1].keys()
    for name in weights[0]:
        assert torch.equal(weights[0][name], weights[1][name]), name


@pytest.mark.slow
def test_a_cold_run_says_where_its_seconds_went(tmp_path):
    """bench_backtest's breakdown of the lstm run: training in workers, then the driver's phases, which with
    the rest (``strategy``) make up the run's wall time."""
    result = run_main_job(
        tiny_config(), bundled_source(), tmp_path / "models", FIVE, "2020-01-02", "2020-03-31", progress=False
    )
    phases = result.phases
    inside = ("plan", "prepare", "wait", "forecasts", "evaluation", "strategy")
    assert set(phases) == {"wall", "training", "publish", *inside}
    assert phases["wall"] == result.seconds["lstm"] and min(phases.values()) >= 0
    assert result.summary()["forecast"]["trained"] > 0
    for spent in ("training", "prepare", "publish", "wait", "forecasts", "evaluation", "strategy"):
        assert phases[spent] > 0, spent
    assert sum(phases[k] for k in inside) == pytest.approx(phases["wall"])
    assert "phases" not in result.summary()  # timings stay out of what a run decided
