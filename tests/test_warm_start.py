"""``model.warm_start``: a retrain begins from the served version's weights when they fit, records which,
and gives the same bytes on every backend (a backtest with warm starts: tests/test_continual_tuning.py)."""

from __future__ import annotations

import pytest
import torch

from lstm_plugin import ModelRegistry, ModelTrainer
from lstm_plugin.model.network import LSTMCore
from lstm_plugin.model.onnx_wire import read_signature
from lstm_plugin.model.warm_weights import WEIGHTS_PROPERTY, decode_weights, encode_weights, load_matching
from lstm_plugin.training.backends import LocalBackend

from .conftest import tiny_config

WARM = {"warm_start": True, "warm_start_epochs": 3}


def test_weights_as_text_are_deterministic_and_load_only_into_the_same_architecture():
    torch.manual_seed(0)
    core = LSTMCore(5, 8)
    text = encode_weights(core.state_dict())
    assert text == encode_weights(core.state_dict())
    weights = decode_weights(text)
    other = LSTMCore(5, 8)
    assert load_matching(other, weights)
    assert all(torch.equal(a, b) for a, b in zip(core.state_dict().values(), other.state_dict().values()))
    wider = LSTMCore(5, 12)
    before = {k: v.clone() for k, v in wider.state_dict().items()}
    assert not load_matching(wider, weights)
    assert all(torch.equal(before[k], v) for k, v in wider.state_dict().items())
    with pytest.raises(ValueError, match="not a network's weights"):
        decode_weights('{"x": {"shape": [2], "data": "!!"}}')


def test_a_retrain_starts_from_the_served_version_and_says_so(tmp_path, source):
    registry = ModelRegistry(tmp_path / "m")
    trainer = ModelTrainer(tiny_config(model=WARM), source, registry, progress=False)
    first = trainer.train_specific("AAPL", as_of="2012-06-29").record
    second = trainer.train_specific("AAPL", as_of="2012-07-31").record
    assert first.metadata["parent"] is None
    assert second.metadata["parent"] == {"version": 1, "sha256": first.metadata["sha256"], "warm": True}
    assert second.metadata["metrics"]["epochs_run"] <= WARM["warm_start_epochs"]
    kept = read_signature(second.read_bytes()).properties[WEIGHTS_PROPERTY]
    assert set(decode_weights(kept)) == {
        "rnn.weight_ih_l0",
        "rnn.weight_hh_l0",
        "rnn.bias_ih_l0",
        "rnn.bias_hh_l0",
        "head.weight",
        "head.bias",
    }
    # another architecture: the parent is named, and the training starts cold
    wider = ModelTrainer(tiny_config(model={**WARM, "hidden_size": 12}), source, registry, progress=False)
    third = wider.train_specific("AAPL", as_of="2012-08-31").record
    assert third.metadata["parent"] == {"version": 2, "sha256": second.metadata["sha256"], "warm": False}


def test_without_warm_start_a_model_keeps_no_weights_and_has_no_parent(tmp_path, source):
    trainer = ModelTrainer(tiny_config(), source, ModelRegistry(tmp_path / "m"), progress=False)
    trainer.train_specific("AAPL", as_of="2012-06-29")
    record = trainer.train_specific("AAPL", as_of="2012-07-31").record
    assert record.metadata["parent"] is None
    assert WEIGHTS_PROPERTY not in read_signature(record.read_bytes()).properties


def test_a_warm_started_model_has_the_same_bytes_on_local_workers_as_here(tmp_path, source):
    shas = []
    backend = LocalBackend(2)
    try:
        for name, remote in (("here", False), ("local", True)):
            trainer = ModelTrainer(
                tiny_config(model=WARM), source, ModelRegistry(tmp_path / name), progress=False
            )
            for as_of in ("2012-06-29", "2012-07-31"):
                job = trainer.prepare_specific("KO", as_of=as_of)
                outcome = trainer.publish(backend.submit(job).result()) if remote else trainer.run(job)
            assert outcome.record.metadata["parent"]["warm"]
            shas.append(outcome.record.metadata["sha256"])
    finally:
        backend.shutdown()
    assert shas[0] == shas[1]
