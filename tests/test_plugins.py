"""Plugins: built-ins as default plugins, feature and model hooks, entry points, broken plugins."""

from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from lstm_plugin import ModelRegistry, ModelTrainer, get_plugin_manager, hookimpl
from lstm_plugin.core.clock import ManualClock
from lstm_plugin.core.config import PluginsSection
from lstm_plugin.model.features import BUILTIN_FEATURES
from lstm_plugin.serving.forecast import ForecastService

from . import sample_plugins
from .conftest import tiny_config


def test_builtins_are_registered_plugins():
    manager = get_plugin_manager(PluginsSection(load_entry_points=False))
    assert manager.has_plugin("lstm_plugin.builtin")
    assert [
        n
        for n, _ in manager.call_each("lstm_features", ohlcv=_frame(), config=tiny_config().model, symbol="X")
    ] == ["lstm_plugin.builtin"]


def _frame():
    from lstm_plugin import bundled_source

    return bundled_source().load("KO").iloc[:200]


def test_feature_plugin_trains_and_serves_with_its_column(tmp_path, source):
    cfg = tiny_config()
    plugins = get_plugin_manager(cfg.plugins, plugins=[sample_plugins.TenDayMomentum()])
    registry = ModelRegistry(tmp_path)
    record = (
        ModelTrainer(cfg, source, registry, plugins, progress=False)
        .train_specific("KO", as_of="2012-12-31")
        .record
    )
    assert record.metadata["features"] == [*BUILTIN_FEATURES, "ret_10"]
    with_plugin = ForecastService(cfg, registry, source, ManualClock("2013-01-31"), plugins=plugins)
    assert with_plugin.get_lstm_prediction("KO")["status"] == "success"
    without = ForecastService(
        cfg, registry, source, ManualClock("2013-01-31"), plugins=get_plugin_manager(cfg.plugins)
    )
    p = without.get_lstm_prediction("KO")
    assert p["status"] == "error" and "ret_10" in p["message"]


def test_build_model_plugin_wins_over_the_builtin(tmp_path, source):
    cfg = tiny_config()
    plugins = get_plugin_manager(cfg.plugins, plugins=[sample_plugins.GRUModel()])
    before = sample_plugins.GRUModel.built
    outcome = ModelTrainer(cfg, source, ModelRegistry(tmp_path), plugins, progress=False).train_specific(
        "PG", as_of="2012-12-31"
    )
    assert sample_plugins.GRUModel.built == before + 1
    assert "GRU" in outcome.record.onnx_path.read_bytes().decode("latin-1")


def test_a_plugin_that_raises_is_reported_and_skipped(tmp_path, source, caplog):
    cfg = tiny_config()
    plugins = get_plugin_manager(cfg.plugins, plugins=[sample_plugins.Exploding()])
    outcome = ModelTrainer(cfg, source, ModelRegistry(tmp_path), plugins, progress=False).train_specific(
        "PG", as_of="2012-12-31"
    )
    assert outcome.record.metadata["features"] == list(BUILTIN_FEATURES)
    assert any("boom" in message for message in plugins.broken.values())
    assert "failed in lstm_features and was skipped" in caplog.text


def test_entry_points_load_and_broken_ones_are_skipped(monkeypatch, caplog):
    points = [
        EntryPoint("momentum", "tests.sample_plugins:TenDayMomentum", "lstm_plugin"),
        EntryPoint("missing", "no_such_module_xyz", "lstm_plugin"),
        EntryPoint("typo", "tests.sample_plugins:misspelled", "lstm_plugin"),
    ]
    monkeypatch.setattr(
        "lstm_plugin.plugins.manager.entry_points", lambda group: points if group == "lstm_plugin" else []
    )
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


class _Wrappers:
    """A new-style wrapper around ``lstm_adjust_score`` that adds a result of its own."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    @hookimpl(wrapper=True)
    def lstm_adjust_score(self, symbol, score, analysis):
        self.seen.append("wrapper before")
        results = yield
        self.seen.append(f"wrapper after {results}")
        return [*results, 7.0]


class _OldWrapper:
    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    @hookimpl(hookwrapper=True)
    def lstm_adjust_score(self, symbol, score, analysis):
        self.seen.append("hookwrapper before")
        outcome = yield
        self.seen.append(f"hookwrapper after {outcome.get_result()}")


class _Adds:
    @hookimpl
    def lstm_adjust_score(self, symbol, score, analysis):
        return 1.5


class _Raises:
    @hookimpl
    def lstm_adjust_score(self, symbol, score, analysis):
        raise RuntimeError("boom")


def test_wrappers_run_around_the_call_and_a_raising_plugin_is_skipped_inside_them(caplog):
    wrapper = _Wrappers()
    manager = get_plugin_manager(
        PluginsSection(load_entry_points=False), [_Adds(), _Raises(), _OldWrapper(wrapper.seen), wrapper]
    )
    with caplog.at_level("WARNING"):
        results = manager.call_each("lstm_adjust_score", symbol="KO", score=50.0, analysis={})
    assert wrapper.seen == [
        "wrapper before",
        "hookwrapper before",
        "hookwrapper after [1.5]",
        "wrapper after [1.5]",
    ]
    # the wrapper added a result, so the results can no longer be matched to the plugins that made them
    assert [value for _, value in results] == [1.5, 7.0]
    assert {name for name, _ in results} == {"(changed by a wrapper)"}
    assert "boom" in caplog.text and list(manager.broken.values()) == ["RuntimeError: boom"]


def test_results_name_their_plugin_and_a_chain_passes_each_result_on():
    class Halve:
        @hookimpl
        def lstm_after_rebalance(self, when, targets, analyses):
            return {s: w / 2 for s, w in targets.items()}

    class Refused:
        @hookimpl(tryfirst=True)
        def lstm_after_rebalance(self, when, targets, analyses):
            return {"NOT_TRADABLE": 1.0}

    halve = Halve()
    manager = get_plugin_manager(
        PluginsSection(load_entry_points=False), [_Adds(), halve, Halve(), Refused()]
    )
    assert manager.call_each("lstm_adjust_score", symbol="KO", score=50.0, analysis={}) == [
        (manager.get_name(next(p for p in manager.get_plugins() if isinstance(p, _Adds))), 1.5)
    ]
    targets = manager.call_chain(
        "lstm_after_rebalance",
        "targets",
        {"KO": 0.8},
        accept=lambda t: set(t) <= {"KO"},
        when=None,
        analyses={},
    )
    assert targets == {"KO": 0.2}  # halved twice; the refused result was ignored


def test_lstm_plugin_trace_writes_every_hook_call_to_stderr(monkeypatch, capsys):
    monkeypatch.setenv("LSTM_PLUGIN_TRACE", "1")
    manager = get_plugin_manager(PluginsSection(load_entry_points=False), [_Adds()])
    manager.call_each("lstm_adjust_score", symbol="KO", score=50.0, analysis={})
    err = capsys.readouterr().err
    assert "LSTM_PLUGIN_TRACE:" in err and "lstm_adjust_score" in err and "finish" in err
    monkeypatch.setenv("LSTM_PLUGIN_TRACE", "0")
    get_plugin_manager(PluginsSection(load_entry_points=False)).call_each(
        "lstm_adjust_score", symbol="KO", score=1.0, analysis={}
    )
    assert capsys.readouterr().err == ""
