"""A run's own view of a shared registry: it serves only the models the run itself trained or reused.

A backtest into a registry that earlier runs used (other symbols, spans, configs, strategies) must
give the bytes it gives into an empty one. Serving "the newest version trained by t" from a shared
folder breaks that: another run's universal model, pooled over four symbols, or its model of AAPL
trained on a date this run never trains on, would answer this run's forecasts. So a
:class:`RunRegistry` lists only the versions *adopted* during the run:

- a version the run publishes;
- a registered version with the training key of a training the run asks for — the same type, name,
  config, features, torch threads, plugins and data (for the universal model: its symbol set and each
  symbol's bars) — *stamped at the same time*, so its bytes, provenance and dates are those the run
  would write. A version of the same key stamped at another time is not reused from another run.

Each adopted version gets the run's own stage (promoted or shelved, decided against the model the
*run* serves; :mod:`lstm_plugin.training.trainer`) and the run's own version number, 1, 2, … per
model in the order the run adopted them, which is what it would be in an empty registry. The file
behind it is the shared one (``onnx_path``). Everything is written to, and read from, the shared
folders: the view only chooses. docs/models.md, *Shared registries*.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import pandas as pd

from lstm_plugin.core.statuses import ModelType
from lstm_plugin.model.model_files import ModelMetadata, ModelRecord
from lstm_plugin.serving.registry import Commit, ModelRegistry, served_and_newest

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class RunRegistry(ModelRegistry):
    """See the module docstring; reads go through the run's adopted versions, writes to the folder."""

    def __init__(self, root: str | Path, keep_versions: int = 50) -> None:
        super().__init__(root, keep_versions)
        self._own: dict[tuple[str, str], list[ModelRecord]] = {}  # newest first
        self._adopting = threading.Lock()

    def shared_records(self, model_type: ModelType, name: str) -> list[ModelRecord]:
        """Every version in the folder, whoever wrote it."""
        return super().records(model_type, name)

    def records(self, model_type: ModelType, name: str) -> list[ModelRecord]:
        """The versions this run adopted, newest (by ``trained_at``, then the run's version) first."""
        with self._adopting:
            return list(self._own.get((model_type, name), ()))

    def symbols(self, model_type: ModelType = "specific") -> list[str]:
        with self._adopting:
            return sorted(name for kind, name in self._own if kind == model_type)

    def in_use(self, model_type: ModelType, name: str) -> set[int]:
        """The folder's numbers of the versions this run serves: retention never removes them mid-run."""
        return {int(r.metadata.get("registry_version", r.version)) for r in self.records(model_type, name)}

    def owns(self, record: ModelRecord) -> bool:
        return any(mine is record for mine in self.records(record.model_type, record.symbol))

    def training_keys(
        self, model_type: ModelType, name: str, trained_at: pd.Timestamp
    ) -> tuple[frozenset[str], bool]:
        """The run's own keys trained by ``trained_at`` and the keys of any version stamped at that very
        time; and whether one is."""
        own = [r for r in self.serving_records(model_type, name) if r.trained_at <= trained_at]
        same_time = [
            r
            for r in self.shared_records(model_type, name)
            if r.trained_at == trained_at and self._reader.usable(r)
        ]
        return frozenset(str(r.metadata.get("training_key")) for r in own + same_time), bool(same_time)

    def find_training(
        self, model_type: ModelType, name: str, training_key: str, trained_at: pd.Timestamp | None = None
    ) -> ModelRecord | None:
        """The run's own version of that training, else a shared one stamped at ``trained_at``."""
        mine = super().find_training(model_type, name, training_key)  # reads the run's own records
        if mine is not None:
            return mine
        for record in self.shared_records(model_type, name):
            if (
                record.metadata.get("training_key") == training_key
                and record.trained_at == trained_at
                and self._reader.usable(record)
            ):
                return record
        return None

    def commit(
        self,
        model_type: ModelType,
        name: str,
        onnx_bytes: bytes,
        metadata: Mapping[str, Any],
        *,
        unless_registered: bool = False,
    ) -> Commit:
        """Write the version to the folder, then adopt it with the stage its metadata gives. A version
        another run committed meanwhile (``unless_registered``) comes back as the folder's: the trainer
        adopts it with the stage this run decides."""
        done = super().commit(model_type, name, onnx_bytes, metadata, unless_registered=unless_registered)
        if not done.written:
            return done
        record = done.record
        return Commit(self.adopt(record, record.stage, record.metadata.get("stage_reason")), True)

    def adopt(self, record: ModelRecord, stage: str, reason: str | None, **extra: Any) -> ModelRecord:
        """``record`` (a shared version) as one of the run's own: the run's stage, ``extra`` metadata, and
        the run's next version number (the folder's stays in ``registry_version``)."""
        metadata: dict[str, Any] = dict(record.metadata)
        with self._adopting:
            own = self._own.setdefault((record.model_type, record.symbol), [])
            metadata.update(
                extra, version=len(own) + 1, stage=stage, stage_reason=reason, registry_version=record.version
            )
            mine = ModelRecord(cast(ModelMetadata, metadata), record.onnx_path)
            own.append(mine)
            own.sort(key=lambda r: (r.trained_at, r.version), reverse=True)
        return mine

    def resolve_with_candidate(
        self, model_type: ModelType, name: str, as_of: pd.Timestamp | str | None = None
    ) -> tuple[ModelRecord | None, ModelRecord | None]:
        limit = None if as_of is None else pd.Timestamp(as_of)
        return served_and_newest(self.serving_records(model_type, name), limit)
