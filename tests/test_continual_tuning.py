"""Continual tuning inside the training service: due models by priority within a pass's budget, the same
figures cold, warm and on another backend, and no future read with tuning and warm starts both on."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from lstm_plugin import ModelRegistry
from lstm_plugin.core.config import validate_config
from lstm_plugin.serving.tuned import TunedStore
from lstm_plugin.training.jobs import TrainJob
from lstm_plugin.training.prefetch import Prefetch
from lstm_plugin.training.service import TrainingService
from lstm_plugin.training.tuning.continual import tuning_order

from .conftest import write_config
from .test_main_job import SMALL, backtest, perturbed_copy, read_rows
from .test_tuning import SPACE

TUNING = {
    "space": SPACE,
    "folds": 2,
    "trials": 2,
    "trials_per_pass": 2,
    "every_days": 180,
    "parallel": 2,
    "startup_trials": 1,
    "warmup_epochs": 1,
}
CONTINUAL = {
    **SMALL,
    "model": {**SMALL["model"], "warm_start": True, "warm_start_epochs": 3},
    "tuning": TUNING,
}


def test_the_universal_model_and_the_portfolio_are_tuned_first_and_the_scope_is_kept():
    config = validate_config(CONTINUAL)
    order = tuning_order(config, ["ZTS", "AAPL", "KO"], {"KO": "portfolio", "AAPL": "watchlist"})
    assert order == [("universal", "DEFAULT"), ("specific", "KO"), ("specific", "AAPL"), ("specific", "ZTS")]

    universe, categories = ["ZTS", "KO"], {"KO": "portfolio"}
    pooled = validate_config({**CONTINUAL, "tuning": {**TUNING, "models": "universal"}})
    assert tuning_order(pooled, universe, categories) == [("universal", "DEFAULT")]
    each = validate_config({**CONTINUAL, "tuning": {**TUNING, "models": "specific"}})
    assert tuning_order(each, universe, categories) == [("specific", "KO"), ("specific", "ZTS")]


def test_a_pass_spends_at_most_its_budget_and_a_study_goes_on_over_the_next_passes(tmp_path, source):
    raw = json.loads(json.dumps(CONTINUAL))
    raw["tuning"].update(trials=3, trials_per_pass=1)
    raw["lstm_service"]["universal"] = {"enabled": False}
    config = validate_config(raw)
    registry = ModelRegistry(tmp_path / "m")
    with TrainingService(config, source, registry, backend="sync", universe=["AAPL", "KO"]) as service:
        for day in ("2012-01-03", "2012-01-04", "2012-01-05", "2012-01-06"):
            assert service.tuning is not None
            assert service.tuning.run_pass(pd.Timestamp(day), [("specific", "AAPL"), ("specific", "KO")]) == 1
    store = TunedStore(registry.root)
    (aapl,) = store.all("specific", "AAPL")  # three passes made its study; the fourth began KO's
    assert (
        aapl.tuned_at.startswith("2012-01-05") and aapl.data_end.startswith("2012-01-03") and aapl.trials == 3
    )
    assert store.all("specific", "KO") == []


def test_a_pass_while_a_tune_holds_the_study_file_trains_on_and_says_why(tmp_path, source, caplog):
    from filelock import FileLock

    config = validate_config(CONTINUAL)
    registry = ModelRegistry(tmp_path / "m")
    with TrainingService(config, source, registry, backend="sync", universe=["KO"]) as service:
        assert service.tuning is not None
        with FileLock(registry.root / ".tuning.sqlite.lock"), caplog.at_level("WARNING"):
            assert service.tuning.run_pass(pd.Timestamp("2012-01-03"), [("specific", "KO")]) == 0
    said = [r.getMessage() for r in caplog.records]
    assert any("no tuning in this pass" in m and "another lstm-plugin tune" in m for m in said), said
    assert TunedStore(registry.root).all("specific", "KO") == []


@pytest.mark.slow
def test_a_backtest_that_tunes_and_warm_starts_reads_no_future(capsys, tmp_path, unseen_six_dir):
    T = "2009-06-01"
    config = write_config(tmp_path / "continual.json", CONTINUAL)
    noisy = perturbed_copy(unseen_six_dir, tmp_path / "noisy", T)
    for name, folder in (("honest", unseen_six_dir), ("noisy", noisy)):
        common = ["--data", str(folder), "--start", "2008-01-01", "--end", "2010-06-30", "-q"]
        places = ["--out", str(tmp_path / f"{name}_report"), "--models", str(tmp_path / f"{name}_models")]
        code, _, err = backtest(capsys, *common, *places, "--config", str(config))
        assert code == 0, err
    honest = tmp_path / "honest_models"
    tuned = [r for path in (honest / "tuning").rglob("*.json") for r in json.loads(path.read_text())]
    assert len({r["name"] for r in tuned}) >= 3 and all(r["data_end"] < r["tuned_at"] for r in tuned)
    versions = [json.loads(p.read_text()) for p in honest.rglob("v*.json")]
    assert any(v.get("tuning") for v in versions) and any(
        (v.get("parent") or {}).get("warm") for v in versions
    )
    for file in ("predictions.csv", "orders.csv", "equity.csv"):
        honest_rows, noisy_rows = (read_rows(tmp_path / f"{n}_report" / file) for n in ("honest", "noisy"))
        before = [r for r in honest_rows if r["date"] <= T]
        assert before and before == [r for r in noisy_rows if r["date"] <= T], file
    # run again over the same registry, on sync this time: every figure the same
    rerun = [
        "--data",
        str(unseen_six_dir),
        "--start",
        "2008-01-01",
        "--end",
        "2010-06-30",
        "-q",
        "--backend",
        "sync",
    ]
    code, _, err = backtest(
        capsys, *rerun, "--out", str(tmp_path / "rerun"), "--models", str(honest), "--config", str(config)
    )
    assert code == 0, err
    for file in ("predictions.csv", "orders.csv", "equity.csv"):
        assert read_rows(tmp_path / "rerun" / file) == read_rows(tmp_path / "honest_report" / file), file


def test_a_result_started_ahead_is_taken_only_by_a_job_with_the_same_settings():
    import threading
    from concurrent.futures import Future

    config = validate_config(CONTINUAL)
    when = pd.Timestamp("2012-01-03")
    predicted = TrainJob("universal", "DEFAULT", when, {}, config.model)
    tuned = {"study": "universal/DEFAULT@2011-06-01", "parameters": {"hidden_size": 16}}
    tuned_model = config.model.model_copy(update={"hidden_size": 16})
    ahead = Prefetch(threading.RLock())
    ahead.add([predicted])
    assert ahead.start_next(lambda job: Future())
    assert ahead.take(TrainJob("universal", "DEFAULT", when, {}, tuned_model, tuning=tuned)) is None
    assert ahead.take(TrainJob("universal", "DEFAULT", when, {}, config.model)) is not None


@pytest.mark.slow
def test_universal_trainings_started_ahead_of_their_pass_still_use_the_settings_tuned_by_then(
    capsys, tmp_path, unseen_six_dir
):
    """On ``local`` the universal model's coming trainings start ahead, on idle workers, before the tuning
    that should shape them has run: the pass must not take such a result as its own."""
    raw = json.loads(json.dumps(CONTINUAL))
    raw["model"]["warm_start"] = False  # warm starts train nothing ahead
    raw["tuning"].update(models="universal", every_days=36_500)
    config = write_config(tmp_path / "pooled.json", raw)
    models = tmp_path / "models"
    common = ["--data", str(unseen_six_dir), "--start", "2008-01-01", "--end", "2010-06-30", "-q"]
    code, _, err = backtest(
        capsys,
        *common,
        "--out",
        str(tmp_path / "r"),
        "--models",
        str(models),
        "--config",
        str(config),
        "--backend",
        "local",
    )
    assert code == 0, err
    (record,) = TunedStore(models).all("universal", "DEFAULT")
    versions = [json.loads(p.read_text()) for p in (models / "universal" / "DEFAULT").glob("v*.json")]
    after = [v for v in versions if v["trained_at"] > record.tuned_at]
    assert len(after) >= 2
    assert all((v.get("tuning") or {}).get("study") == record.study for v in after), [
        v["tuning"] for v in after
    ]
