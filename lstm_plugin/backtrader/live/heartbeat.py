"""``heartbeat.json``: what a paper run is doing now, for ``paper status`` and for monitoring.

Written atomically by the run (a reader sees the last beat whole); read defensively, because anything may
have replaced it: a beat that is not a JSON object, or a field of the wrong type, is reported as such
and left out, never a traceback. A heartbeat path that is a folder stops a run at once (one line),
before anything trades.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lstm_plugin.backtrader.live.sqlite import StateError, disk_failure
from lstm_plugin.core import jsonio
from lstm_plugin.core.files import write_atomic

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

HEARTBEAT_FILE = "heartbeat.json"
#: Each field a beat has, and the types it may take.
FIELDS: dict[str, tuple[type, ...]] = {
    "pid": (int,),
    "updated": (str,),
    "wall": (int, float),
    "state": (str,),
    "last_bar": (str, type(None)),
    "waiting_for": (list,),
    "source": (str,),
    "source_error": (str, type(None)),
    "training": (dict, type(None)),
}


def check_heartbeat_path(folder: Path) -> None:
    """A :class:`StateError` when ``heartbeat.json`` exists and is not a file (a run could never write it)."""
    path = folder / HEARTBEAT_FILE
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise StateError(f"{path} › is not a file; remove it (the run writes its heartbeat there)")


def write_heartbeat(folder: Path, beat: dict[str, Any]) -> None:
    try:
        write_atomic(folder / HEARTBEAT_FILE, jsonio.dumps(beat, indent=2).encode())
    except OSError as exc:
        raise disk_failure(folder / HEARTBEAT_FILE, "cannot write", exc) from None


def read_heartbeat(folder: Path) -> dict[str, Any] | None:
    """The last beat, with only the fields of the right type; ``None`` when there is none. A beat that is not
    an object reads as ``{"problem": why}``."""
    path = folder / HEARTBEAT_FILE
    if not path.is_file():
        return None
    try:
        beat = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError) as exc:
        return {"problem": f"unreadable ({type(exc).__name__})"}
    if not isinstance(beat, dict):
        return {"problem": f"not a JSON object (a {type(beat).__name__})"}
    kept = {k: v for k, v in beat.items() if k in FIELDS and isinstance(v, FIELDS[k])}
    wrong = sorted(k for k in FIELDS if k in beat and k not in kept)
    if wrong:
        kept["problem"] = f"fields of the wrong type left out: {', '.join(wrong)}"
    return kept
