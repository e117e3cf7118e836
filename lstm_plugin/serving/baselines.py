"""The baselines a run measures, by name: the ``lstm_baselines`` hook's answers, checked.

The built-ins and every plugin's baselines come through the same hook
(:mod:`lstm_plugin.model.baselines` has the port and the built-ins); a name that no plugin
provides is a config error, and a plugin that offers a name already taken is warned about and
skipped (the first one, the built-in for built-in names, keeps it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import pandas as pd

from lstm_plugin.core.config import ModelSection
from lstm_plugin.core.config_trading import is_baseline_name
from lstm_plugin.core.data import DataSource
from lstm_plugin.core.errors import ConfigError
from lstm_plugin.model.baselines import BUILTIN_BASELINES, Baseline, BaselineInputs

logger = logging.getLogger(__name__)

__all__ = ["available_baselines", "baseline_panels", "check_baselines"]


def available_baselines(plugins: Any) -> dict[str, Baseline]:
    """``{name: baseline}`` from every ``lstm_baselines`` answer of ``plugins`` (a plugin manager; ``None``:
    the built-ins only), in the order they came."""
    if plugins is None:
        return {b.name: b for b in BUILTIN_BASELINES}
    found: dict[str, Baseline] = {}
    for plugin_name, answer in plugins.call_each("lstm_baselines"):
        for baseline in answer if isinstance(answer, (list, tuple)) else [answer]:
            problem = _problem(baseline, found)
            if problem:
                logger.warning("plugin %r offered a baseline that was skipped: %s", plugin_name, problem)
                continue
            found[baseline.name] = baseline
    return found


def _problem(baseline: object, found: dict[str, Baseline]) -> str | None:
    """Why ``baseline`` cannot be used (``None``: it can)."""
    name = getattr(baseline, "name", None)
    if not isinstance(baseline, Baseline) or not isinstance(name, str):
        return f"{type(baseline).__name__} has no name, forecasts_returns and panel(inputs)"
    if not is_baseline_name(name):
        return f"{name!r} is not a lower-case identifier"
    if name in found or name == "lstm":
        return f"{name!r} is taken"
    return None


def check_baselines(names: Sequence[str], available: dict[str, Baseline] | None = None) -> tuple[str, ...]:
    """The names, checked against ``available`` (default: the built-ins), none twice; raises
    :class:`~lstm_plugin.core.errors.ConfigError` naming the unknown ones."""
    available = available if available is not None else available_baselines(None)
    unknown = [n for n in names if n not in available]
    if unknown:
        have = ", ".join(available) or "none"
        raise ConfigError(f"baselines › unknown: {', '.join(unknown)} (have: {have}, or none)")
    return tuple(dict.fromkeys(names))


def baseline_panels(
    names: Sequence[str],
    source: DataSource,
    symbols: Sequence[str],
    refit_dates: Sequence[pd.Timestamp],
    plugins: Any,
    model: ModelSection,
    available: dict[str, Baseline] | None = None,
) -> dict[str, pd.DataFrame]:
    """``{name: panel}`` of the named baselines over ``symbols``' full bars from ``source``; ``available``:
    what :func:`available_baselines` already gave for ``plugins`` (asked again when ``None``)."""
    available = available_baselines(plugins) if available is None else available
    names = check_baselines(names, available)
    inputs = BaselineInputs({s: source.load(s) for s in symbols}, refit_dates, model, plugins)
    return {name: available[name].panel(inputs) for name in names}
