"""The ``tuning`` section of the config: the search space of ``lstm-plugin tune`` and how a study runs.

Part of :mod:`lstm_plugin.core.config`, which re-exports it (docs/tuning.md). A parameter of the space
names a ``model`` setting; its range must lie inside that setting's own bounds, so a tuned value is
always a valid ``model`` setting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from lstm_plugin.core.config_fields import Section, bounded
from lstm_plugin.core.statuses import ModelType

if TYPE_CHECKING:
    from lstm_plugin.core.config_model import ModelSection

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class IntRange(Section):
    """Whole numbers from ``low`` to ``high``, both included; ``log`` samples their logarithm evenly."""

    low: Annotated[int, bounded(0, 100_000)]
    high: Annotated[int, bounded(0, 100_000)]
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> IntRange:
        _check_order(self.low, self.high)
        return self


class FloatRange(Section):
    """Numbers from ``low`` to ``high``; ``log`` samples their logarithm evenly (learning rates)."""

    low: Annotated[float, bounded(0, 1_000)]
    high: Annotated[float, bounded(0, 1_000)]
    log: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> FloatRange:
        _check_order(self.low, self.high)
        if self.log and self.low <= 0:
            raise ValueError("a log range needs low above 0")
        return self


def _check_order(low: float, high: float) -> None:
    if low > high:
        raise ValueError(f"low {low:g} is above high {high:g} (an inverted range)")
    if low == high:
        raise ValueError(f"low and high are both {low:g}: an empty range (a fixed value belongs in model)")


class CategoricalChoices(Section):
    """One of ``choices``."""

    choices: list[str]

    @model_validator(mode="after")
    def _several(self) -> CategoricalChoices:
        if len(set(self.choices)) < 2:
            raise ValueError("give two different choices or more (a fixed value belongs in model)")
        return self


class SearchSpace(Section):
    """What ``lstm-plugin tune`` searches; each key names a ``model`` setting, ``null`` leaves it out."""

    hidden_size: IntRange | None = IntRange(low=8, high=64, log=True)
    num_layers: IntRange | None = IntRange(low=1, high=2)
    window: IntRange | None = IntRange(low=10, high=60)
    dropout: FloatRange | None = Field(
        FloatRange(low=0.0, high=0.5),
        description="Sampled only for trials with num_layers > 1 (dropout acts between layers).",
    )
    learning_rate: FloatRange | None = FloatRange(low=0.001, high=0.02, log=True)
    epochs: IntRange | None = IntRange(low=10, high=60)
    cell: CategoricalChoices | None = Field(
        CategoricalChoices(choices=["lstm", "gru"]), description="Choices among lstm, gru."
    )
    target: CategoricalChoices | None = Field(
        None,
        description="Choices among return, excess; each trial is scored against its own target "
        "(docs/tuning.md).",
    )

    @model_validator(mode="after")
    def _inside_model_bounds(self) -> SearchSpace:
        """Every range inside its ``model`` setting's bounds; every choice one the setting allows."""
        from lstm_plugin.core.config_model import ModelSection

        for name in type(self).model_fields:
            spec = getattr(self, name)
            if spec is None:
                continue
            values = spec.choices if isinstance(spec, CategoricalChoices) else [spec.low, spec.high]
            for value in values:
                try:
                    ModelSection.model_validate(
                        {name: value, **({"num_layers": 2} if name == "dropout" else {})}
                    )
                except ValidationError as exc:
                    rule = _first_rule(exc)
                    raise ValueError(f"{name} › {value!r} is not a valid model.{name}: {rule}") from None
        return self

    def parameters(self) -> dict[str, IntRange | FloatRange | CategoricalChoices]:
        """The parameters searched, in a fixed order."""
        return {name: spec for name in type(self).model_fields if (spec := getattr(self, name)) is not None}


def _first_rule(exc: ValidationError) -> str:
    """The rule a value breaks, in the config's words (``must be between 1 and 1024``)."""
    from lstm_plugin.core.config_errors import describe
    from lstm_plugin.core.config_model import ModelSection

    return describe(exc.errors()[0], ModelSection)[1]


class TuningSection(Section):
    """``lstm-plugin tune``: a seeded TPE search per model on walk-forward folds (docs/tuning.md)."""

    space: SearchSpace = SearchSpace()
    trials: Annotated[int, bounded(1, 100_000)] = Field(
        20, description="Trials a study holds when `tune` is not given --trials."
    )
    folds: Annotated[int, bounded(1, 10)] = Field(
        3,
        description="Walk-forward validation folds a trial is scored on, the newest last; all of them "
        "before the test segment a training reports and promotion decides on.",
    )
    parallel: Annotated[int, bounded(1, 1024)] = Field(
        2,
        description="Trials proposed at once (and run at once on local or ray): part of the study's "
        "identity, so every backend proposes the same trials.",
    )
    seed: Annotated[int, bounded(0, 2**32 - 1)] = Field(0, description="Seed of the TPE sampler.")
    startup_trials: Annotated[int, bounded(0, 10_000)] = Field(
        5, description="Trials sampled at random before TPE models the results, and before any is pruned."
    )
    warmup_epochs: Annotated[int, bounded(0, 10_000)] = Field(
        5, description="Epochs of a trial's first fold before the median rule may prune it."
    )
    every_days: Annotated[int, bounded(1, 36_500)] | None = Field(
        None,
        description="Continual tuning: a training service re-tunes each of its models when its newest "
        "choice read bars older than this many days; null: only `lstm-plugin tune` tunes.",
    )
    trials_per_pass: Annotated[int, bounded(1, 100_000)] = Field(
        10, description="Continual tuning: the most trials one training pass runs, best priority first."
    )
    models: Literal["all", "universal", "specific"] = Field(
        "all",
        description="Continual tuning: which models it looks after. universal: the pooled model only, "
        "the one that ranks most names on a wide universe, at a fraction of the cost of tuning each.",
    )
    prune: Literal["median", "none"] = Field(
        "median",
        description="median: stop a trial whose validation score, at the same fold and epoch, is below the "
        "median of the finished trials'; none: run every trial to the end.",
    )

    def looks_after(self, model_type: ModelType) -> bool:
        """Whether continual tuning is on and tunes models of ``model_type`` (``universal``, ``specific``)."""
        return self.every_days is not None and self.models in ("all", model_type)


def apply_parameters(base: ModelSection, parameters: dict[str, Any]) -> ModelSection:
    """``base`` with ``parameters`` in place, validated as a ``model`` section (a trial without dropout
    has none: ``base``'s dropout may need layers it does not have)."""
    values = base.model_dump()
    values.update(parameters)
    if "dropout" not in parameters and int(values["num_layers"]) < 2:
        values["dropout"] = 0.0
    from lstm_plugin.core.config_model import ModelSection

    return ModelSection.model_validate(values)
