"""Plugins: built-ins as default plugins, feature and model hooks, entry points, broken plugins."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from lstm_plugin import ModelRegistry, ModelTrainer, get_plugin_manager
from lstm_plugin.clock import ManualClock
from lstm_plugin.config import PluginsSection
from lstm_plugin.features import BUILTIN_FEATURES
from lstm_plugin.forecast import ForecastService

from . import sample_plugins
from .conftest import tiny_config


def test_builtins_are_registered_plugins():
    manager = get_plugin_manager(PluginsSection(load_entry_points=False))
    assert manager.has_plugin("lstm_plugin.builtin")
    assert [n for n, _ in manager.call_each("lstm_features", ohlcv=_frame(), config=tiny_config().model)] == [
        "lstm_plugin.builtin"
    ]


def _frame():
    from lstm_plugin import bundled_source

    return bundled_source().load("KO").iloc[:200]


def test_feature_plugin_trains_and_serves_with_its_column(tmp_path, source):
    cfg = tiny_config()
    plugins = get_plugin_manager(cfg.plugins, plugins=[sample_plugins.TenDayMomentum()])
    registry = ModelRegistry(tmp_path)
    record = ModelTrainer(cfg, source, registry, plugins, progress=False).train_specific("KO", as_of="2012-12-31").record
    assert record.metadata["features"] == [*BUILTIN_FEATURES, "ret_10"]
    with_plugin = ForecastService(cfg, registry, source, ManualClock("2013-01-31"), plugins=plugins)
    assert with_plugin.get_lstm_prediction("KO")["status"] == "success"
    without = ForecastService(cfg, registry, source, ManualClock("2013-01-31"), plugins=get_plugin_manager(cfg.plugins))
    p = without.get_lstm_prediction("KO")
    assert p["status"] == "error" and "ret_10" in p["message"]


def test_build_model_plugin_wins_over_the_builtin(tmp_path, source):
    cfg = tiny_config()
    plugins = get_plugin_manager(cfg.plugins, plugins=[sample_plugins.GRUModel()])
    before = sample_plugins.GRUModel.built
    outcome = ModelTrainer(cfg, source, ModelRegistry(tmp_path), plugins, progress=False).train_specific("PG", as_of="2012-12-31")
    assert sample_plugins.GRUModel.built == before + 1
    assert "GRU" in outcome.record.onnx_path.read_bytes().decode("latin-1")


def test_a_plugin_that_raises_is_reported_and_skipped(tmp_path, source, caplog):
    cfg = tiny_config()
    plugins = get_plugin_manager(cfg.plugins, plugins=[sample_plugins.Exploding()])
    outcome = ModelTrainer(cfg, source, ModelRegistry(tmp_path), plugins, progress=False).train_specific("PG", as_of="2012-12-31")
    assert outcome.record.metadata["features"] == list(BUILTIN_FEATURES)
    assert any("boom" in message for message in plugins.broken.values())
    assert "failed in lstm_features and was skipped" in caplog.text


def test_entry_points_load_and_broken_ones_are_skipped(monkeypatch, caplog):
    points = [
        EntryPoint("momentum", "tests.sample_plugins:TenDayMomentum", "lstm_plugin"),
        EntryPoint("missing", "no_such_module_xyz", "lstm_plugin"),
        EntryPoint("typo", "tests.sample_plugins:misspelled", "lstm_plugin"),
    ]
    monkeypatch.setattr("lstm_plugin.plugins.entry_points", lambda group: points if group == "lstm_plugin" else [])
    manager = get_plugin_manager(PluginsSection())
    assert manager.has_plugin("momentum")
    assert set(manager.broken) == {"missing", "typo"}
    assert not manager.has_plugin("typo")
    assert "could not be loaded and was skipped" in caplog.text
    blocked = get_plugin_manager(PluginsSection(disabled=["momentum"]))
    assert not blocked.has_plugin("momentum")


def test_explicit_plugin_with_a_typo_fails_loudly():
    from pluggy import PluginValidationError

    with pytest.raises(PluginValidationError, match="lstm_featurse"):
        get_plugin_manager(PluginsSection(load_entry_points=False), plugins=[sample_plugins.Misspelled()])
