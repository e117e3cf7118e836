"""The networks: architecture and forward only.

A *core* maps standardised windows ``(batch, window, n_features)`` to ``(logits (batch, 3),
return (batch,))`` in standardised return units. :class:`Forecaster` wraps any core with the fitted
scaling, so the exported graph takes raw features and gives class probabilities and the expected
log return: the ONNX file is self-contained.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import torch
from torch import nn

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class LSTMCore(nn.Module):
    """Stacked LSTM; the last step's hidden state feeds a linear head of 3 class logits + 1 return."""

    recurrent: ClassVar[type[nn.LSTM] | type[nn.GRU]] = nn.LSTM

    def __init__(
        self, n_features: int, hidden_size: int = 32, num_layers: int = 1, dropout: float = 0.0
    ) -> None:
        super().__init__()
        self.rnn = self.recurrent(
            n_features,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Linear(hidden_size, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        output, _ = self.rnn(x)
        out = self.head(output[:, -1, :])
        return out[:, :3], out[:, 3]


class GRUCore(LSTMCore):
    """The same network with GRU cells (an ensemble member, or ``model.cell: gru``)."""

    recurrent = nn.GRU


class Forecaster(nn.Module):
    """Scaling + core. ``forward`` gives training outputs; ``ForecastGraph`` gives serving outputs.

    Buffers ``feature_mean``, ``feature_std`` and ``target_scale`` are fitted on training data only.
    """

    feature_mean: torch.Tensor
    feature_std: torch.Tensor
    target_scale: torch.Tensor

    def __init__(
        self, core: nn.Module, feature_mean: np.ndarray, feature_std: np.ndarray, target_scale: float
    ) -> None:
        super().__init__()
        self.core = core
        self.register_buffer("feature_mean", torch.as_tensor(feature_mean, dtype=torch.float32))
        self.register_buffer("feature_std", torch.as_tensor(feature_std, dtype=torch.float32))
        self.register_buffer("target_scale", torch.tensor(float(target_scale), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw features -> (class logits, return in standardised units)."""
        return self.core((x - self.feature_mean) / self.feature_std)

    def serving(self) -> ForecastGraph:
        return ForecastGraph(self)


class ForecastGraph(nn.Module):
    """What ONNX serves: raw ``features`` -> (``probabilities`` (batch, 3), ``expected_return`` (batch,))."""

    def __init__(self, forecaster: Forecaster) -> None:
        super().__init__()
        self.forecaster = forecaster

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, scaled_return = self.forecaster(x)
        return torch.softmax(logits, dim=-1), scaled_return * self.forecaster.target_scale


class EnsembleForecaster(nn.Module):
    """Members, each a :class:`Forecaster` reading the last ``windows[i]`` bars, served as one graph.

    Each member's expected return is standardised by its own ``means[i]`` and ``stds[i]`` (measured on
    the validation segment), the standardised values are averaged with ``weights``, and the result is
    put back in return units with the weighted mean and scale; probabilities are averaged with the same
    weights. A symbol's forecast depends on its own window only.
    """

    weights: torch.Tensor
    means: torch.Tensor
    stds: torch.Tensor

    def __init__(
        self,
        members: list[Forecaster],
        windows: list[int],
        weights: np.ndarray,
        means: np.ndarray,
        stds: np.ndarray,
    ) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)  # registers their parameters and buffers
        self.member_list: list[Forecaster] = list(members)
        self.windows = [int(w) for w in windows]
        for name, values in (("weights", weights), ("means", means), ("stds", stds)):
            self.register_buffer(name, torch.as_tensor(np.asarray(values), dtype=torch.float32))

    @property
    def feature_mean(self) -> torch.Tensor:
        """The members share their scaling: each is fitted on the same training rows' last bars."""
        return self.member_list[0].feature_mean

    @property
    def feature_std(self) -> torch.Tensor:
        return self.member_list[0].feature_std

    @property
    def target_scale(self) -> torch.Tensor:
        return self.member_list[0].target_scale

    def serving(self) -> EnsembleGraph:
        return EnsembleGraph(self)


class EnsembleGraph(nn.Module):
    """What ONNX serves for an ensemble: the same inputs and outputs as :class:`ForecastGraph`."""

    def __init__(self, ensemble: EnsembleForecaster) -> None:
        super().__init__()
        self.ensemble = ensemble
        self.graphs = nn.ModuleList([member.serving() for member in ensemble.member_list])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self.ensemble
        probabilities, standardised = [], []
        for graph, window in zip(self.graphs, e.windows):
            p, r = graph(x[:, -window:, :])
            probabilities.append(p)
            standardised.append(r)
        z = (torch.stack(standardised, dim=-1) - e.means) / e.stds
        expected = (e.weights * e.means).sum() + (e.weights * e.stds).sum() * (z * e.weights).sum(dim=-1)
        return (torch.stack(probabilities, dim=-1) * e.weights).sum(dim=-1), expected
