"""``lstm-plugin tune``: walk-forward folds that never reach the test segment, the median rule, the same
choice on every backend, tuned settings in the next training, resumable studies, one line for bad input."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from lstm_plugin import ModelRegistry, ModelTrainer, hookimpl
from lstm_plugin.core.config import validate_config
from lstm_plugin.core.data import open_source
from lstm_plugin.model.features import time_split
from lstm_plugin.serving.tuned import TunedStore
from lstm_plugin.training.backends import LocalBackend, SyncBackend
from lstm_plugin.training.tuning.folds import median_says_prune, tuning_folds, tuning_span
from lstm_plugin.training.tuning.study import Tuner

from .conftest import BUNDLED, TINY, write_config
from .test_process_lifetime import group_alive, wait_for_no_orphans

AS_OF = "2012-06-29"
SPACE = {
    "hidden_size": {"low": 4, "high": 8},
    "num_layers": None,
    "dropout": None,
    "window": {"low": 5, "high": 10},
    "learning_rate": {"low": 0.001, "high": 0.02, "log": True},
    "epochs": {"low": 2, "high": 4},
    "cell": {"choices": ["lstm", "gru"]},
}
TUNE = {
    **TINY,
    "tuning": {
        "space": SPACE,
        "folds": 2,
        "trials": 3,
        "startup_trials": 1,
        "warmup_epochs": 1,
        "parallel": 2,
    },
}


def tune_config(**tuning: object):
    raw = json.loads(json.dumps(TUNE))
    raw["tuning"].update(tuning)
    return validate_config(raw, "tune")


def cli(*args: str, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lstm_plugin", *args], cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def copy_data(folder: Path, symbols=("AAPL", "MSFT", "KO")) -> Path:
    folder.mkdir()
    for symbol in symbols:
        shutil.copy(BUNDLED / f"{symbol}.csv.gz", folder)
    return folder


# ---------------------------------------------------------------------- the maths
def test_the_folds_lie_before_the_test_segment_and_each_scores_after_its_fit():
    dates = np.repeat(pd.bdate_range("2010-01-01", periods=600).to_numpy(), 3)  # pooled: 3 symbols a date
    gap = 5
    span = tuning_span(dates, 0.15, 0.15, gap)
    test = time_split(dates, 0.15, 0.15, gap)[2]
    unique = np.unique(dates)
    first_test = np.searchsorted(unique, dates[test].min())
    assert np.searchsorted(unique, dates[span].max()) < first_test - gap  # a gap before the test segment
    assert not (span & test).any()
    folds = tuning_folds(dates, span, 3, 0.15, gap)
    assert len(folds) == 3
    for fold in folds:
        for earlier, later in ((fold.fit, fold.stop), (fold.stop, fold.score)):
            between = np.searchsorted(unique, dates[later].min()) - np.searchsorted(
                unique, dates[earlier].max()
            )
            assert between > gap  # no label of one part reaches the next
        assert not (fold.score & ~span).any()
    ends = [dates[f.score].max() for f in folds]
    assert ends == sorted(ends) and ends[-1] == dates[span].max()
    with pytest.raises(ValueError, match="too few"):
        tuning_folds(dates, span, 10, 0.15, 40)


def test_the_median_rule_stops_a_trial_below_the_finished_ones_once_it_may():
    peers = [{1: 0.1, 2: 0.2}, {1: 0.0, 2: 0.1}, {1: 0.2, 2: 0.3}]
    assert median_says_prune({1: -0.5, 2: 0.0}, peers, 2, startup_trials=3, warmup_steps=1)
    assert not median_says_prune({1: 0.25, 2: 0.0}, peers, 2, 3, 1)  # its best so far is above the median
    assert not median_says_prune({1: -0.5}, peers, 1, 3, 2)  # in its warm-up
    assert not median_says_prune({1: -0.5}, peers[:2], 1, 3, 0)  # too few finished trials
    assert not median_says_prune({7: -0.5}, peers, 7, 0, 0)  # nobody reached that step


# ---------------------------------------------------------------------- studies
class SeesTheModel:
    """Records what ``lstm_build_model`` and ``lstm_features`` are told."""

    def __init__(self) -> None:
        self.built: list[tuple[str, str, int, str]] = []
        self.fed: set[tuple[str, int]] = set()

    @hookimpl
    def lstm_build_model(self, n_features, config, symbol, model_type):
        self.built.append((symbol, model_type, config.hidden_size, config.cell))

    @hookimpl
    def lstm_features(self, ohlcv, config, symbol):
        self.fed.add((symbol, config.window))


@pytest.fixture(scope="module")
def studies(tmp_path_factory, source):
    """The same study on sync and on two local workers, each in its own registry."""
    made = {}
    for name, backend in (("sync", SyncBackend()), ("local", LocalBackend(2))):
        root = tmp_path_factory.mktemp(f"tuned-{name}")
        registry = ModelRegistry(root)
        try:
            tuner = Tuner(tune_config(), source, registry, backend, progress=False)
            record = tuner.tune("specific", "AAPL", pd.Timestamp(AS_OF), 3)
        finally:
            backend.shutdown()
        made[name] = (registry, record)
    return made


def trial_values(root: Path) -> list[tuple[int, str, float | None]]:
    with sqlite3.connect(root / "tuning.sqlite") as db:
        rows = db.execute(
            "SELECT t.number, t.state, v.value FROM trials t "
            "LEFT JOIN trial_values v ON v.trial_id = t.trial_id ORDER BY t.number"
        ).fetchall()
    return [(number, state, value) for number, state, value in rows]


def test_the_same_study_makes_the_same_choice_on_sync_and_on_local_workers(studies):
    (sync_registry, sync_record), (local_registry, local_record) = studies["sync"], studies["local"]
    assert sync_record == local_record
    assert trial_values(sync_registry.root) == trial_values(local_registry.root)
    assert sync_record.trials == 3 and sync_record.tuned_at.startswith(AS_OF)
    assert sync_record.study == f"specific/AAPL@{AS_OF}"
    first = trial_values(sync_registry.root)[0]
    assert first[2] == pytest.approx(sync_record.default_value)  # trial 0: the config's own settings
    assert sync_record.best_value >= sync_record.default_value


@pytest.mark.slow
def test_ray_tasks_make_the_same_choice_as_sync(studies, tmp_path, source):
    pytest.importorskip("ray")
    from lstm_plugin.core.config import RaySection
    from lstm_plugin.training.backends import RayBackend

    backend = RayBackend(RaySection(num_cpus=2))
    try:
        registry = ModelRegistry(tmp_path / "m")
        record = Tuner(tune_config(), source, registry, backend, progress=False).tune(
            "specific", "AAPL", pd.Timestamp(AS_OF), 3
        )
    finally:
        backend.shutdown()
    assert record == studies["sync"][1]
    assert trial_values(registry.root) == trial_values(studies["sync"][0].root)


def test_the_next_training_uses_the_tuned_settings_and_every_hook_is_told_them(studies, source):
    registry, record = studies["sync"]
    watcher = SeesTheModel()
    trainer = ModelTrainer(tune_config(), source, registry, progress=False, extra_plugins=[watcher])
    before = trainer.train_specific("AAPL", as_of="2012-06-28")  # tuned after it: the config's settings
    after = trainer.train_specific("AAPL", as_of="2012-07-31")
    assert before.record.metadata["tuning"] is None
    assert after.record.metadata["tuning"] == record.provenance()
    tuned_model = after.record.metadata["model_config"]
    assert {k: tuned_model[k] for k in record.parameters} == record.parameters
    assert after.record.metadata["training_key"] != before.record.metadata["training_key"]
    assert ("AAPL", "specific", record.parameters["hidden_size"], record.parameters["cell"]) in watcher.built
    assert ("AAPL", 10) in watcher.fed and ("AAPL", record.parameters["window"]) in watcher.fed
    # the same training on each backend's registry gives the same bytes
    shas = {
        ModelTrainer(tune_config(), source, registry, progress=False)
        .train_specific("AAPL", as_of="2012-08-31")
        .record.metadata["sha256"]
        for registry, _ in studies.values()
    }
    assert len(shas) == 1


def test_status_shows_the_settings_a_model_was_trained_with_and_those_its_next_training_uses(
    studies, tmp_path
):
    registry, record = studies["sync"]
    write_config(tmp_path / "c.json", TUNE)
    done = cli(
        "status",
        "AAPL",
        "--as-of",
        "2012-08-15",
        "--models",
        str(registry.root),
        "--config",
        "c.json",
        "--json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)["AAPL"]
    assert status["tuned"]["parameters"] == record.parameters
    assert status["tuning"] == record.provenance()  # the model trained on 2012-07-31 (the test above)


def test_prices_after_the_tuning_date_change_nothing_in_it(tmp_path, source):
    honest = copy_data(tmp_path / "honest")
    changed = copy_data(tmp_path / "changed")
    frame = pd.read_csv(changed / "AAPL.csv.gz", parse_dates=["Date"])
    later = frame["Date"] > pd.Timestamp(AS_OF)
    for column in ("Open", "High", "Low", "Close", "Adj Close"):
        frame.loc[later, column] *= np.linspace(0.5, 3.0, int(later.sum()))
    frame.to_csv(changed / "AAPL.csv.gz", index=False, compression={"method": "gzip", "mtime": 0})
    records = []
    for folder in (honest, changed):
        registry = ModelRegistry(tmp_path / f"m-{folder.name}")
        tuner = Tuner(tune_config(), open_source(folder), registry, SyncBackend(), progress=False)
        records.append(tuner.tune("specific", "AAPL", pd.Timestamp(AS_OF), 2))
        records.append(trial_values(registry.root))
    assert records[0] == records[2] and records[1] == records[3]


# ---------------------------------------------------------------------- resuming
def test_a_tuning_killed_mid_trial_resumes_with_every_finished_trial_and_leaves_no_worker(tmp_path):
    write_config(tmp_path / "c.json", TUNE)
    command = [
        sys.executable,
        "-m",
        "lstm_plugin",
        "tune",
        "AAPL",
        "--as-of",
        AS_OF,
        "--trials",
        "6",
        "--backend",
        "local",
        "--config",
        "c.json",
        "--models",
        "m",
        "-q",
    ]
    driver = subprocess.Popen(
        command, cwd=tmp_path, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    database = tmp_path / "m" / "tuning.sqlite"
    deadline = time.monotonic() + 300
    finished: list = []
    while time.monotonic() < deadline and driver.poll() is None:
        if database.exists():
            try:
                finished = [t for t in trial_values(tmp_path / "m") if t[1] == "COMPLETE"]
            except sqlite3.Error:
                finished = []
            if len(finished) >= 2:
                break
        time.sleep(0.2)
    assert driver.poll() is None, driver.stderr.read() if driver.stderr else ""
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait(30)
    assert wait_for_no_orphans(driver.pid) == []
    done = cli(*command[3:], cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    after = trial_values(tmp_path / "m")
    assert set(finished) <= set(after)  # nothing finished was lost
    assert len([t for t in after if t[1] in ("COMPLETE", "PRUNED")]) == 6
    assert group_alive(driver.pid) == []


# ---------------------------------------------------------------------- bad input
def _space(**changes: object) -> dict:
    raw = json.loads(json.dumps(TUNE))
    raw["tuning"]["space"].update(changes)
    return raw


@pytest.mark.parametrize(
    ("config", "args", "expected"),
    [
        (TUNE, ["--trials", "0"], "--trials › must be at least 1 (got: 0)"),
        (TUNE, ["--timeout", "-1"], "--timeout › must be a number of seconds above 0"),
        (TUNE, ["--universal"], "name SYMBOLs, or --universal"),
        (_space(hidden_size={"low": 8, "high": 4}), [], "tuning.space.hidden_size › low 8 is above high 4"),
        (_space(window={"low": 8, "high": 8}), [], "tuning.space.window › low and high are both 8"),
        (_space(cell={"choices": []}), [], "tuning.space.cell › give two different choices"),
        (_space(hiden_size={"low": 4, "high": 8}), [], "tuning.space.hiden_size › unknown key"),
        (_space(epochs={"low": 1, "high": 20000}), [], "20000 is not a valid model.epochs"),
    ],
    ids=["trials-0", "timeout", "both", "inverted", "empty", "no-choice", "unknown-name", "out-of-bounds"],
)
def test_bad_tuning_input_is_one_line_and_exit_2(tmp_path, config, args, expected):
    write_config(tmp_path / "c.json", config)
    done = cli("tune", "AAPL", "--as-of", AS_OF, "--config", "c.json", "--models", "m", *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and expected in done.stderr, done.stderr
    assert not (tmp_path / "m" / "tuning.sqlite").exists()


def test_a_tuning_without_a_date_is_refused(tmp_path):
    done = cli("tune", "AAPL", "--models", "m", cwd=tmp_path)
    assert done.returncode == 2 and "give --as-of DATE" in done.stderr and done.stderr.count("\n") == 1


def test_a_damaged_study_file_and_a_study_of_another_space_are_one_line(tmp_path):
    write_config(tmp_path / "c.json", TUNE)
    base = (
        "tune",
        "AAPL",
        "--as-of",
        AS_OF,
        "--config",
        "c.json",
        "--models",
        "m",
        "--trials",
        "1",
        "--backend",
        "sync",
        "-q",
    )
    assert cli(*base, cwd=tmp_path).returncode == 0
    write_config(tmp_path / "c.json", _space(epochs={"low": 2, "high": 5}))
    other = cli(*base, cwd=tmp_path)
    assert other.returncode == 2 and other.stderr.count("\n") == 1
    assert "was made with another search space" in other.stderr and "--restart" in other.stderr
    assert cli(*base, "--restart", cwd=tmp_path).returncode == 0
    (tmp_path / "m" / "tuning.sqlite").write_bytes(b"this is no database" * 100)
    damaged = cli(*base, cwd=tmp_path)
    assert damaged.returncode == 2 and damaged.stderr.count("\n") == 1, damaged.stderr
    assert "not a readable study file" in damaged.stderr
    assert TunedStore(tmp_path / "m").all("specific", "AAPL")  # the choice made before is kept
