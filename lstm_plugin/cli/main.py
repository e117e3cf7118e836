"""``lstm-plugin``: parse the command line, run the command, map failures to exit statuses.

Exit status: 0 success; 2 a bad argument, config, symbol or data file (one line on stderr, no
traceback); 1 anything unexpected. With ``--json`` stdout carries one JSON object and nothing
else; progress and warnings go to stderr. This module and the parser import only the standard
library and :mod:`lstm_plugin.core.names`: ``--help`` loads no pandas, pydantic, onnxruntime or
torch, and each command imports what it uses (docs/cli.md).
"""

from __future__ import annotations

import errno
import json
import logging
import os
import signal
import sys
import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lstm_plugin.cli.args import JobsFailed, StoppedBySignal, Terminated, training_log_levels
from lstm_plugin.cli.exit_codes import EXIT_OK, EXIT_TERMINATED, EXIT_UNEXPECTED, EXIT_USAGE
from lstm_plugin.cli.parser import build_parser
from lstm_plugin.core.errors import LSTMPluginError

__all__ = ["EXIT_OK", "EXIT_UNEXPECTED", "EXIT_USAGE", "main"]

_DISK_FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO)


@contextmanager
def _sigterm_unwinds() -> Iterator[None]:
    """Turn SIGTERM into :class:`Terminated` in the main thread while a command runs."""

    def terminate(signum: int, frame: Any) -> None:
        raise Terminated()

    try:
        previous = signal.signal(signal.SIGTERM, terminate)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    with _sigterm_unwinds():
        try:
            code = _main(argv)
            sys.stdout.flush()  # a full disk or a closed pipe shows here, while it can still be said
            return code
        except BrokenPipeError:
            return _stdout_closed()
        except OSError as exc:  # a full disk (``schema > /dev/full``): one line, like any input problem
            if exc.errno not in _DISK_FULL:
                raise
            where = exc.filename or "the output"
            if exc.filename is None:
                _silence_stdout()
            print(f"lstm-plugin: error: cannot write {where}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE


def _stdout_closed() -> int:
    """The reader went away (``lstm-plugin status | head -1``): stop quietly, as Unix tools do."""
    _silence_stdout()
    return 128 + signal.SIGPIPE


def _silence_stdout() -> None:
    """Point stdout at ``/dev/null``, so the interpreter's last flush at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no real stdout (a notebook, a test's capture): nothing to flush
        pass


def _main(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
        if args.command == "schema":
            from lstm_plugin.core.config import config_schema

            print(json.dumps(config_schema(), indent=2))
            return EXIT_OK
        logging.basicConfig(
            level=logging.INFO if args.verbose else logging.WARNING,
            format="lstm-plugin: %(levelname)s: %(message)s",
            stream=sys.stderr,
        )
        logging.captureWarnings(True)  # our LSTMPluginWarnings read like every other message
        warnings.formatwarning = _one_line_warning
        from lstm_plugin.cli.commands import COMMANDS  # the command's own imports, after parsing
        from lstm_plugin.core import jsonio

        with training_log_levels():
            result = COMMANDS[args.command](args)
        if args.json:
            print(jsonio.dumps(result, indent=2))
        return EXIT_OK
    except JobsFailed as exc:
        if args.json:
            from lstm_plugin.core import jsonio

            print(jsonio.dumps(exc.result, indent=2))
        print(f"lstm-plugin: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except LSTMPluginError as exc:
        print(f"lstm-plugin: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except StoppedBySignal as exc:
        print(f"lstm-plugin: stopped cleanly ({signal.Signals(exc.signum).name})", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("lstm-plugin: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("lstm-plugin: terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except BrokenPipeError:
        raise  # the reader went away: main() stops quietly
    except OSError as exc:
        if exc.errno in _DISK_FULL:
            raise  # a full disk is ordinary: main() says so in one line
        return _unexpected()
    except Exception:  # anything else is a bug: keep the traceback for the report
        return _unexpected()


def _one_line_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int, line: str | None = None
) -> str:
    """A warning as one line: its message (and its kind, unless it is ours), not the source line that raised
    it."""
    text = " ".join(str(message).split())
    return text if category.__name__ == "LSTMPluginWarning" else f"{category.__name__}: {text}"


def _unexpected() -> int:
    import traceback

    traceback.print_exc()
    print("lstm-plugin: unexpected error (see the traceback above); please report it", file=sys.stderr)
    return EXIT_UNEXPECTED
