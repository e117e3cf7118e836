"""The plugin manager: hook specs, built-ins as default plugins, entry points — nothing at import time."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from importlib.metadata import entry_points
from typing import Any

import pluggy

from . import builtin, hookspecs
from .config import PluginsSection

logger = logging.getLogger(__name__)

__all__ = ["PluginManager", "get_plugin_manager"]


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus a record of broken plugins and hook calls that skip a failing plugin."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.broken: dict[str, str] = {}

    def _plain_impls(self, hook_name: str) -> list[Any]:
        """Implementations in call order (pluggy calls its list back to front); wrappers excluded."""
        impls = getattr(self.hook, hook_name).get_hookimpls()
        return [i for i in reversed(impls) if not (i.hookwrapper or getattr(i, "wrapper", False))]

    def _results(self, hook_name: str, kwargs: dict[str, Any]) -> Iterator[tuple[str, Any]]:
        """``(plugin name, result)`` of each implementation in call order, skipping failing plugins.

        A non-built-in implementation that raises is logged, recorded in :attr:`broken` and
        skipped; the built-in plugin's errors propagate: they are bugs.
        """
        for impl in self._plain_impls(hook_name):
            try:
                value = impl.function(*[kwargs[name] for name in impl.argnames])
            except Exception as exc:
                if impl.plugin_name == builtin.NAME:
                    raise
                message = f"{type(exc).__name__}: {exc}"
                logger.warning("plugin %r failed in %s and was skipped: %s", impl.plugin_name, hook_name, message)
                self.broken[impl.plugin_name] = message
                continue
            yield impl.plugin_name, value

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Every non-``None`` result of ``hook_name`` as ``(plugin name, result)``, in pluggy's order."""
        return [(name, value) for name, value in self._results(hook_name, kwargs) if value is not None]

    def call_chain(self, hook_name: str, key: str, value: Any, accept: Any = None, **kwargs: Any) -> Any:
        """Pass ``value`` (as argument ``key``) through each implementation in turn; a ``None``
        result keeps it, a result that ``accept`` refuses is logged and ignored."""
        arguments = dict(kwargs, **{key: value})
        for name, result in self._results(hook_name, arguments):
            if result is None:
                continue
            if accept is not None and not accept(result):
                logger.warning("plugin %r returned an invalid %s from %s; ignored", name, key, hook_name)
                continue
            arguments[key] = value = result
        return value

    def call_first(self, hook_name: str, **kwargs: Any) -> Any:
        """The first non-``None`` result of a ``firstresult`` hook, skipping plugins that raise."""
        return next((value for _, value in self._results(hook_name, kwargs) if value is not None), None)

def get_plugin_manager(config: PluginsSection | None = None, plugins: list[Any] | tuple[Any, ...] = ()) -> PluginManager:
    """A ready manager: specs added, built-ins registered, entry points loaded, ``plugins`` registered.

    A plugin that fails to import or register is logged, recorded in ``manager.broken`` and skipped.
    Names in ``config.disabled`` are blocked (the built-in's name blocks nothing: built-ins stay).
    """
    config = config or PluginsSection()
    manager = PluginManager()
    manager.add_hookspecs(hookspecs)
    manager.register(builtin, name=builtin.NAME)
    for name in config.disabled:
        if name != builtin.NAME:
            manager.set_blocked(name)
    if config.load_entry_points:
        for point in entry_points(group=hookspecs.PROJECT):
            if manager.is_blocked(point.name) or manager.has_plugin(point.name):
                continue
            try:
                manager.register(point.load(), name=point.name)
                manager.check_pending()
            except Exception as exc:  # a third-party import can raise anything
                if manager.has_plugin(point.name):
                    manager.unregister(name=point.name)
                logger.warning("plugin %r (%s) could not be loaded and was skipped: %s", point.name, point.value, exc)
                manager.broken[point.name] = f"{type(exc).__name__}: {exc}"
    for plugin in plugins:
        manager.register(plugin)
    manager.check_pending()
    return manager
