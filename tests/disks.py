"""Real disks that are full or read-only: a size-limited tmpfs mounted for one test (needs root; the test is
skipped where ``mount`` is refused), so ENOSPC and EROFS come from the kernel, not from a mock."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_disk(size_kib: int) -> Iterator[Path]:
    """A fresh tmpfs of ``size_kib`` KiB, unmounted afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="lstm-disk-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_kib}k", "none", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        folder.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def read_only(folder: Path) -> None:
    """Remount the tmpfs at ``folder`` read-only."""
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True, capture_output=True)


def fill(folder: Path, leave_kib: int) -> None:
    """Fill the disk at ``folder`` until about ``leave_kib`` KiB are free."""
    free = shutil.disk_usage(folder).free
    size = max(0, free - leave_kib * 1024)
    with open(folder / "filler", "wb") as stream:
        stream.write(b"\0" * size)
