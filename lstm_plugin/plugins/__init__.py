"""Plugins: the hook specifications, the pluggy manager and the built-in implementations.

Layer 2. May import :mod:`lstm_plugin.core` and :mod:`lstm_plugin.model` (the built-ins compute the
documented features and build the default network). Hooks are documented in ``docs/plugins.md``.
"""

from lstm_plugin.plugins.hookspecs import PROJECT, hookimpl, hookspec
from lstm_plugin.plugins.manager import PluginManager, get_plugin_manager

__all__ = ["PROJECT", "PluginManager", "get_plugin_manager", "hookimpl", "hookspec"]
