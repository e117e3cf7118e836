"""What the dashboard watches: one registry, paper state folders and report folders, checked once at start.

Folders come from the command line (or :func:`~lstm_plugin.dashboard.snapshot`) only; no request names
a path. At start a folder that is missing or is not what it is given as is one line
(:class:`DashboardError`, exit 2). Defaults follow the other commands: the config's registry
(``./lstm_models``), ``./lstm_paper`` when it is a paper state folder, and every report folder (one
holding ``manifest.json`` and ``summary.json``) directly under the working folder or one level down.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lstm_plugin.backtrader.live.journal import JOURNAL_FILE
from lstm_plugin.backtrader.report import MANIFEST
from lstm_plugin.core.clock import Clock, default_clock
from lstm_plugin.core.config import Config, load_config
from lstm_plugin.core.data import DataSource, open_source
from lstm_plugin.core.errors import LSTMPluginError
from lstm_plugin.core.statuses import ModelStatus
from lstm_plugin.serving.forecast import ForecastService
from lstm_plugin.serving.registry import MODEL_TYPES, ModelRegistry
from lstm_plugin.serving.track_record import TRACK_FILE
from lstm_plugin.training.monitoring import SNAPSHOT_FILE, read_snapshot, snapshot_states

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

DEFAULT_STATE = "lstm_paper"
REPORT_MARKS = (MANIFEST, "summary.json")
_REGISTRY_ENTRIES = {*MODEL_TYPES, SNAPSHOT_FILE, TRACK_FILE, "tuning"}


class DashboardError(LSTMPluginError):
    """A folder given to the dashboard that it cannot watch (said in one line at start)."""


@dataclass
class Sources:
    """The config, data, registry and folders every page reads."""

    config: Config
    source: DataSource
    registry: ModelRegistry
    clock: Clock
    states: list[Path] = field(default_factory=list)
    reports: list[Path] = field(default_factory=list)
    forecasts: ForecastService = field(init=False)
    training: dict[str, ModelStatus] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        self.forecasts = ForecastService(
            self.config, self.registry, self.source, self.clock, training_state=self.training.get
        )

    def read_training(self) -> None:
        """Which symbols a running service is training or has queued, from its last snapshot (read again
        before each reading of the Models page)."""
        self.training.clear()
        self.training.update(snapshot_states(read_snapshot(self.registry.root)))

    def symbols(self) -> list[str]:
        """The symbols the Models page lists: those the registry has models of and those of the data (the
        config's universe when it names one), as ``lstm-plugin status`` lists them."""
        universe = self.config.data.symbols or self.source.symbols()
        return sorted(set(self.registry.symbols("specific")) | set(universe))


def _registry_folder(path: Path, given: bool) -> Path:
    if not path.exists():
        if given:
            raise DashboardError(f"--models › {path} does not exist")
        return path  # the default, before any training: every model reads as not available
    if not path.is_dir():
        raise DashboardError(f"--models › {path} is not a folder")
    entries = {e.name for e in os.scandir(path) if not e.name.startswith(".")}
    if entries and not entries & _REGISTRY_ENTRIES:
        raise DashboardError(
            f"--models › {path} is not a model registry (no {', '.join(MODEL_TYPES)} folder); give the "
            "folder `lstm-plugin train` writes to"
        )
    return path


def _state_folder(path: Path) -> Path:
    from lstm_plugin.backtrader.live.journal import Journal

    if not path.is_dir():
        raise DashboardError(f"--state › {path} is not a folder")
    if not (path / JOURNAL_FILE).is_file():
        raise DashboardError(f"--state › {path} is not a paper state folder (no {JOURNAL_FILE})")
    Journal(path, readonly=True).close()  # a damaged or foreign journal: its one line, now
    return path


def _report_folder(path: Path) -> Path:
    if not path.is_dir():
        raise DashboardError(f"--reports › {path} is not a folder")
    missing = [name for name in REPORT_MARKS if not (path / name).is_file()]
    if missing:
        raise DashboardError(
            f"--reports › {path} is not a backtest report folder (no {' or '.join(missing)})"
        )
    return path


def find_reports(base: Path) -> list[Path]:
    """Report folders directly under ``base`` or one level down, in name order."""
    found = []
    for candidate in sorted([base, *base.glob("*/"), *base.glob("*/*/")]):
        if candidate.is_dir() and all((candidate / n).is_file() for n in REPORT_MARKS):
            found.append(candidate)
    return found


def open_sources(
    models: str | Path | None = None,
    states: Iterable[str | Path] | None = None,
    reports: Iterable[str | Path] | None = None,
    *,
    config: str | Path | Config | None = None,
    data: str | Path | None = None,
    clock: Clock | None = None,
) -> Sources:
    """The sources, checked: a :class:`DashboardError` (or the config's or data's own error) names the first
    that cannot be watched. ``None`` takes the defaults (module docstring)."""
    settings = config if isinstance(config, Config) else load_config(None if config is None else str(config))
    source = open_source(str(data) if data else settings.data.path, settings.data.max_file_mb)
    root = _registry_folder(Path(models or settings.registry.path), models is not None)
    registry = ModelRegistry(root, settings.registry.keep_versions)
    if states is None:
        default = Path(DEFAULT_STATE)
        state_folders = [default] if (default / JOURNAL_FILE).is_file() else []
    else:
        state_folders = [_state_folder(Path(s)) for s in states]
    report_folders = (
        find_reports(Path.cwd()) if reports is None else [_report_folder(Path(r)) for r in reports]
    )
    return Sources(
        settings,
        source,
        registry,
        clock or default_clock(source),
        [Path(s) for s in state_folders],
        report_folders,
    )
