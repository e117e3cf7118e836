"""The config, data source, registry, plugins and clock a command works with, from its options."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from lstm_plugin.cli.args import UsageError, date_option, models_folder
from lstm_plugin.core.clock import Clock, ManualClock, default_clock
from lstm_plugin.core.config import Config, load_config
from lstm_plugin.core.data import DataSource, open_source, validate_symbol
from lstm_plugin.plugins.manager import get_plugin_manager
from lstm_plugin.serving.forecast import ForecastService, TrainingState
from lstm_plugin.serving.registry import ModelRegistry

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class CommandContext:
    """What a command reads from its options: the config, the data, the registry, the plugins, the clock."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.config: Config = load_config(args.config)
        self.source: DataSource = open_source(
            args.data or self.config.data.path, self.config.data.max_file_mb
        )
        self.registry = ModelRegistry(
            models_folder(args.models, self.config.registry.path), self.config.registry.keep_versions
        )
        self.plugins = get_plugin_manager(self.config.plugins)
        as_of = date_option(getattr(args, "as_of", None))
        self.as_of = as_of
        self.clock: Clock = (
            ManualClock(as_of) if as_of is not None else default_clock(self.source, logging.INFO)
        )

    def symbols(self, given: Sequence[str]) -> list[str]:
        symbols = [validate_symbol(s) for s in given]
        unknown = [s for s in symbols if s not in self.source.symbols()]
        if unknown:
            raise UsageError(f"unknown symbol {', '.join(unknown)} in {self.source.name}")
        return symbols

    def forecasts(self, training_state: TrainingState | None = None) -> ForecastService:
        return ForecastService(
            self.config,
            self.registry,
            self.source,
            self.clock,
            plugins=self.plugins,
            training_state=training_state,
        )
