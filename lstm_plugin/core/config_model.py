"""The ``model`` section of the config: one network's architecture, target and training, or an ensemble.

Part of :mod:`lstm_plugin.core.config`, which re-exports it (docs/configuration.md, docs/models.md).
Everything here enters the config hash, so a changed setting trains a new model.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from lstm_plugin.core.config_fields import MAX_HELD_OUT, Section, bounded

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class EnsembleMember(Section):
    """One network of an ensemble: its cell, its size, and the bars it reads (the last ``window`` of the
    model's)."""

    cell: Literal["lstm", "gru"] = "lstm"
    window: Annotated[int, bounded(2, 512)] = 30
    hidden_size: Annotated[int, bounded(1, 1024)] = 32
    num_layers: Annotated[int, bounded(1, 8)] = 1


class ModelSection(Section):
    """Architecture, target and training of one LSTM. Everything here enters the config hash."""

    window: Annotated[int, bounded(2, 512)] = Field(30, description="Bars of features the LSTM reads.")
    horizon: Annotated[int, bounded(1, 252)] = Field(
        5,
        description='Bars ahead the target return spans; "rebalance" in a config file means the holding '
        "period of backtest.rebalance (21 for monthly, 5 for weekly, N).",
        json_schema_extra={
            "anyOf": [{"type": "integer", "minimum": 1, "maximum": 252}, {"const": "rebalance"}]
        },
    )
    target: Literal["return", "excess"] = Field(
        "return",
        description="What the model forecasts: the symbol's forward log return, or its excess over the "
        "equal-weighted mean of the universe's over the same bars (docs/forecast-evidence.md).",
    )
    direction_threshold: Annotated[float, bounded(0, 0.5)] = Field(
        0.01, description="|forward log return| at or below this is the 'neutral' class."
    )
    cell: Literal["lstm", "gru"] = Field("lstm", description="The recurrent cell of the built-in network.")
    hidden_size: Annotated[int, bounded(1, 1024)] = 32
    num_layers: Annotated[int, bounded(1, 8)] = 1
    ensemble: list[EnsembleMember] = Field(
        default_factory=list,
        description="Networks trained per symbol as one registered unit, combined in one ONNX graph; "
        "empty: one network from cell, hidden_size, num_layers (docs/models.md).",
    )
    ensemble_weights: Literal["equal", "ic"] = Field(
        "equal",
        description="Combining the members' standardised forecasts: equal weights, or by each member's "
        "rank IC on the validation segment, shrunk toward equal.",
    )
    ensemble_shrinkage: Annotated[float, bounded(0, 1)] = Field(
        0.5, description="ensemble_weights 'ic': the share of each weight kept equal."
    )
    dropout: Annotated[float, bounded(0, 0.9)] = Field(
        0.0, description="Between LSTM layers (needs num_layers > 1)."
    )
    epochs: Annotated[int, bounded(1, 10_000)] = Field(
        40, description="Most passes over the training samples."
    )
    patience: Annotated[int, bounded(1, 10_000)] = Field(
        2, description="Epochs without validation improvement before stopping."
    )
    batch_size: Annotated[int, bounded(1, 65_536)] = 256
    learning_rate: Annotated[float, bounded(1e-6, 1.0)] = 0.005
    weight_decay: Annotated[float, bounded(0, 1)] = 0.0
    return_loss_weight: Annotated[float, bounded(0, 100)] = Field(
        1.0, description="Weight of the return head's loss beside the classes'."
    )
    validation_fraction: Annotated[float, bounded(0.05, 0.5)] = Field(
        0.15, description="Share of samples (by time) used for early stopping."
    )
    test_fraction: Annotated[float, bounded(0.05, 0.5)] = Field(
        0.15, description="Share of samples (by time, the newest) used only for the reported metrics."
    )
    lookback_years: Annotated[float, bounded(0.5, 100)] = Field(
        10.0, description="Years of history a training uses."
    )
    min_samples: Annotated[int, bounded(1, 10_000_000)] = Field(
        300, description="Fewest labelled samples a training accepts."
    )
    min_test_samples: Annotated[int, bounded(1, 1_000_000)] = Field(
        20,
        description="Fewest held-out test samples a model's figures may come from: a training whose test "
        "segment would hold fewer is not fitted (its reliability and quality would be noise).",
    )
    warm_start: bool = Field(
        False,
        description="Start a retrain from the served version's weights when its architecture matches (else "
        "cold), for warm_start_epochs; the versions it trains keep their weights for the next one "
        "(docs/models.md).",
    )
    warm_start_epochs: Annotated[int, bounded(1, 10_000)] = Field(
        1, description="Most epochs of a warm-started retrain."
    )
    seed: Annotated[int, bounded(0, 2**32 - 1)] = 42
    device: Literal["cpu", "cuda", "auto"] = Field("cpu", description="Where torch trains.")
    torch_threads: Annotated[int, bounded(1, 1024)] = Field(
        1,
        description="torch intra-op threads inside each training job, set by the job (never inherited): the "
        "same data and config then give the same ONNX bytes on any machine, backend and worker count; "
        "parallelism comes from workers.",
    )
    exporter: Literal["torchscript", "dynamo"] = Field(
        "torchscript",
        description="ONNX exporter; torchscript is ~20x faster to export, parity-checked either way.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelSection:
        """Checks across fields: dropout acts only between layers; the splits leave rows to train on."""
        if self.dropout > 0 and self.num_layers == 1:
            raise ValueError(
                f"dropout {self.dropout:g} needs num_layers > 1 (dropout acts between LSTM layers)"
            )
        if self.validation_fraction + self.test_fraction > MAX_HELD_OUT:
            raise ValueError(
                f"validation_fraction + test_fraction is {self.validation_fraction + self.test_fraction:g}; "
                f"at most {MAX_HELD_OUT:g} so that training keeps {1 - MAX_HELD_OUT:.0%} of the samples"
            )
        if len(self.ensemble) == 1:
            raise ValueError(
                "ensemble › give two members or more (one network is cell, hidden_size, num_layers)"
            )
        wide = [m.window for m in self.ensemble if m.window > self.window]
        if wide:
            raise ValueError(
                f"ensemble › a member reads at most window = {self.window} bars (got: {wide[0]})"
            )
        return self
