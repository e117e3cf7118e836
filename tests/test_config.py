"""Config: defaults, the keys of config/lstm_config.json, breadcrumb errors for every failure, the schema
file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from lstm_plugin import ConfigError, load_config
from lstm_plugin.core.config import Config, config_schema, validate_config

ROOT = Path(__file__).resolve().parents[1]


def write(tmp_path: Path, payload, name: str = "lstm_config.json") -> Path:
    path = tmp_path / name
    path.write_text(payload if isinstance(payload, str) else json.dumps(payload))
    return path


def test_defaults_need_no_file():
    config = load_config(None)
    assert config.lstm.weight == 0.3
    assert config.lstm_service.schedule_priority.portfolio_symbols == 20
    assert config.lstm_service.retraining.force_retrain_age_days == 45


def test_repository_config_carries_every_key_of_the_original_design():
    raw = json.loads((ROOT / "config" / "lstm_config.json").read_text())
    original_lstm = {
        "enabled",
        "weight",
        "max_training_models",
        "max_initial_symbols",
        "training_interval",
        "prediction_cache_ttl",
        "reliability_threshold",
        "force_retrain_days",
        "model_quality_threshold",
    }
    assert set(raw["lstm"]) == original_lstm | {"below_threshold", "max_model_age_days"}
    assert {"training_threads", "enable_monitoring", "schedule_priority", "retraining"} <= set(
        raw["lstm_service"]
    )
    assert set(raw["lstm_service"]["schedule_priority"]) == {
        "portfolio_symbols",
        "watchlist_symbols",
        "scanning_symbols",
        "on_demand_symbols",
    }
    assert set(raw["lstm_service"]["retraining"]) == {
        "auto_retrain",
        "min_reliability_for_update",
        "force_retrain_age_days",
    }
    config = load_config(ROOT / "config" / "lstm_config.json")
    assert config.lstm == Config().lstm and config.lstm_service == Config().lstm_service
    assert config.portfolio == Config().portfolio


def test_schema_file_is_current():
    on_disk = json.loads((ROOT / "config" / "schema.json").read_text())
    assert on_disk == config_schema(), (
        "config/schema.json is stale: run `lstm-plugin schema > config/schema.json`"
    )


@pytest.mark.parametrize(
    "payload, message",
    [
        (
            {"lstm": {"weight": 1.7}},
            r"^lstm_config\.json › lstm\.weight › must be between 0 and 1 \(got: 1\.7\)$",
        ),
        ({"lstm": {"weight": -0.1}}, r"lstm\.weight › must be between 0 and 1 \(got: -0\.1\)"),
        ({"lstm": {"weight": "0.3"}}, r"lstm\.weight › must be a number \(got: \"0\.3\"\)"),
        ({"lstm": {"wieght": 0.3}}, r"lstm\.wieght › unknown key \(did you mean 'weight'\?\)"),
        ({"bogus": 1}, r"› bogus › unknown key; allowed: \$schema, lstm, lstm_service"),
        ({"lstm": {"enabled": "yes"}}, r"lstm\.enabled › must be true or false \(got: \"yes\"\)"),
        (
            {"lstm": {"max_training_models": 0}},
            r"lstm\.max_training_models › must be between 1 and 10000 \(got: 0\)",
        ),
        (
            {"lstm": {"prediction_cache_ttl": 1.5}},
            r"lstm\.prediction_cache_ttl › must be an integer \(got: 1\.5\)",
        ),
        ({"lstm": 3}, r"› lstm › must be an object \(got: 3\)"),
        (
            {"lstm_service": {"schedule_priority": {"portfolio_symbols": "high"}}},
            r"lstm_service\.schedule_priority\.portfolio_symbols › must be an integer",
        ),
        (
            {"lstm_service": {"retraining": {"min_reliability_for_update": 2}}},
            r"retraining\.min_reliability_for_update › must be between 0 and 1",
        ),
        (
            {"model": {"device": "tpu"}},
            r"model\.device › must be one of 'cpu', 'cuda' or 'auto' \(got: \"tpu\"\)",
        ),
        ({"model": {"window": 1}}, r"model\.window › must be between 2 and 512 \(got: 1\)"),
        (
            {"data": {"symbols": ["AAPL", "../etc"]}},
            r"data\.symbols\.1 › must be 1-20 characters .* \(got: \"\.\./etc\"\)",
        ),
        ({"data": {"symbols": "AAPL"}}, r"data\.symbols › must be a list"),
        (
            {"lstm": {"weight": 2, "reliability_threshold": 7}},
            r"lstm\.weight › must be between 0 and 1 \(got: 2\) \[and 1 more\]",
        ),
        ([1, 2], r"› \(top level\) › must be a JSON object"),
        ({"model": {"dropout": 0.2}}, r"model › dropout 0.2 needs num_layers > 1"),
        (
            {"model": {"validation_fraction": 0.5, "test_fraction": 0.4}},
            r"model › validation_fraction \+ test_fraction is 0.9; at most 0.8",
        ),
    ],
)
def test_every_error_is_one_breadcrumb_line(tmp_path, payload, message):
    with pytest.raises(ConfigError, match=message) as info:
        load_config(write(tmp_path, payload))
    assert "\n" not in str(info.value)


def test_json_syntax_error_names_line_and_column(tmp_path):
    path = write(tmp_path, '{\n  "lstm": {\n    "weight": 0.3,\n  }\n}\n')
    with pytest.raises(ConfigError, match=r"^lstm_config\.json › line 4, column 3 › invalid JSON: "):
        load_config(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match=r"nope\.json › cannot read config › file not found"):
        load_config(tmp_path / "nope.json")


def test_integers_are_accepted_as_numbers_and_schema_key_is_allowed():
    config = validate_config({"$schema": "./schema.json", "lstm": {"weight": 1}})
    assert config.lstm.weight == 1.0 and config.schema_ == "./schema.json"


def test_every_number_in_the_schema_has_both_bounds():
    """Editors show the bounds; NaN, Infinity and overflows have nowhere to hide."""

    def numbers(node, path=""):
        if isinstance(node, dict):
            if node.get("type") in ("number", "integer"):
                yield path, node
            for key, value in node.items():
                yield from numbers(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from numbers(value, f"{path}[{i}]")

    found = list(numbers(config_schema()))
    assert len(found) > 40
    unbounded = [path for path, node in found if "minimum" not in node or "maximum" not in node]
    assert unbounded == []


@pytest.mark.parametrize(
    "text",
    [
        '{"backtest": {"cash": NaN}}',
        '{"model": {"learning_rate": Infinity}}',
        '{"lstm": {"weight": -Infinity}}',
    ],
)
def test_non_finite_numbers_are_refused(tmp_path, text):
    with pytest.raises(ConfigError, match=r"must be a finite number"):
        load_config(write(tmp_path, text))


def test_a_config_nested_too_deep_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"nested too deeply"):
        load_config(write(tmp_path, "[" * 50_000 + "]" * 50_000))


def test_a_loaded_config_is_frozen_and_changes_go_through_model_copy():
    config = validate_config({"lstm": {"weight": 0.5}})
    with pytest.raises(ValidationError, match="frozen"):
        config.lstm.weight = 7  # type: ignore[misc]
    with pytest.raises(ValidationError, match="frozen"):
        config.lstm = config.lstm  # type: ignore[misc]
    changed = config.model_copy(update={"lstm": config.lstm.model_copy(update={"weight": 0.0})})
    assert (changed.lstm.weight, config.lstm.weight) == (0.0, 0.5)
    assert validate_config({"model": {"dropout": 0.2, "num_layers": 2}}).model.dropout == 0.2


def test_one_rule_says_where_every_command_trains():
    from lstm_plugin.core.config import training_backend

    from .conftest import tiny_config

    service_ray = tiny_config(lstm_service={"backend": "ray"})
    assert training_backend(service_ray) == training_backend(service_ray, walk_forward=True) == "ray"
    both = tiny_config(lstm_service={"backend": "ray"}, backtest={"backend": "sync"})
    assert training_backend(both) == "ray" and training_backend(both, walk_forward=True) == "sync"
    assert training_backend(both, "local", walk_forward=True) == "local"  # --backend wins
    assert training_backend(tiny_config()) == training_backend(tiny_config(), walk_forward=True) == "local"
