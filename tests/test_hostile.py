"""Hostile input, run as a user would: real commands on broken CSV files, configs, registries and report
folders.

Every case asserts three things: the exit status (2 for the user's mistake, 0 where a broken model
is skipped and an older one serves), the message that names the culprit (one ``error:`` line on
stderr and nothing else for exit 2; no traceback ever), and that the versions registered before the
command are all still there and still served. Add a row to the table for every new way in: the rows
are in ``tests/hostile_cases.py``, ``tests/hostile_registry_cases.py`` and ``tests/hostile_round_two.py``, the
builders in
``tests/hostile_builders.py`` and ``tests/hostile_report_builders.py``.

The commands run as real processes, several at a time, once per module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from lstm_plugin import ModelRegistry

from .conftest import TINY
from .hostile_builders import MODELS, SERVED_AT, Case
from .hostile_cases import INPUT_CASES
from .hostile_registry_cases import REGISTRY_CASES
from .hostile_round_two import ROUND_TWO_CASES

CASES: list[Case] = [*INPUT_CASES, *REGISTRY_CASES, *ROUND_TWO_CASES]


# ---------------------------------------------------------------------- running
@dataclass
class Outcome:
    folder: Path
    proc: subprocess.CompletedProcess | BaseException  # the exception when the case's setup failed
    before: dict[tuple[str, str], str]


def _run_case(case: Case, root: Path, models: Path) -> Outcome:
    try:
        return _run(case, root, models)
    except Exception as exc:
        return Outcome(root / case.name, exc, {})


def _run(case: Case, root: Path, models: Path) -> Outcome:
    folder = root / case.name
    folder.mkdir()
    shutil.copytree(models, folder / "M")
    (folder / "tiny.json").write_text(json.dumps(TINY))
    registry = ModelRegistry(folder / "M")
    before = {key: registry.resolve(*key).metadata["sha256"] for key in MODELS}
    args = case.prepare(folder)
    if "--models" not in args:
        args += ["--models", "M"]
    if "--config" not in args and args[0] in ("train", "predict", "status", "service", "backtest"):
        args += ["--config", "tiny.json"]
    proc = subprocess.run(
        [sys.executable, "-m", "lstm_plugin", *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=240,
        env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
    )
    return Outcome(folder, proc, before)


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory, trained) -> dict[str, Outcome]:
    root = tmp_path_factory.mktemp("hostile")
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {case.name: pool.submit(_run_case, case, root, trained["root"]) for case in CASES}
        return {name: future.result() for name, future in futures.items()}


def test_the_table_is_large_and_names_are_unique():
    assert len(CASES) >= 60
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_input(outcomes, case):
    outcome = outcomes[case.name]
    proc = outcome.proc
    if isinstance(proc, BaseException):
        raise proc
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.returncode == case.exit_code, proc.stderr
    if case.exit_code == 2:
        assert len(lines) == 1 and lines[0].startswith("lstm-plugin: error: "), proc.stderr
        assert re.search(case.message, lines[0]), lines[0]
    else:
        assert all(line.startswith("lstm-plugin: ") for line in lines), proc.stderr
        if case.message == r"^$":
            assert not lines, proc.stderr
        else:
            assert any(re.search(case.message, line) for line in lines), proc.stderr
    if case.check is not None:
        assert case.check(proc, outcome.folder) is not False
    registry = ModelRegistry(outcome.folder / "M")
    for key, digest in outcome.before.items():
        if key[1] in case.damaged:
            continue
        served = registry.resolve(*key, SERVED_AT)
        assert served is not None and served.version == 1 and served.metadata["sha256"] == digest, key
