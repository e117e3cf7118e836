"""The ``lstm-plugin`` command line (``docs/cli.md``).

The top layer: may import every other. Imports Backtrader only when a command needs it.
"""

from lstm_plugin.cli.commands import main

__all__ = ["main"]
