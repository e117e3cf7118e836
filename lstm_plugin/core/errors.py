"""The exception tree.

Every error a user can cause derives from :class:`LSTMPluginError`; the CLI turns those into one line
on stderr and exit status 2. Anything else is a bug and exits 1.
"""

from __future__ import annotations


class LSTMPluginError(Exception):
    """Base of every error caused by input (config, data, symbols, model files). The CLI exits 2."""


class ConfigError(LSTMPluginError):
    """A config file that cannot be read or does not validate. Raised by ``load_config``."""


class SymbolError(LSTMPluginError):
    """A symbol name outside the allowed character set (checked before it touches the file system)."""


class DataError(LSTMPluginError):
    """Price data that is missing, malformed or too short. The message names the file and the row."""


class InsufficientDataError(DataError):
    """Valid data, but too few bars to build the windows a model needs."""


class ModelError(LSTMPluginError):
    """A model that cannot be built, exported or served (failed parity check, unreadable file)."""


class BrokenModelError(ModelError):
    """A registered version that onnxruntime cannot serve: it does not load or run, or its output is not
    finite. Serving sets it aside and the previous version answers (docs/models.md)."""


class UnsafePathError(LSTMPluginError):
    """A symbolic link where the registry or a report would write or read; refused, never followed."""


class RegistryError(LSTMPluginError):
    """The model registry cannot be written (permissions, disk full). Corrupt versions are skipped, not
    raised. ``permanent``: retrying cannot help (a read-only or full disk, no permission)."""

    permanent: bool = False


class LSTMPluginWarning(UserWarning):
    """Something a user should change, shown once where it happens (e.g. a scan that rejected every
    symbol)."""
