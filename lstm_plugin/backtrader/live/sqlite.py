"""Opening the state folder's SQLite files: WAL, a short busy wait, and one-line errors for a corrupt,
locked, foreign or damaged file.

A state file is either new (no tables: the schema is created) or holds every table of its kind: a
file with none of them is another program's, and one that lost a table (``DROP TABLE``, a bad
restore) is damaged — both are refused, never silently re-created, because a table created again
empty would make a run forget what it did (and resend its orders).
"""

from __future__ import annotations

import errno
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from lstm_plugin.core.errors import LSTMPluginError

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class StateError(LSTMPluginError):
    """The state folder cannot be used as it is (corrupt, locked, another run's or another config's)."""


def disk_failure(path: Path, action: str, exc: OSError) -> StateError:
    """A read-only or full disk, said in one line: the state stays as the last whole day left it."""
    detail = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM):
        detail += _INTACT
    return StateError(f"{path} › {action}: {detail}")


_INTACT = "; the state is intact: free space or make the folder writable, then resume"


def _intact(exc: sqlite3.Error) -> str:
    """What to do when SQLite cannot write for want of space or permission: each day is one transaction,
    so nothing half-written stays."""
    text = str(exc).lower()
    return _INTACT if "disk is full" in text or "readonly" in text or "read-only" in text else ""


def _tables(db: sqlite3.Connection) -> set[str]:
    return {
        row[0]
        for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if not str(row[0]).startswith("sqlite_")
    }


def _check_tables(db: sqlite3.Connection, path: Path, required: frozenset[str], kind: str) -> bool:
    """Whether the file is new (no tables); a :class:`StateError` when it is another program's or lost a
    table of ``required``."""
    found = _tables(db)
    if not found:
        return True
    if not found & required:
        held = ", ".join(sorted(found)[:5])
        raise StateError(f"{path} › not a {kind} (it holds tables {held}); give another --state folder")
    missing = sorted(required - found)
    if missing:
        what = f"{', '.join(missing)} table{'s are' if len(missing) > 1 else ' is'} missing"
        raise StateError(
            f"{path} › damaged: its {what}; restore it from a backup or start a new --state folder"
        )
    return False


def connect(
    path: Path,
    schema: str,
    readonly: bool = False,
    *,
    required: Iterable[str] = (),
    kind: str = "paper state file",
    upgrade: Callable[[sqlite3.Connection], None] | None = None,
) -> sqlite3.Connection:
    """``path`` opened in WAL mode with ``schema`` applied (``readonly``: as it is, for reading while a
    run writes). An existing file must hold every table of ``required`` (see the module docstring);
    ``upgrade(db)`` then adds what newer versions keep (it runs before ``schema``). A damaged, foreign or
    busy file raises :class:`StateError`."""
    tables = frozenset(required)
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
        new = _check_tables(db, path, tables, kind) if tables else False
        if readonly and new:
            raise StateError(f"{path} › empty: no {kind} here")
        if not readonly:
            if upgrade is not None and not new:
                with db:
                    upgrade(db)
            db.executescript(schema)
    except sqlite3.OperationalError as exc:
        if "locked" in str(exc) or "busy" in str(exc):
            raise StateError(
                f"{path} › locked by another process ({exc}); stop the other run first"
            ) from None
        raise StateError(f"{path} › cannot open: {exc}{_intact(exc)}") from None
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
        raise StateError(f"{path} › cannot write: {exc}{_intact(exc)}") from None
