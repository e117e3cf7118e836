"""The original entry point, kept for users who arrive with the design document's commands: it runs the main
job.

    python main_lstm_integration.py --lstm-config config/lstm_config.json   # the LSTM with that config
    python main_lstm_integration.py --enable-lstm                           # the LSTM with the default config
    python main_lstm_integration.py                                         # the original: technical
    selection only

Any other option goes to ``lstm-plugin backtest`` as is (``--symbols``, ``--start``, ``--out``,
``--json``...).
A thin wrapper: the one implementation is ``lstm_plugin.cli.commands``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from lstm_plugin.cli.main import main as cli_main


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Run the LSTM-enhanced portfolio backtest (lstm-plugin backtest)."
    )
    parser.add_argument("--lstm-config", metavar="PATH", help="LSTM configuration file (enables the LSTM)")
    parser.add_argument(
        "--enable-lstm", action="store_true", help="enable the LSTM with the default configuration"
    )
    args, rest = parser.parse_known_args(argv)
    command = ["backtest", *rest]
    if args.lstm_config:
        command += ["--config", args.lstm_config]
    elif not args.enable_lstm:
        command.append("--no-lstm")
    return cli_main(command)


if __name__ == "__main__":
    sys.exit(main())
