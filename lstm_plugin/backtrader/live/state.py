"""A paper run's state folder before anything trades: who may use it, whose run it is, and whether its
journal and bar store still belong together.

- **The lock** (``paper.lock``): one process at a time; a read-only or full folder is one line.
- **The identity** (the journal's ``meta``): the config's decision settings, the symbols (as a set: their
  order on the command line is not part of the run), the start and the cash. A resume with other
  settings is refused naming the first setting that differs; a setting added by a newer version of the
  plugin is accepted at its default; a journal written before the settings were stored is checked
  against the fingerprint its version computed (:func:`legacy_fingerprint`).
- **Journal and bar store together**: the store appends a day before the journal commits it, so the
  store may hold one day the journal has not finished — never more. A store with released days beside
  an empty journal, or several days ahead of it, means the journal was lost (deleted, emptied,
  restored from an old backup): starting again would send every one of those days' orders again, so
  it is refused, with what to do.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

import pandas as pd

from lstm_plugin.backtrader.live.journal import Book, Journal
from lstm_plugin.backtrader.live.sqlite import StateError, disk_failure
from lstm_plugin.backtrader.live.store import BarStore
from lstm_plugin.core.config import Config

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

LOCK_FILE = "paper.lock"

#: Settings that say where things are, how fast they run or how much is kept, not what the run decides.
NOT_FINGERPRINTED: dict[str, Any] = {
    "data": {"symbols", "path", "max_move", "max_file_mb"},
    "registry": {"path", "keep_versions"},
    "inference": True,
    "lstm_service": {"backend", "training_threads", "enable_monitoring", "ray", "job_timeout"},
    "backtest": {"backend", "workers"},
}
#: What the first journals fingerprinted: the settings of that version, less those added since
#: (:func:`legacy_fingerprint`); add every new setting here.
_LEGACY_EXCLUDED: dict[str, Any] = {
    "data": {"symbols", "path", "max_move", "max_file_mb"},
    "registry": {"path"},
    "inference": True,
    "lstm_service": {
        "backend": True,
        "training_threads": True,
        "enable_monitoring": True,
        "job_timeout": True,
        "ray": {"connect_timeout"},
    },
    "model": {"min_test_samples", "warm_start", "warm_start_epochs"},
    "tuning": True,
    "lstm": {"exits", "risk"},
}


def decision_settings(config: Config) -> dict[str, Any]:
    """Every setting that shapes the run's decisions, as plain data (not :data:`NOT_FINGERPRINTED`)."""
    return config.model_dump(mode="json", exclude=NOT_FINGERPRINTED)


