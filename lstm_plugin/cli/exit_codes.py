"""The command line's exit statuses (docs/cli.md): what ``main`` returns and commands raise toward."""

from __future__ import annotations

import signal

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

EXIT_OK, EXIT_UNEXPECTED, EXIT_USAGE = 0, 1, 2
#: a run stopped by SIGTERM, as a shell reports a process killed by it
EXIT_TERMINATED = 128 + signal.SIGTERM
