"""``python -m lstm_plugin`` is the ``lstm-plugin`` command."""

from .cli import main

raise SystemExit(main())
