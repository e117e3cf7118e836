"""``lstm-plugin promote``: a shelved candidate is served by hand, a version is set aside, and ``status``
says what to do (docs/cli.md, *Promote*)."""

from __future__ import annotations

import json

import pytest

from lstm_plugin import ModelRegistry
from lstm_plugin.cli.main import main

from .conftest import TINY, write_config
from .service_helpers import retrain_msft


@pytest.fixture
def shelved(copy_registry, source, monkeypatch, tmp_path):
    """A copy of the trained registry where MSFT's retrain (v2, 2016-03-01) was shelved as worse than v1."""
    registry = copy_registry()
    monkeypatch.setattr("lstm_plugin.training.trainer.paired_accuracy_gap", lambda *arrays: (-0.2, 0.02))
    assert retrain_msft(registry, source)[1].stage == "candidate"
    return registry.root, write_config(tmp_path / "tiny.json", TINY)


def cli(capsys, root, config, *args: str) -> tuple[int, str, str]:
    code = main([*args, "--models", str(root), "--config", str(config)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_status_names_the_shelved_model_and_the_command_that_serves_it(shelved, capsys):
    code, out, _ = cli(capsys, *shelved, "status", "MSFT", "--as-of", "2016-03-02")
    assert code == 0
    hint = [line for line in out.splitlines() if "shelved" in line]
    assert hint and hint[0].startswith("MSFT: v2 (trained 2016-03-01) is shelved: ")
    assert "against the served model on the same test segment" in hint[0]  # the reason, as recorded
    assert hint[0].endswith("`lstm-plugin promote MSFT` serves it")


def test_promote_serves_the_candidate_and_discard_sets_it_aside(shelved, capsys):
    root, config = shelved
    code, out, err = cli(capsys, root, config, "promote", "MSFT", "--json")
    assert code == 0, err
    assert json.loads(out) == {
        "model_type": "specific",
        "symbol": "MSFT",
        "model_version": 2,
        "trained_at": "2016-03-01T00:00:00",
        "stage": "production",
        "was": "candidate",
        "served_version": 2,
    }
    registry = ModelRegistry(root)
    assert registry.resolve("specific", "MSFT").version == 2
    assert registry.resolve("specific", "MSFT").metadata["stage_reason"] == "promoted by hand"
    onnx_before = registry.resolve("specific", "MSFT").onnx_path.read_bytes()

    code, out, err = cli(capsys, root, config, "promote", "MSFT", "--version", "2", "--discard")
    assert code == 0, err
    assert out.strip() == "specific/MSFT/v2: discarded (was production); serving now: specific/MSFT/v1"
    registry = ModelRegistry(root)
    assert registry.resolve("specific", "MSFT").version == 1  # the one before serves again
    assert registry.resolve("specific", "MSFT", candidates=True).version == 1  # nor offered as a candidate
    assert registry.records("specific", "MSFT")[0].onnx_path.read_bytes() == onnx_before  # model untouched

    code, out, _ = cli(capsys, root, config, "status", "MSFT", "--as-of", "2016-03-02")
    assert code == 0 and "shelved" not in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("promote", "AAPL"), "no shelved candidate to promote; give --version N"),
        (("promote", "MSFT", "--version", "9"), "--version › no valid version 9 (versions: v1, v2)"),
        (("promote", "--universal"), "no shelved candidate to promote; give --version N"),
        (("promote",), "give a SYMBOL, or --universal for the pooled model"),
        (("promote", "../../etc"), "symbol"),
    ],
)
def test_promote_refuses_with_one_line_and_changes_nothing(shelved, capsys, args, message):
    root, config = shelved
    before = sorted((p.name, p.read_bytes()) for p in root.rglob("v*.json"))
    code, out, err = cli(capsys, root, config, *args)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert sorted((p.name, p.read_bytes()) for p in root.rglob("v*.json")) == before


def test_promoting_a_version_older_than_the_served_one_is_refused(shelved, capsys):
    root, config = shelved
    assert cli(capsys, root, config, "promote", "MSFT")[0] == 0  # v2 serves
    code, _, err = cli(capsys, root, config, "promote", "MSFT", "--version", "1")
    assert code == 2 and "trained before the served specific/MSFT/v2" in err and "would not serve" in err
    assert "lstm-plugin promote MSFT --version 2 --discard" in err  # what to do instead


def test_a_discarded_version_serves_again_only_with_force(shelved, capsys):
    root, config = shelved
    assert cli(capsys, root, config, "promote", "MSFT", "--version", "2", "--discard")[0] == 0
    code, out, err = cli(capsys, root, config, "promote", "MSFT", "--version", "2")
    assert code == 2 and out == "" and len(err.strip().splitlines()) == 1, err
    assert "specific/MSFT/v2 was discarded (discarded by hand); serving it again needs --force" in err
    assert ModelRegistry(root).resolve("specific", "MSFT").version == 1
    code, out, err = cli(capsys, root, config, "promote", "MSFT", "--version", "2", "--force")
    assert (
        code == 0
        and out.strip() == "specific/MSFT/v2: production (was discarded); serving now: specific/MSFT/v2"
    )
