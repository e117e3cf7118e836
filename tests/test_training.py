"""Training and export: out-of-sample metrics, determinism, ONNX/torch parity, refusal on mismatch."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pandas as pd
import pytest
import torch

from lstm_plugin import InsufficientDataError, ModelError, ModelRegistry, ModelTrainer
from lstm_plugin.model.export import OPSET, check_parity, export_onnx
from lstm_plugin.model.fitting import fit_forecaster, predict_torch
from lstm_plugin.model.network import Forecaster, LSTMCore
from lstm_plugin.model.samples import compute_features, training_samples
from lstm_plugin.plugins.manager import get_plugin_manager

from .conftest import tiny_config


@pytest.fixture(scope="module")
def samples(source):
    cfg = tiny_config()
    frame = source.load("MSFT", end="2012-12-31").loc["2009-01-01":]
    features = compute_features(frame, get_plugin_manager(cfg.plugins), cfg.model, "MSFT")
    return training_samples(frame, features, cfg.model)


def build(cfg):
    return lambda n: LSTMCore(n, cfg.model.hidden_size, cfg.model.num_layers, cfg.model.dropout)


def test_fit_reports_out_of_sample_metrics(samples):
    cfg = tiny_config()
    result = fit_forecaster(samples, cfg.model, build(cfg), progress=False)
    m = result.metrics
    assert {"reliability", "quality", "ic", "base_rate_up", "n_test", "val_loss", "best_epoch"} <= set(m)
    assert 0 <= m["reliability"] <= 1 and 0 <= m["quality"] <= 1 and -1 <= m["ic"] <= 1
    assert m["n_train"] + m["n_validation"] + m["n_test"] < len(samples)  # the gaps drop samples
    # the test segment starts more than `horizon` dates after the last training sample
    test_dates = np.sort(samples.dates)[-m["n_test"] :]
    gap = np.searchsorted(np.sort(samples.dates), test_dates[0]) - np.searchsorted(
        np.sort(samples.dates), result.train_end
    )
    assert gap > 2 * cfg.model.horizon
    assert 1 <= m["best_epoch"] <= m["epochs_run"] <= cfg.model.epochs


def test_same_seed_same_model_different_seed_different_model(samples):
    cfg = tiny_config()
    a = fit_forecaster(samples, cfg.model, build(cfg), progress=False).forecaster
    b = fit_forecaster(samples, cfg.model, build(cfg), progress=False).forecaster
    other = tiny_config(model={"seed": 7})
    c = fit_forecaster(samples, other.model, build(other), progress=False).forecaster
    pa, _ = predict_torch(a, samples.windows[-50:])
    pb, _ = predict_torch(b, samples.windows[-50:])
    pc, _ = predict_torch(c, samples.windows[-50:])
    np.testing.assert_array_equal(pa, pb)
    assert not np.allclose(pa, pc)


def test_too_few_samples_is_a_clear_error(samples):
    cfg = tiny_config(model={"min_samples": 10_000})
    with pytest.raises(
        InsufficientDataError, match=r"insufficient data › need at least 10000 labelled windows"
    ):
        fit_forecaster(samples, cfg.model, build(cfg), progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_onnx_matches_torch_at_several_batch_sizes(samples, exporter):
    if exporter == "dynamo":
        pytest.importorskip("onnxscript")
    cfg = tiny_config()
    forecaster = fit_forecaster(samples, cfg.model, build(cfg), progress=False).forecaster
    blob = export_onnx(forecaster, samples.windows[-64:], {"symbol": "MSFT"}, exporter=exporter)
    proto = onnx.load_from_string(blob)
    assert proto.opset_import[0].version == {"torchscript": 17, "dynamo": 18}[exporter]
    assert {p.key: p.value for p in proto.metadata_props}["symbol"] == "MSFT"
    session = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    for batch in (1, 7, 64, 200):
        x = samples.windows[:batch]
        probs, ret = session.run(None, {"features": x})
        want_p, want_r = predict_torch(forecaster, x)
        assert probs.shape == (batch, 3) and ret.shape == (batch,)
        np.testing.assert_allclose(probs, want_p, atol=1e-5)
        np.testing.assert_allclose(ret, want_r, atol=1e-5)
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def test_parity_failure_is_refused(samples):
    cfg = tiny_config()
    good = fit_forecaster(samples, cfg.model, build(cfg), progress=False).forecaster
    other = Forecaster(
        LSTMCore(samples.windows.shape[2], 8), good.feature_mean.numpy(), good.feature_std.numpy(), 0.03
    )
    blob = export_onnx(good, samples.windows[-8:], {})
    with pytest.raises(ModelError, match=r"parity check › batch 1: onnxruntime differs from torch"):
        check_parity(other, blob, samples.windows[-8:])


def test_trainer_does_not_register_a_model_that_fails_parity(tmp_path, source, monkeypatch):
    import lstm_plugin.model.export as export

    def broken(forecaster, onnx_bytes, windows):
        raise ModelError("export › parity check › batch 7: onnxruntime differs from torch by 1e-1")

    monkeypatch.setattr(export, "check_parity", broken)
    registry = ModelRegistry(tmp_path / "models")
    with pytest.raises(ModelError, match="parity check"):
        ModelTrainer(tiny_config(), source, registry, progress=False).train_specific("KO", as_of="2010-06-30")
    assert registry.resolve("specific", "KO") is None
    assert not list((tmp_path / "models").rglob("*.onnx"))


def test_scaling_is_fitted_on_training_rows_only(samples):
    cfg = tiny_config()
    result = fit_forecaster(samples, cfg.model, build(cfg), progress=False)
    train_rows = samples.windows[samples.dates <= result.train_end][:, -1, :]
    np.testing.assert_allclose(
        result.forecaster.feature_mean.numpy(), train_rows.mean(axis=0), rtol=1e-5, atol=1e-6
    )


def test_model_is_trained_only_on_labels_known_at_training_time(trained):
    for name in ("AAPL", "MSFT", "universal"):
        meta = trained["outcomes"][name].record.metadata
        trained_at = pd.Timestamp(meta["trained_at"])
        assert pd.Timestamp(meta["data_end"]) <= trained_at
        assert pd.Timestamp(meta["train_end"]) < pd.Timestamp(meta["data_end"])
        assert meta["versions"]["opset"] == OPSET and meta["versions"]["torch"] == torch.__version__


def test_fractional_lookback_and_long_horizon(tmp_path, source):
    cfg = tiny_config(model={"lookback_years": 2.5})
    outcome = ModelTrainer(cfg, source, ModelRegistry(tmp_path), progress=False).train_specific(
        "PG", as_of="2012-12-31"
    )
    assert pd.Timestamp(outcome.record.metadata["train_start"]) >= pd.Timestamp("2010-06-30")
    too_long = tiny_config(model={"horizon": 200, "lookback_years": 2.0})
    with pytest.raises(InsufficientDataError, match="insufficient data"):
        ModelTrainer(too_long, source, ModelRegistry(tmp_path), progress=False).train_specific(
            "PG", as_of="2012-12-31"
        )


@pytest.mark.slow
@pytest.mark.parametrize("threads", [1, 2])
def test_every_training_path_applies_model_torch_threads(tmp_path, source, threads):
    """The trainer, the universal model and a backtest's own trainings (sync: in this process) each fit on
    ``model.torch_threads``, whatever the process runs on, and leave the process's count as it was."""
    from lstm_plugin.backtrader.backtest import run_main_job

    before = torch.get_num_threads()
    torch.set_num_threads(3 - threads)  # the process runs on another count than the config's
    try:
        config = tiny_config(model={"torch_threads": threads}, backtest={"backend": "sync"})
        registry = ModelRegistry(tmp_path / "direct")
        trainer = ModelTrainer(config, source, registry, progress=False)
        fitted = [
            trainer.train_specific("KO", as_of="2014-12-31").record,
            trainer.train_universal(["KO", "XOM"], as_of="2014-12-31").record,
        ]
        run_main_job(
            config, source, tmp_path / "backtest", ["KO", "XOM"], "2015-01-02", "2015-03-31", progress=False
        )
        in_backtest = ModelRegistry(tmp_path / "backtest")
        fitted += [r for s in ("KO", "XOM") for r in in_backtest.records("specific", s)]
        assert len(fitted) >= 4
        assert {r.metadata["torch_threads"] for r in fitted} == {threads}
        assert torch.get_num_threads() == 3 - threads
    finally:
        torch.set_num_threads(before)
