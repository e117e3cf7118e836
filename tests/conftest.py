"""Shared fixtures: tiny model configs, real data slices, and one registry trained once per session."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import pytest

from lstm_plugin import Config, ModelRegistry, ModelTrainer, bundled_source
from lstm_plugin.core.config import validate_config

UNSEEN = Path(__file__).resolve().parent / "data"  # real stocks the package does not bundle (data/README.md)
BUNDLED = Path(__file__).resolve().parents[1] / "lstm_plugin" / "datasets" / "us_daily"

TINY = {
    "model": {
        "window": 10,
        "hidden_size": 8,
        "epochs": 6,
        "patience": 3,
        "lookback_years": 4.0,
        "min_samples": 200,
        "batch_size": 128,
    },
    "plugins": {"load_entry_points": False},
}


def write_config(path: Path, raw: dict) -> Path:
    """``raw`` as a config file at ``path`` (for commands that take ``--config``)."""
    path.write_text(json.dumps(raw))
    return path


def run_notebook(name: str, folder: Path, timeout: int = 600) -> list[dict]:
    """Execute ``notebooks/<name>`` top to bottom in ``folder``; its code cells' outputs, in order."""
    return [output for cell in run_notebook_cells(name, folder, timeout) for output in cell]


def run_notebook_cells(name: str, folder: Path, timeout: int = 600) -> list[list[dict]]:
    """Execute ``notebooks/<name>`` top to bottom in ``folder``; each code cell's outputs."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    notebook = nbformat.read(Path(__file__).resolve().parents[1] / "notebooks" / name, as_version=4)
    nbclient.NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(folder)}}
    ).execute()
    return [list(cell.get("outputs", [])) for cell in notebook.cells if cell.cell_type == "code"]


def tiny_config(**sections: dict) -> Config:
    raw = json.loads(json.dumps(TINY))
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return validate_config(raw, "tiny")


@pytest.fixture
def config() -> Config:
    return tiny_config()


@pytest.fixture(scope="session")
def source():
    return bundled_source()


def unseen_folder(folder: Path, symbols: tuple[str, ...]) -> Path:
    """Plain ``SYMBOL.csv`` files (Backtrader's feeds read no gzip) of unbundled stocks, in ``folder``."""
    for symbol in symbols:
        (folder / f"{symbol}.csv").write_bytes(gzip.decompress((UNSEEN / f"{symbol}.csv.gz").read_bytes()))
    return folder


@pytest.fixture(scope="session")
def unseen_csv_dir(tmp_path_factory) -> Path:
    """A folder of real CSV files the package does not bundle: ABT, AMD, DIS."""
    return unseen_folder(tmp_path_factory.mktemp("unseen_csv"), ("ABT", "AMD", "DIS"))


UNSEEN_SIX = ("ABT", "AMD", "AMGN", "CL", "DIS", "MMM")


@pytest.fixture(scope="session")
def unseen_six_dir(tmp_path_factory) -> Path:
    """Six real stocks the package does not bundle, as Yahoo-style CSV files."""
    return unseen_folder(tmp_path_factory.mktemp("unseen_six"), UNSEEN_SIX)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, source):
    """A registry with AAPL and MSFT (specific, as of 2015-12-31) and a universal model over 4 symbols.

    Read-only for tests: copy it (``copy_registry``) before changing anything.
    """
    root = tmp_path_factory.mktemp("registry")
    cfg = tiny_config()
    registry = ModelRegistry(root, cfg.registry.keep_versions)
    trainer = ModelTrainer(cfg, source, registry, progress=False)
    outcomes = {s: trainer.train_specific(s, as_of="2015-12-31") for s in ("AAPL", "MSFT")}
    outcomes["universal"] = trainer.train_universal(["AAPL", "MSFT", "KO", "XOM"], as_of="2015-12-31")
    return {"root": root, "config": cfg, "registry": registry, "outcomes": outcomes}


@pytest.fixture
def copy_registry(trained, tmp_path):
    def make() -> ModelRegistry:
        target = tmp_path / "registry_copy"
        shutil.copytree(trained["root"], target)
        return ModelRegistry(target, trained["config"].registry.keep_versions)

    return make


#: Fixtures that train real models, run whole backtests or start a cluster: every test using one is
#: ``slow`` (left out by ``pytest -m "not slow"``, the inner loop), with the tests marked by hand.
SLOW_FIXTURES = {"trained_models", "first_run", "sync_run", "ray_cluster", "reference", "backtested"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
