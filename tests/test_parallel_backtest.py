"""A backtest's trainings on worker processes: faster, and the same bytes as one after another.

Each rebalance's trainings run concurrently on ``local`` workers and the run waits for them before
it selects, so the models (ONNX sha256), the trainings listed, the orders and every figure are
those of ``--backend sync``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lstm_plugin.cli.main import main

from .conftest import UNSEEN_SIX, write_config

CONFIG = {
    "model": {"window": 10, "hidden_size": 8, "epochs": 6, "patience": 3, "lookback_years": 3.0},
    "lstm": {"max_training_models": 3},
    "lstm_service": {"universal": {"retrain_days": 365}},
    "portfolio": {"num_symbols": 3, "max_weight": 0.4},
    "backtest": {"workers": 2, "baselines": []},
    "plugins": {"load_entry_points": False},
}


def command(capsys, tmp_path: Path, data: Path, *args: str) -> dict:
    config = write_config(tmp_path / "config.json", CONFIG)
    span = ["--symbols", ",".join(UNSEEN_SIX), "--start", "2010-01-01", "--end", "2012-12-31"]
    code = main([*args, "--data", str(data), *span, "--json", "--config", str(config)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)


def run(capsys, tmp_path: Path, data: Path, backend: str) -> tuple[dict, Path]:
    out, models = tmp_path / f"report_{backend}", tmp_path / f"models_{backend}"
    found = command(
        capsys, tmp_path, data, "backtest", "--out", str(out), "--models", str(models), "--backend", backend
    )
    return found, models


def model_digests(models: Path) -> dict[str, str]:
    return {
        f"{meta.parent.name}/{meta.name}": json.loads(meta.read_text())["sha256"]
        for meta in sorted(models.glob("*/*/v*.json"))
    }


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def without_timing(summary: dict) -> dict:
    summary = json.loads(json.dumps(summary))
    for key in ("seconds", "report"):
        summary.pop(key, None)
    summary["settings"].pop("registry")
    summary["settings"].pop("backend")  # where the trainings ran: the one setting meant to differ
    return summary


@pytest.mark.slow
def test_local_workers_give_the_same_backtest_as_sync(capsys, tmp_path, unseen_six_dir):
    sync, sync_models = run(capsys, tmp_path, unseen_six_dir, "sync")
    local, local_models = run(capsys, tmp_path, unseen_six_dir, "local")
    assert sync["forecast"]["trained"] > 6  # several passes of several trainings each
    assert model_digests(local_models) == model_digests(sync_models)
    assert without_timing(local) == without_timing(sync)
    for name in ("orders.csv", "equity.csv", "predictions.csv", "forecasts_daily.csv"):
        assert rows(tmp_path / "report_local" / name) == rows(tmp_path / "report_sync" / name), name


@pytest.mark.slow
def test_pretraining_trains_what_the_backtest_would_and_it_then_runs_warm(capsys, tmp_path, unseen_six_dir):
    sync, sync_models = run(capsys, tmp_path, unseen_six_dir, "sync")
    models = tmp_path / "models_pretrained"
    done = command(
        capsys, tmp_path, unseen_six_dir, "pretrain", "--models", str(models), "--backend", "local"
    )
    assert done["trained"] == sync["forecast"]["trained"] and done["failed"] == 0
    assert model_digests(models) == model_digests(sync_models)
    out = tmp_path / "report_warm"
    warm = command(
        capsys,
        tmp_path,
        unseen_six_dir,
        "backtest",
        "--out",
        str(out),
        "--models",
        str(models),
        "--backend",
        "sync",
    )
    assert warm["forecast"]["trained"] == 0 and warm["forecast"]["reused"] > 0
    assert without_timing(warm)["lstm"] == without_timing(sync)["lstm"]


UNGUARDED = """
import json, os, sys
import backtrader as bt
from lstm_plugin import open_source
from lstm_plugin.backtrader import LSTMRebalanceStrategy

print("script started", flush=True)  # no `if __name__ == "__main__":` guard, as Backtrader scripts go
source = open_source(sys.argv[1])
cerebro = bt.Cerebro()
for symbol in ("ABT", "AMD", "CL"):
    bars = source.load(symbol).loc["2011-06-01":"2012-03-30"]
    cerebro.adddata(bt.feeds.PandasData(dataname=bars), name=symbol)
cerebro.addstrategy(LSTMRebalanceStrategy, config=sys.argv[2], registry=sys.argv[3], source=source,
                    start="2011-10-03", num_symbols=2, backend="local")
strategy = cerebro.run()[0]
print(json.dumps({"trained": strategy.lstm.counts["trained"]}))
"""


@pytest.mark.slow
def test_a_script_without_a_main_guard_runs_once_with_local_workers(tmp_path, unseen_six_dir):
    import subprocess
    import sys

    script = tmp_path / "my_backtest.py"
    script.write_text(UNGUARDED)
    config = write_config(tmp_path / "config.json", CONFIG)
    done = subprocess.run(
        [sys.executable, str(script), str(unseen_six_dir), str(config), str(tmp_path / "models")],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("script started") == 1  # the workers did not run the script again
    assert json.loads(done.stdout.strip().splitlines()[-1])["trained"] > 0
