"""The search space as an Optuna trial's suggestions, and a trial's parameters as ``model`` settings."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from lstm_plugin.core.config import ModelSection, SearchSpace
from lstm_plugin.core.config_tuning import CategoricalChoices, IntRange

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def space_fingerprint(space: SearchSpace, extra: dict[str, Any]) -> str:
    """What a study's trials depend on besides the data: the space, and ``extra`` (the base ``model``
    settings, the folds, the pruning rule); two studies with different fingerprints cannot share trials."""
    payload = {"space": space.model_dump(mode="json"), **extra}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def suggest(trial: Any, space: SearchSpace, base: ModelSection) -> dict[str, Any]:
    """A trial's parameters from ``space`` (an Optuna trial): dropout only where the trial has more than
    one layer."""
    chosen: dict[str, Any] = {}
    for name, spec in space.parameters().items():
        if name == "dropout" and int(chosen.get("num_layers", base.num_layers)) < 2:
            continue
        if isinstance(spec, CategoricalChoices):
            chosen[name] = trial.suggest_categorical(name, list(spec.choices))
        elif isinstance(spec, IntRange):
            chosen[name] = trial.suggest_int(name, spec.low, spec.high, log=spec.log)
        else:
            chosen[name] = trial.suggest_float(name, spec.low, spec.high, log=spec.log)
    return chosen


def config_values(space: SearchSpace, model: ModelSection) -> dict[str, Any]:
    """``model``'s own values of the searched settings (a study's trial 0); dropout only with two layers."""
    return {
        name: getattr(model, name)
        for name in space.parameters()
        if not (name == "dropout" and model.num_layers < 2)
    }
