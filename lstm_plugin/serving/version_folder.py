"""One model's folder of versions on disk: its ``index.json``, what a killed save left behind, the number of
the next version, and which versions retention keeps (pure functions over the listing and the records).

The files decide: ``index.json`` is a convenience for tools, rebuilt from the version files whenever it
disagrees with them, and a number it lists without a file was never committed (docs/models.md).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

from lstm_plugin.core.files import Inventory, identity, inventory, write_atomic
from lstm_plugin.model.model_files import ModelRecord

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

INDEX_FILE = "index.json"
#: ``warn_once(key, message, *args)``: a warning given once per key (the registry's reader)
WarnOnce = Callable[..., None]


def read_index(folder: Path, warn_once: WarnOnce) -> list[int] | None:
    """Versions ``index.json`` lists; ``None`` when it is missing or unreadable (warned once)."""
    pointer = folder / INDEX_FILE
    try:
        data = json.loads(pointer.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, RecursionError) as exc:
        warn_once(
            ("index", str(pointer), identity(pointer)),
            "%s is unreadable (%s); using the version files",
            pointer,
            exc,
        )
        return None
    versions = data.get("versions") if isinstance(data, dict) else None
    if not isinstance(versions, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v < 1_000_000 for v in versions
    ):
        warn_once(
            ("index", str(pointer), identity(pointer)),
            "%s does not list version numbers; using the version files",
            pointer,
        )
        return None
    return versions


def write_index(folder: Path, versions: Iterable[int]) -> None:
    write_atomic(folder / INDEX_FILE, json.dumps({"versions": sorted(set(versions))}).encode())


def listing(versions: Iterable[int], shown: int = 8) -> str:
    """A version list for a message: a long one (an index listing 100,000 versions) is cut short."""
    ordered = sorted(set(versions))
    if len(ordered) <= shown:
        return str(ordered)
    head, tail = ", ".join(map(str, ordered[: shown // 2])), ", ".join(map(str, ordered[-shown // 2 :]))
    return f"[{head}, …, {tail}] ({len(ordered)} in all)"


def remove_partial_writes(folder: Path, found: Inventory) -> None:
    """Temp files of a save that died, and an ONNX file without metadata newer than every complete
    version (a save killed between its two files). Nothing else is ever removed here."""
    partial = {v for v in found.onnx - found.metadata if v > max(found.metadata, default=0)}
    for path in [*found.temp, *(folder / f"v{v:06d}.onnx" for v in sorted(partial))]:
        logger.info("removing leftover %s of an interrupted save", path)
        with contextlib.suppress(OSError):
            path.unlink()
    found.onnx -= partial


def next_version(folder: Path, indexed: list[int] | None) -> int:
    """The number of the version about to be written (writer lock held). Leftovers of a killed save are
    removed and a wrong ``index.json`` rebuilt from the files first, and kept so whatever happens to this
    save; a number the index lists without a file is never reused as a reason to skip ahead."""
    found = inventory(folder)
    remove_partial_writes(folder, found)
    complete = sorted(found.metadata)
    if indexed is not None and sorted(set(indexed)) != complete:
        logger.warning(
            "%s: index.json listed %s but the folder holds versions %s; rebuilt the index from the files",
            folder,
            listing(indexed),
            complete,
        )
        write_index(folder, complete)
    elif indexed is None and complete:
        logger.warning(
            "%s: index.json is missing or unreadable; rebuilt it from the files (versions %s)",
            folder,
            complete,
        )
        write_index(folder, complete)
    return max([0, *found.numbers]) + 1


def served_and_newest(
    records: list[ModelRecord], limit: pd.Timestamp | None
) -> tuple[ModelRecord | None, ModelRecord | None]:
    """From records ordered newest first: the production version serving at ``limit`` and the
    newest version (of any stage) trained by then."""
    served = newest = None
    for record in records:
        if (limit is not None and record.trained_at > limit) or record.stage == "discarded":
            continue
        newest = newest or record
        if record.stage == "production":
            served = record
            break
    return served, newest


def kept_versions(valid: list[ModelRecord], numbers: list[int], keep: int) -> set[int]:
    """The versions retention keeps: the ``keep`` newest (valid ones by ``trained_at``, then damaged ones),
    the production version behind each of them, and the one served now.

    ``valid``: the verified records, newest first; ``numbers``: every version with a metadata file.
    """
    valid_numbers = {r.version for r in valid}
    ranked = [r.version for r in valid] + [v for v in numbers if v not in valid_numbers]
    kept = set(ranked[:keep])
    for record in valid:
        if record.version in kept:
            served, _ = served_and_newest(valid, record.trained_at)
            if served is not None:
                kept.add(served.version)
    served_now, _ = served_and_newest(valid, None)
    if served_now is not None:
        kept.add(served_now.version)
    return kept