def _digest(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def config_fingerprint(config: Config) -> str:
    """A short digest of :func:`decision_settings`: two configs with the same one make the same run."""
    return _digest(decision_settings(config))


#: defaults of version 0.1.0 that changed since: (the section's path, the key, the default then)
_LEGACY_DEFAULTS: tuple[tuple[tuple[str, ...], str, Any], ...] = (
    (("model",), "patience", 5),
    (("lstm_service", "universal"), "retrain_days", 90),
)


def legacy_fingerprint(config: Config) -> str:
    """The fingerprint version 0.1.0 wrote into its journals for this config: its settings as that version
    had them (``backtest.backend`` defaulted to ``local`` then, and a setting the config leaves out to its
    default then), so its paper runs resume; their trainings from then on use today's defaults."""
    payload = config.model_dump(mode="json", exclude=_LEGACY_EXCLUDED)
    if payload["backtest"]["backend"] is None:
        payload["backtest"]["backend"] = "local"
    for path, key, then in _LEGACY_DEFAULTS:
        section: Any = config
        values = payload
        for name in path:
            section, values = getattr(section, name), values[name]
        if key not in section.model_fields_set:
            values[key] = then
    return _digest(payload)


def _first_difference(stored: Any, current: Any, default: Any, path: str = "") -> str | None:
    """The first setting where ``current`` departs from ``stored`` (a setting ``stored`` lacks must hold its
    ``default``), as ``path (was, now)``; ``None`` when they make the same run."""
    if isinstance(current, dict) and isinstance(stored, dict):
        for key in sorted(current):
            where = f"{path}.{key}" if path else key
            below = default.get(key) if isinstance(default, dict) else None
            if key not in stored:
                if current[key] != below:
                    return f"{where} (not set then, now {_short(current[key])})"
                continue
            found = _first_difference(stored[key], current[key], below, where)
            if found:
                return found
        return None
    return None if stored == current else f"{path} (was {_short(stored)}, now {_short(current)})"


def check_identity(
    journal: Journal, identity: dict[str, Any], config: Config, folder: Path
) -> dict[str, Any]:
    """The journal's identity, stamped with ``identity`` when it is new, else checked against it (see the
    module docstring) and brought up to date; a :class:`StateError` when it is another run's."""
    existing, new = journal.claim(identity)
    if new:
        return existing
    for key in ("symbols", "start", "cash"):
        was, now = existing.get(key), identity[key]
        if key == "symbols" and isinstance(was, list):
            was = sorted(was)
        if was != now:
            raise StateError(
                f"{folder} › holds a paper run with other {key} ({_short(was)}, now {_short(now)}); use a "
                "new --state folder"
            )
    settings = identity["settings"]
    if "settings" in existing:
        changed = _first_difference(existing["settings"], settings, decision_settings(Config()))
    elif existing.get("config") in (identity["config"], legacy_fingerprint(config)):
        changed = None
    else:
        changed = f"settings with fingerprint {existing.get('config')} (now {identity['config']})"
    if changed:
        raise StateError(
            f"{folder} › holds a paper run with another config: {changed}; use a new --state folder"
        )
    journal.update_meta({"config": identity["config"], "settings": settings, "symbols": identity["symbols"]})
    return journal.meta()


def _short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else value
    return text if len(text) <= 40 else text[:37] + "..."


def lock_state(folder: Path) -> IO[str]:
    """The open, exclusively locked ``paper.lock`` of ``folder`` (made if need be): held until closed."""
    if folder.is_symlink():
        raise StateError(f"{folder} › is a link; give the real folder")
    if folder.exists() and not folder.is_dir():
        raise StateError(f"{folder} › is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle = open(folder / LOCK_FILE, "a+")  # noqa: SIM115 - held open as the lock until closed
    except OSError as exc:
        raise disk_failure(folder, "cannot use the state folder", exc) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "another process"
        handle.close()
        raise StateError(f"{folder} › in use by {holder}; stop that run first") from None
    try:
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
    except OSError as exc:
        handle.close()
        raise disk_failure(folder, "cannot write paper.lock", exc) from None
    return handle


def checked_book(journal: Journal, store: BarStore, cash: float, accept: bool, folder: Path) -> Book:
    """The book the journal left, once the journal and the bar store are known to belong together and the
    book agrees with the fills (or ``accept``: the disagreement is settled and journaled, once)."""
    book = journal.book(cash)
    released = store.released_days()
    if book.last_day is not None and book.last_day not in released:
        raise StateError(
            f"{folder} › the journal ends on {book.last_day:%Y-%m-%d}, a day the bar store never released"
        )
    ahead = released[released > (book.last_day or pd.Timestamp.min)]
    if len(ahead) > 1:
        since = "is empty" if book.last_day is None else f"ends on {book.last_day:%Y-%m-%d}"
        span = f"{ahead[0]:%Y-%m-%d} .. {ahead[-1]:%Y-%m-%d}"
        raise StateError(
            f"{folder} › the bar store released {len(ahead)} days ({span}) the journal does not have (it "
            f"{since}): the journal was lost or replaced, and going on would send those days' orders again; "
            "restore journal.sqlite (with journal.sqlite-wal) from a backup, or start a new --state folder"
        )
    problems = journal.reconcile(book, cash)
    if problems:
        message = f"reconciliation › {'; '.join(problems)}"
        if not accept:
            raise StateError(
                f"{folder} › {message}; nothing traded (rerun with --accept-state to continue from the book)"
            )
        logger.warning("%s; continuing from the book (--accept-state)", message)
        journal.accept(book, cash, message)
    return book
