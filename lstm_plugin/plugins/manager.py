"""The plugin manager: hook specs, built-ins as default plugins, entry points — nothing at import time.

Hooks are called through pluggy (``manager.hook.<name>(...)``), so its ordering, ``tryfirst`` /
``trylast``, ``firstresult``, wrappers (``wrapper=True`` and old-style ``hookwrapper=True``) and
tracing all apply. Each implementation of a third-party plugin is registered inside a guard of
ours: if it raises, the error is logged, recorded in :attr:`PluginManager.broken`, and the call
goes on without it (the built-ins' errors propagate: they are bugs). ``LSTM_PLUGIN_TRACE=1`` writes pluggy's
trace of every hook call to stderr.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pluggy

from lstm_plugin.core.config import PluginsSection
from lstm_plugin.plugins import builtin, hookspecs

logger = logging.getLogger(__name__)

__all__ = ["TRACE_VARIABLE", "TRAINING_HOOKS", "PluginManager", "get_plugin_manager", "training_plugins"]

#: hooks called inside a training job (in a worker process or a Ray task, for those backends)
TRAINING_HOOKS = ("lstm_features", "lstm_build_model")


def training_plugins(plugins: Any) -> tuple[Any, ...]:
    """The plugin objects a training job needs: those implementing a :data:`TRAINING_HOOKS` hook.

    Only these travel with each job to the workers; a progress bar or a rebalance hook stays in the
    driver, so it need not be picklable.
    """
    marker = f"{hookspecs.PROJECT}_impl"
    return tuple(
        plugin
        for plugin in plugins
        if any(hasattr(getattr(plugin, name, None), marker) for name in TRAINING_HOOKS)
    )


#: Environment variable that turns on pluggy's hook-call tracing (to stderr).
TRACE_VARIABLE = "LSTM_PLUGIN_TRACE"
WRAPPED = "(changed by a wrapper)"


@dataclass
class _Call:
    """What the guards of one hook call share: the producing plugin of each result, and a chain's value."""

    names: list[str] = field(default_factory=list)
    chain_key: str | None = None
    chain_value: Any = None
    accept: Callable[[Any], bool] | None = None


_CALL: contextvars.ContextVar[_Call | None] = contextvars.ContextVar("lstm_plugin_hook_call", default=None)


