"""Opening the state folder's SQLite files: WAL, a short busy wait, and one-line errors for a corrupt or
locked file."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from lstm_plugin.core.errors import LSTMPluginError

__all__ = ["StateError", "connect", "transaction"]


class StateError(LSTMPluginError):
    """The state folder cannot be used as it is (corrupt, locked, another run's or another config's)."""


def connect(path: Path, schema: str, readonly: bool = False) -> sqlite3.Connection:
    """``path`` opened in WAL mode with ``schema`` applied (``readonly``: as it is, for reading while a
    run writes); a damaged or busy file raises :class:`StateError`."""
    try:
        if readonly:
            db = sqlite3.connect(
                f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0, check_same_thread=False
            )
        else:
            db = sqlite3.connect(path, timeout=2.0, isolation_level="DEFERRED", check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        checked = db.execute("PRAGMA quick_check").fetchone()[0]
        if checked != "ok":
            raise sqlite3.DatabaseError(checked)
        if not readonly:
            db.executescript(schema)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StateError(
                f"{path} › locked by another process ({exc}); stop the other run first"
            ) from None
        raise StateError(f"{path} › cannot open: {exc}") from None
    except sqlite3.DatabaseError as exc:
        raise StateError(
            f"{path} › damaged ({exc}); restore it from a backup or start a new --state folder"
        ) from None
    return db


@contextmanager
def transaction(db: sqlite3.Connection, path: Path) -> Iterator[sqlite3.Connection]:
    """One write transaction (all of it or none); a file another process holds locked is a
    :class:`StateError`."""
    try:
        with db:
            yield db
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StateError(
                f"{path} › locked by another process ({exc}); stop the other run first"
            ) from None
        raise StateError(f"{path} › cannot write: {exc}") from None
