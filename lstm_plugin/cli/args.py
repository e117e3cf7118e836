"""Command-line argument helpers shared by ``lstm-plugin`` and ``lstm-plugin paper``: one-line errors, dates,
symbol lists."""

from __future__ import annotations

import argparse
import logging
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from lstm_plugin.core.errors import LSTMPluginError

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class UsageError(LSTMPluginError):
    """A bad command-line argument."""


class JobsFailed(LSTMPluginError):
    """Some trainings failed; carries the per-model results so ``--json`` still prints them."""

    def __init__(self, message: str, result: dict[str, Any], exit_code: int) -> None:
        super().__init__(message)
        self.result = result
        self.exit_code = exit_code


class StoppedBySignal(BaseException):
    """The run stopped cleanly after SIGINT or SIGTERM; carries the signal for the exit status."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


class Terminated(BaseException):
    """SIGTERM: unwinds like Ctrl-C, so worker pools are shut down on the way out."""


def models_folder(given: str | None, configured: str) -> str:
    """``--models`` (else the config's ``registry.path``): a folder, or a path not made yet; anything else
    (a file, ``/dev/null``, a FIFO) is one line naming the option, before any work."""
    path, option = (given, "--models") if given else (configured, "registry.path")
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return path
    except OSError as exc:
        raise UsageError(f"{option} › {path}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise UsageError(f"{option} › {path} is {_kind(info.st_mode)}, not a folder of models")
    return path


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "a file"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return name
    return "not a folder"


def date_option(value: str | None, option: str = "--as-of") -> Any:
    if value is None:
        return None
    from lstm_plugin.core.clock import as_timestamp

    try:
        return as_timestamp(value)
    except (ValueError, TypeError):
        raise UsageError(f"{option} › must be a date like 2015-12-31 (got: {value})") from None


def symbol_list(text: str | None) -> list[str]:
    """``--symbols A,B,C``; an empty item (``',,,'``, ``'A,,B'``) is a typing error, not "every symbol"."""
    if text is None:
        return []
    items = [item.strip() for item in text.split(",")]
    if not all(items):
        raise UsageError(f"--symbols › an empty name in the list (got: {text!r}); give names like AAPL,MSFT")
    return items


def baseline_list(text: str | None, configured: Sequence[str]) -> list[str]:
    """``--baselines A,B`` or ``none``; the config's list when not given."""
    if text is None:
        return list(configured)
    if text.strip().lower() == "none":
        return []
    names = [item.strip() for item in text.split(",")]
    from lstm_plugin.core.config_trading import is_baseline_name

    if not all(is_baseline_name(name) for name in names):
        raise UsageError(f"--baselines › names like ridge,momentum_12_1, or none (got: {text!r})")
    return list(dict.fromkeys(names))  # checked against the plugins' baselines when the backtest starts


#: the loggers whose events a training command reports in its own summary instead (each module logs
#: under its own name)
TRAINING_LOGGERS = (
    "lstm_plugin.events",
    "lstm_plugin.training.service",
    "lstm_plugin.training.dispatch",
    "lstm_plugin.training.monitoring",
    "lstm_plugin.training.planning",
    "lstm_plugin.training.trainer",
    "lstm_plugin.training.jobs",
    "lstm_plugin.training.history",
    "lstm_plugin.training.reproducible",
)


def quiet_training_logs(args: argparse.Namespace) -> None:
    """Training events (failures, candidates kept) go to the command's own summary; ``-v`` shows them as they
    happen. For the command only: :func:`training_log_levels` gives the levels back."""
    if not args.verbose:
        for name in TRAINING_LOGGERS:
            logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def training_log_levels() -> Iterator[None]:
    """The training loggers' levels as they were before a command: ``main`` called in a notebook or a test
    leaves the process's logging as it found it."""
    levels = {name: logging.getLogger(name).level for name in TRAINING_LOGGERS}
    try:
        yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
