"""Every page's data from the watched sources, each source guarded on its own, the costly ones cached.

A source that cannot be read now (a journal being replaced, a damaged summary, a registry folder that
vanished) gives its page an ``{"error": ...}`` panel in one line while the other sources keep working;
nothing here raises to the web server. The Models page is recomputed only when the registry, the track
record, the tunings or the clock changed (:meth:`Board.models_fingerprint`), and at most every
:data:`RECOMPUTE_SECONDS`, so a page polled every second costs a few hundred ``stat`` calls, not a
rescoring.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from lstm_plugin.core.errors import LSTMPluginError
from lstm_plugin.dashboard.models_view import ModelRow, model_rows, symbol_detail
from lstm_plugin.dashboard.paper_view import paper_view
from lstm_plugin.dashboard.reports_view import PICTURES, report_view
from lstm_plugin.dashboard.sources import Sources
from lstm_plugin.dashboard.training_view import training_view
from lstm_plugin.serving.registry import MODEL_TYPES, UNIVERSAL_NAME
from lstm_plugin.serving.track_record import TRACK_FILE
from lstm_plugin.training.monitoring import SNAPSHOT_FILE

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

logger = logging.getLogger(__name__)
T = TypeVar("T")
#: The Models page is read again at most this often (wall seconds) while what it depends on changes (a
#: replay records forecasts every few milliseconds): a page polled every second still shows a change
#: within two, and a watched run shares its cores with one reading a second, not one per poll.
RECOMPUTE_SECONDS = 0.75
#: What a source may raise while it is read: said on its panel, never a 500 page.
_SAID: dict[str, str] = {}  # the last problem logged for each source
SOURCE_ERRORS = (LSTMPluginError, OSError, sqlite3.Error, ValueError, KeyError, TypeError)


def guarded(label: str, read: Callable[[], T]) -> T | dict[str, str]:
    """``read()``, or ``{"error": "<label>: <why>"}`` when the source cannot be read now."""
    try:
        return read()
    except SOURCE_ERRORS as exc:
        text = " ".join(str(exc).split()) or type(exc).__name__
        if _SAID.get(label) != text:  # once per problem, not once per poll
            _SAID[label] = text
            # a file's own problem is on its panel; anything else may be ours: its traceback goes to the log
            logger.warning("%s: %s", label, text, exc_info=not isinstance(exc, LSTMPluginError | OSError))
        return {"error": f"{label}: {text}"}


def _stamp(path: Path) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size)


class Board:
    """The pages' data over one :class:`Sources` (thread-safe: Starlette runs each request in a thread)."""

    def __init__(self, sources: Sources) -> None:
        self.sources = sources
        self._lock = threading.Lock()
        self._models: tuple[tuple, float, list[ModelRow]] | None = None  # (fingerprint, when, rows)

    def models_fingerprint(self) -> tuple:
        """What the Models page depends on: every model folder's and index's stamp, the track record's files,
        the tunings and the clock's now."""
        root = self.sources.registry.root
        stamps: list[Any] = [str(self.sources.clock.now())]
        for model_type in MODEL_TYPES:
            base = root / model_type
            try:
                entries = sorted(os.scandir(base), key=lambda e: e.name)
            except OSError:
                continue
            for entry in entries:
                folder = Path(entry.path)
                stamps.append((entry.name, _stamp(folder), _stamp(folder / "index.json")))
        for name in (
            TRACK_FILE,
            TRACK_FILE + "-wal",
            SNAPSHOT_FILE,
            *(f"tuning/{kind}" for kind in MODEL_TYPES),
        ):
            stamps.append(_stamp(root / name))
        return tuple(stamps)

    def models(self) -> list[ModelRow] | dict[str, str]:
        def read() -> list[ModelRow]:
            with self._lock:  # one reading at a time: a second caller waits for the first's rows
                now = time.monotonic()
                if self._models is not None and now - self._models[1] < RECOMPUTE_SECONDS:
                    return self._models[2]
                key = self.models_fingerprint()
                if self._models is not None and self._models[0] == key:
                    return self._models[2]
                self._models = (key, now, model_rows(self.sources))
                return self._models[2]

        return guarded(f"registry {self.sources.registry.root}", read)

    def symbol_names(self) -> set[str]:
        """The names a symbol page may be asked for: the data's and the registry's symbols, and the pool's."""
        return {*self.sources.symbols(), UNIVERSAL_NAME}

    def symbol(self, symbol: str) -> dict[str, Any]:
        """One symbol's page; :class:`KeyError` for a name neither the registry nor the data lists."""
        return symbol_detail(self.sources, symbol)

    def training(self) -> dict[str, Any]:
        root = self.sources.registry.root
        return guarded(f"service snapshot in {root}", lambda: training_view(self.sources))

    def paper(self) -> list[dict[str, Any]]:
        return [self._paper(folder) for folder in self.sources.states]

    def _paper(self, folder: Path) -> dict[str, Any]:
        return guarded(f"paper state {folder}", lambda: paper_view(folder)) | {"state": str(folder)}

    def backtests(self) -> list[dict[str, Any]]:
        return [self._report(i, folder) for i, folder in enumerate(self.sources.reports)]

    def _report(self, index: int, folder: Path) -> dict[str, Any]:
        where = {"index": index, "folder": str(folder)}
        return guarded(f"report {folder}", lambda: report_view(folder)) | where

    def picture(self, index: int, name: str) -> bytes | None:
        """A report's picture by its position in the command line's list and a known name, else ``None``."""
        if name not in PICTURES or not 0 <= index < len(self.sources.reports):
            return None
        try:
            return (self.sources.reports[index] / name).read_bytes()
        except OSError:
            return None
