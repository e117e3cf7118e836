"""Plain names several layers share, in a module that imports nothing: the command line reads them
to build its parser without loading pandas, pydantic or torch."""

from __future__ import annotations

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: Where trainings run (lstm_plugin.training.backends).
BACKENDS = ("sync", "local", "ray")
#: Training request categories, most important first (lstm_plugin.training.policy).
CATEGORY_NAMES = ("portfolio", "on_demand", "watchlist", "scanning")
#: The last bar of the bundled sample (checked by a test); its default clock stops there.
BUNDLED_END = "2021-04-21"
#: The main job's default span: the last three years and a bit of the bundled data (a bull market, the 2018
#: sell-off, the 2020 crash and rebound), short enough for a cold run on two cores in minutes.
DEFAULT_START, DEFAULT_END = "2018-01-02", BUNDLED_END
