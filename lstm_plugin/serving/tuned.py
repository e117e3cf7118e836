"""The settings a tuning chose, by model and date: ``<registry>/tuning/<model type>/<name>.json``.

A record says which study chose them, from how many trials, with what best score, and as of which date.
A training at time T uses the newest record tuned at or before T (:meth:`TunedStore.at`), so a backtest
that tunes along its walk-forward never trains on settings chosen with bars it has not reached. The file
is rewritten atomically; a damaged one is one line, never a silent fallback to untuned settings.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.core.config import ModelSection
from lstm_plugin.core.config_tuning import apply_parameters
from lstm_plugin.core.errors import RegistryError
from lstm_plugin.core.files import FileStamp, identity, refuse_link, write_atomic
from lstm_plugin.core.statuses import ModelType
from lstm_plugin.model.model_files import ModelRecord

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

FOLDER = "tuning"


@dataclass(frozen=True)
class TunedSettings:
    """One tuning's choice for one model."""

    model_type: ModelType
    name: str
    #: when the choice became usable: trainings from then on use these settings
    tuned_at: str
    #: the study's date: its trials read bars up to it (for ``lstm-plugin tune``, ``tuned_at`` too)
    data_end: str
    study: str
    #: finished trials (complete or pruned) the choice was made from, and how many of them were pruned
    trials: int
    pruned: int
    #: the mean rank IC over the validation folds of the best trial, and of the config's own settings
    best_value: float
    default_value: float | None
    parameters: dict[str, Any]

    def settings(self, base: ModelSection) -> ModelSection:
        """``base`` with the chosen parameters in place."""
        return apply_parameters(base, self.parameters)

    def provenance(self) -> dict[str, Any]:
        """What a trained model's metadata and key record of the settings it was trained with."""
        return asdict(self)


class TunedStore:
    """Reads and appends tuned settings under a registry root; safe to share between threads."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._lock = threading.Lock()
        self._cache: dict[Path, tuple[FileStamp | None, list[TunedSettings]]] = {}

    def path(self, model_type: ModelType, name: str) -> Path:
        return self.root / FOLDER / model_type / f"{name}.json"

    def all(self, model_type: ModelType, name: str) -> list[TunedSettings]:
        """Every record of the model, oldest tuning first."""
        path = self.path(model_type, name)
        stamp = identity(path)
        with self._lock:
            cached = self._cache.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        records = [] if stamp is None else _read(path)
        with self._lock:
            self._cache[path] = (stamp, records)
        return records

    def at(self, model_type: ModelType, name: str, when: pd.Timestamp) -> TunedSettings | None:
        """The newest record tuned at or before ``when``."""
        chosen = None
        for record in self.all(model_type, name):
            if pd.Timestamp(record.tuned_at) <= when:
                chosen = record
        return chosen

    def provenance_at(self, model_type: ModelType, name: str, when: pd.Timestamp) -> dict[str, Any] | None:
        """:meth:`at`'s record as plain data (``status --json``), or ``None``."""
        record = self.at(model_type, name, when)
        return None if record is None else record.provenance()

    def add(self, record: TunedSettings) -> None:
        """Keep ``record``, replacing one of the same date."""
        path = self.path(record.model_type, record.name)
        for folder in (self.root / FOLDER, path.parent):
            refuse_link(folder)
            folder.mkdir(exist_ok=True)
        kept = [r for r in self.all(record.model_type, record.name) if r.tuned_at != record.tuned_at]
        records = sorted([*kept, record], key=lambda r: pd.Timestamp(r.tuned_at))
        write_atomic(path, json.dumps([asdict(r) for r in records], indent=1).encode())


def tuning_of(record: ModelRecord | None) -> dict[str, Any] | None:
    """The tuning whose settings a registered version was trained with (its metadata's ``tuning``)."""
    tuning = None if record is None else record.metadata.get("tuning")
    return dict(tuning) if isinstance(tuning, dict) else None


def _read(path: Path) -> list[TunedSettings]:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [TunedSettings(**item) for item in raw]
    except (OSError, UnicodeDecodeError, ValueError, TypeError) as exc:
        raise RegistryError(
            f"{path} › not a tuned-settings file ({type(exc).__name__}): move it away"
        ) from None