class PluginManager(pluggy.PluginManager):
    """pluggy's manager plus a record of broken plugins and calls that name the plugin of each result."""

    def __init__(self) -> None:
        super().__init__(hookspecs.PROJECT)
        self.broken: dict[str, str] = {}
        #: plugins of this package: their errors are bugs, and propagate
        self.builtin_names: set[str] = {builtin.NAME}
        #: ``(plugin, hook) -> message`` of every failure seen by this manager (a worker's travel back)
        self.failures: dict[tuple[str, str], str] = {}

    def report(self, failures: Iterable[tuple[str, str, str]], where: str) -> None:
        """Failures another process's manager saw (a training worker's): warned here as if they were this
        manager's own — once each — and recorded in :attr:`broken`."""
        for plugin_name, hook_name, message in failures:
            if self.failures.get((plugin_name, hook_name)) == message:
                continue
            self.failures[(plugin_name, hook_name)] = message
            self.broken[plugin_name] = message
            logger.warning(
                "plugin %r failed in %s (%s) and was skipped: %s", plugin_name, hook_name, where, message
            )

    def register_builtin(self, plugin: object, name: str) -> None:
        """Register one of the package's own plugins from a higher layer (the live bar sources), once."""
        self.builtin_names.add(name)
        if not self.has_plugin(name):
            self.register(plugin, name=name)

    def register(self, plugin: object, name: str | None = None) -> str | None:
        """Register ``plugin`` with each plain implementation inside a guard (see the module docstring)."""
        registered = super().register(plugin, name)
        if registered is not None:
            for caller in self.get_hookcallers(plugin) or []:
                for impl in caller.get_hookimpls():
                    if impl.plugin is plugin and not (impl.hookwrapper or impl.wrapper):
                        impl.function = self._guard(impl, caller.name)  # type: ignore[misc]
        return registered

    def _guard(self, impl: pluggy.HookImpl, hook_name: str) -> Callable[..., Any]:
        """``impl``'s function, reporting and skipping it when it raises, and taking part in a chain."""
        function = impl.function
        position = impl.argnames.index
        plugin_name = impl.plugin_name

        @functools.wraps(function)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            call = _CALL.get()
            if call is not None and call.chain_key in impl.argnames:
                values = list(args)
                values[position(call.chain_key)] = call.chain_value
                args = tuple(values)
            try:
                result = function(*args, **kwargs)
            except Exception as exc:  # a third-party plugin can raise anything
                if plugin_name in self.builtin_names:
                    raise  # the built-ins' errors are bugs
                message = f"{type(exc).__name__}: {exc}"
                if self.failures.get((plugin_name, hook_name)) != message:  # each failure once, not per bar
                    logger.warning(
                        "plugin %r failed in %s and was skipped: %s", plugin_name, hook_name, message
                    )
                self.broken[plugin_name] = message
                self.failures[(plugin_name, hook_name)] = message
                return None
            return _record(call, plugin_name, hook_name, result)

        return guarded

    def call_each(self, hook_name: str, **kwargs: Any) -> list[tuple[str, Any]]:
        """Every non-``None`` result of ``hook_name`` as ``(plugin name, result)``, in pluggy's order.

        The name is :data:`WRAPPED` for every result when a wrapper changed the number of results.
        """
        call = _Call()
        token = _CALL.set(call)
        try:
            results = getattr(self.hook, hook_name)(**kwargs)
        finally:
            _CALL.reset(token)
        names = call.names if len(call.names) == len(results) else [WRAPPED] * len(results)
        return list(zip(names, results, strict=True))

    def call_chain(
        self, hook_name: str, key: str, value: Any, accept: Callable[[Any], bool] | None = None, **kwargs: Any
    ) -> Any:
        """Pass ``value`` (as argument ``key``) through each implementation in turn; a ``None``
        result keeps it, a result that ``accept`` refuses is logged and ignored."""
        call = _Call(chain_key=key, chain_value=value, accept=accept)
        token = _CALL.set(call)
        try:
            getattr(self.hook, hook_name)(**dict(kwargs, **{key: value}))
        finally:
            _CALL.reset(token)
        return call.chain_value

    def call_first(self, hook_name: str, **kwargs: Any) -> Any:
        """The result of a ``firstresult`` hook: the first non-``None`` one, skipping plugins that raise."""
        return self.call_first_named(hook_name, **kwargs)[1]

    def call_first_named(self, hook_name: str, **kwargs: Any) -> tuple[str | None, Any]:
        """``(plugin name, result)`` of a ``firstresult`` hook, so a wrong result can name who gave it
        (:data:`WRAPPED` when a wrapper changed it; ``None`` with no result)."""
        call = _Call()
        token = _CALL.set(call)
        try:
            result = getattr(self.hook, hook_name)(**kwargs)
        finally:
            _CALL.reset(token)
        if result is None:
            return None, None
        return (call.names[-1] if call.names else WRAPPED), result


def _record(call: _Call | None, plugin_name: str, hook_name: str, result: Any) -> Any:
    """Note who produced ``result`` (and move a chain on); returns what pluggy should collect."""
    if call is None or result is None:
        return result
    if call.chain_key is not None:
        if call.accept is not None and not call.accept(result):
            logger.warning(
                "plugin %r returned an invalid %s from %s; ignored", plugin_name, call.chain_key, hook_name
            )
            return None
        call.chain_value = result
    call.names.append(plugin_name)
    return result


def _load_entry_points(manager: PluginManager) -> None:
    """Register the ``lstm_plugin`` entry points; one that fails to import or register is skipped."""
    for point in entry_points(group=hookspecs.PROJECT):
        if manager.is_blocked(point.name) or manager.has_plugin(point.name):
            continue
        try:
            manager.register(point.load(), name=point.name)
            manager.check_pending()
        except Exception as exc:  # a third-party import can raise anything
            if manager.has_plugin(point.name):
                manager.unregister(name=point.name)
            logger.warning(
                "plugin %r (%s) could not be loaded and was skipped: %s", point.name, point.value, exc
            )
            manager.broken[point.name] = f"{type(exc).__name__}: {exc}"


def _readable_name(plugin: Any, manager: PluginManager) -> str:
    """A name messages can show for a plugin object (pluggy's default is its ``id``): its module, or its
    class's dotted path, numbered when the same class is registered twice."""
    base = (
        plugin.__name__
        if isinstance(plugin, types.ModuleType)
        else f"{type(plugin).__module__}.{type(plugin).__qualname__}"
    )
    name, count = base, 1
    while manager.has_plugin(name):
        count += 1
        name = f"{base}#{count}"
    return name


def get_plugin_manager(
    config: PluginsSection | None = None, plugins: list[Any] | tuple[Any, ...] = ()
) -> PluginManager:
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
        _load_entry_points(manager)
    for plugin in plugins:
        manager.register(plugin, name=_readable_name(plugin, manager))
    manager.check_pending()
    if os.environ.get(TRACE_VARIABLE, "") not in ("", "0"):
        manager.trace.root.setwriter(lambda message: sys.stderr.write(f"{TRACE_VARIABLE}: {message}"))
        manager.enable_tracing()
    return manager
