"""The ``lstm-plugin`` command line (``docs/cli.md``).

The top layer: may import every other. Imports Backtrader only when a command needs it, and only
the standard library to parse arguments (``--help`` is instant).
"""

from lstm_plugin.cli.main import main

__all__ = ["main"]
