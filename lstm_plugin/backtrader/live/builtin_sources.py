"""The package's own bar sources, offered through the ``lstm_bar_source`` hook a vendor's plugin uses.

``folder:DIR`` is a :class:`~lstm_plugin.backtrader.live.sources.DirectorySource` on a folder that
someone appends end-of-day rows to (``lstm-plugin paper --watch DIR`` is the same source). It
answers last, so a plugin may claim the same spec.
"""

from __future__ import annotations

from typing import Any

from lstm_plugin.backtrader.live.sources import DirectorySource
from lstm_plugin.core.data import CSVFolderSource
from lstm_plugin.plugins.hookspecs import hookimpl

NAME = "lstm_plugin.live_sources"
FOLDER = "folder:"

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


@hookimpl(trylast=True)
def lstm_bar_source(spec: str, symbols: list[str], config: Any) -> DirectorySource | None:
    """``folder:DIR``: every symbol of the folder, or ``symbols``."""
    if not spec.startswith(FOLDER) or not spec[len(FOLDER) :]:
        return None
    folder, limit = spec[len(FOLDER) :], config.data.max_file_mb
    listed = symbols or config.data.symbols or CSVFolderSource(folder, limit).symbols()
    return DirectorySource(folder, listed, limit)
