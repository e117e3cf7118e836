"""The installed distribution's version, read from its metadata (no import of the package root)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lstm-plugin")
except PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"
