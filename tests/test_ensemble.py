"""Ensembles: the weights by hand, the combined graph against its members, and one trained, served unit."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lstm_plugin import ForecastService, ManualClock, ModelRegistry, ModelTrainer
from lstm_plugin.core.config import validate_config
from lstm_plugin.core.errors import ConfigError
from lstm_plugin.model.ensemble import member_weights
from lstm_plugin.model.network import EnsembleForecaster, Forecaster, GRUCore, LSTMCore
from lstm_plugin.model.sessions import open_session

from .conftest import tiny_config

MEMBERS = [{"cell": "lstm", "window": 10, "hidden_size": 8}, {"cell": "gru", "window": 6, "hidden_size": 6}]


def test_member_weights_by_hand():
    assert np.allclose(member_weights([0.1, 0.3], "equal", 0.5), [0.5, 0.5])
    assert np.allclose(
        member_weights([0.1, 0.3, -0.2], "ic", 0.5), [0.5 / 3 + 0.125, 0.5 / 3 + 0.375, 0.5 / 3]
    )
    assert np.allclose(member_weights([-0.1, float("nan")], "ic", 0.5), [0.5, 0.5])  # no evidence: equal
    assert np.allclose(member_weights([0.2, 0.0], "ic", 0.0), [1.0, 0.0])


def test_an_ensemble_needs_two_members_that_fit_the_window():
    with pytest.raises(ConfigError, match="two members"):
        validate_config({"model": {"ensemble": MEMBERS[:1]}})
    with pytest.raises(ConfigError, match="at most window = 8"):
        validate_config({"model": {"window": 8, "ensemble": MEMBERS}})
    with pytest.raises(ConfigError, match="cell"):
        validate_config({"model": {"ensemble": [{"cell": "rnn"}, {}]}})
    assert validate_config({"model": {"cell": "gru"}}).model.cell == "gru"


def test_the_graph_averages_standardised_member_forecasts():
    torch.manual_seed(0)
    mean, std = np.zeros(3), np.ones(3)
    members = [Forecaster(LSTMCore(3, 4), mean, std, 0.02), Forecaster(GRUCore(3, 5), mean, std, 0.03)]
    weights, means, stds = np.array([0.25, 0.75]), np.array([0.001, -0.002]), np.array([0.01, 0.004])
    ensemble = EnsembleForecaster(members, [5, 3], weights, means, stds).eval()
    x = torch.randn(7, 5, 3)
    with torch.no_grad():
        probabilities, expected = ensemble.serving()(x)
        parts = [m.serving()(x[:, -w:, :]) for m, w in zip(members, [5, 3])]
    z = sum(w * (r.numpy() - m) / s for w, (_, r), m, s in zip(weights, parts, means, stds))
    assert np.allclose(expected.numpy(), (weights @ means) + (weights @ stds) * z, atol=1e-6)
    assert np.allclose(
        probabilities.numpy(), sum(w * p.numpy() for w, (p, _) in zip(weights, parts)), atol=1e-6
    )
    assert np.allclose(probabilities.sum(axis=1).numpy(), 1.0, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_an_ensemble_is_one_registered_onnx_unit_served_like_any_model(source, tmp_path, exporter):
    config = tiny_config(model={"ensemble": MEMBERS, "ensemble_weights": "ic", "exporter": exporter})
    registry = ModelRegistry(tmp_path / "models")
    outcome = ModelTrainer(config, source, registry, progress=False).train_specific(
        "AAPL", as_of="2015-12-31"
    )
    metadata = outcome.record.metadata
    assert [m["cell"] for m in metadata["ensemble"]] == ["lstm", "gru"] and metadata["window"] == 10
    assert sum(m["weight"] for m in metadata["ensemble"]) == pytest.approx(1.0)
    assert len(list((tmp_path / "models").rglob("*.onnx"))) == 1
    single = ModelTrainer(tiny_config(), source, ModelRegistry(tmp_path / "single"), progress=False)
    assert (
        single.train_specific("AAPL", as_of="2015-12-31").record.metadata["training_key"]
        != metadata["training_key"]
    )
    session = open_session(outcome.record.onnx_path.read_bytes())
    for batch in (2, 7, 64):  # one graph, any batch size
        windows = (
            np.random.default_rng(batch).normal(size=(batch, 10, len(metadata["features"]))).astype("float32")
        )
        probabilities, expected = session.run(None, {session.get_inputs()[0].name: windows})
        assert probabilities.shape == (batch, 3) and expected.shape == (batch,)
    forecast = ForecastService(config, registry, source, clock=ManualClock("2016-03-31")).get_lstm_prediction(
        "AAPL"
    )
    assert forecast["status"] == "success" and forecast["model_version"] == 1
