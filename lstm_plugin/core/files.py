"""File operations the registry and the service snapshot rely on: atomic writes, listings, links.

``write_atomic`` makes a reader see the old file or the whole new one, never a part, and never
writes through a planted link. A version folder is listed once per read (:func:`inventory`); links
inside the registry are refused (:func:`refuse_link`), never followed.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from lstm_plugin.core.errors import UnsafePathError

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

VERSION_FILE = re.compile(r"^v(\d{6})\.(onnx|json)$")
TEMP_PREFIX = ".tmp-"


@dataclass
class Inventory:
    """One listing of a version folder."""

    metadata: set[int] = field(default_factory=set)
    onnx: set[int] = field(default_factory=set)
    temp: list[Path] = field(default_factory=list)

    @property
    def numbers(self) -> set[int]:
        return self.metadata | self.onnx


def inventory(folder: Path) -> Inventory:
    """Version numbers with a metadata file, with an ONNX file, and temp files, from one listing."""
    found = Inventory()
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in os.scandir(folder):
            if entry.name.startswith(TEMP_PREFIX):
                found.temp.append(Path(entry.path))
            elif match := VERSION_FILE.match(entry.name):
                (found.metadata if match.group(2) == "json" else found.onnx).add(int(match.group(1)))
    return found


class FileStamp(NamedTuple):
    """A file's path and what changes when it is rewritten or replaced: the key of caches of what was read
    from it."""

    path: str
    inode: int
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: Path, info: os.stat_result) -> FileStamp:
        return cls(str(path), info.st_ino, info.st_size, info.st_mtime_ns)


def identity(path: Path) -> FileStamp | None:
    """The :class:`FileStamp` of a file or folder (not following a link), or ``None`` when it is missing."""
    try:
        return FileStamp.of(path, os.lstat(path))
    except OSError:
        return None


def fsync_dir(folder: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def write_atomic(path: Path, blob: bytes) -> None:
    """Write ``blob`` to ``path`` so readers see the old file or the whole new one, never a part.

    The temp file is created with ``O_EXCL`` under an unpredictable name in the same folder, so a
    link planted there is never written through; ``os.replace`` swaps the entry, not a link's target.
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=f"-{path.name}")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(blob)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    fsync_dir(path.parent)


def refuse_link(path: Path) -> None:
    if os.path.islink(path):
        raise UnsafePathError(
            f"{path} › is a symbolic link; links inside the registry are refused, never followed "
            "(move the real folder there, or point --models at it)"
        )
