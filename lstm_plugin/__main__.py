"""``python -m lstm_plugin`` is the ``lstm-plugin`` command."""

from lstm_plugin.cli import main

raise SystemExit(main())
