"""The fit loop: seeding, time-ordered train/validation/test split, early stopping. No file I/O.

Samples are split by date — oldest for fitting, then (after a gap of ``horizon`` dates) a validation
segment that picks the stopping epoch, then (after another gap) the newest test segment that is used
for nothing but the reported metrics. Scaling is fitted on the training segment only.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from lstm_plugin.core.config import ModelSection
from lstm_plugin.core.errors import InsufficientDataError
from lstm_plugin.model.features import Scaler, direction_classes, time_split
from lstm_plugin.model.metrics import forecast_metrics
from lstm_plugin.model.network import EnsembleForecaster, Forecaster
from lstm_plugin.model.samples import SampleSet
from lstm_plugin.model.warm_weights import load_matching
from lstm_plugin.model.window_rows import WindowRows

logger = logging.getLogger(__name__)
#: ``(epoch, network)`` after each epoch, the network in eval mode
EpochHook = Callable[[int, Forecaster], None]
_SEED_LOCK = threading.Lock()

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


@dataclass
class FitResult:
    forecaster: Forecaster | EnsembleForecaster
    metrics: dict[str, float]
    history: list[dict[str, float]] = field(default_factory=list)
    train_end: np.datetime64 | None = None
    train_start: np.datetime64 | None = None
    device: str = "cpu"
    members: list[dict[str, Any]] = field(default_factory=list)  # an ensemble's members, with their weights
    #: the held-out newest samples ``metrics`` were measured on (a retrain is compared on them)
    test: SampleSet | None = None
    #: started from a previous version's weights (``model.warm_start``)
    warm: bool = False


def resolve_device(choice: str) -> torch.device:
    if choice in ("cuda", "auto") and torch.cuda.is_available():
        return torch.device("cuda")
    if choice == "cuda":
        logger.warning("model.device is 'cuda' but torch sees no GPU; training on the CPU")
    return torch.device("cpu")


def predict_torch(
    forecaster: Forecaster | EnsembleForecaster, windows: np.ndarray | WindowRows, batch_size: int = 4096
) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities (n, 3) and expected log returns (n,) from the torch model (eval mode, no grad)."""
    graph = forecaster.serving().eval()
    device = next(forecaster.parameters()).device
    probs, rets = [], []
    with torch.no_grad():
        for start in range(0, windows.shape[0], batch_size):
            x = torch.as_tensor(np.asarray(windows[start : start + batch_size]), device=device)
            p, r = graph(x)
            probs.append(p.cpu().numpy())
            rets.append(r.cpu().numpy())
    if not probs:
        return np.empty((0, 3), dtype="float32"), np.empty(0, dtype="float32")
    return np.concatenate(probs), np.concatenate(rets)


def _loss(forecaster: Forecaster, x, classes, scaled_returns, return_weight: float) -> torch.Tensor:
    logits, predicted = forecaster(x)
    return nn.functional.cross_entropy(logits, classes) + return_weight * nn.functional.smooth_l1_loss(
        predicted, scaled_returns
    )


def fit_forecaster(
    samples: SampleSet,
    config: ModelSection,
    build_core: Callable[[int], nn.Module],
    *,
    progress: bool = True,
    label: str = "training",
    initial: Mapping[str, np.ndarray] | None = None,
) -> FitResult:
    """Fit a :class:`Forecaster` on ``samples`` (from ``initial`` weights when they fit) and measure it on the
    held-out newest dates.

    Raises :class:`InsufficientDataError` with fewer than ``config.min_samples`` samples.
    """
    train, val, test = split_samples(samples, config, label)
    started = time.perf_counter()
    fitted = fit_network(train, val, config, build_core, progress=progress, label=label, initial=initial)
    probabilities, expected = predict_torch(fitted.forecaster, test.windows)
    metrics = forecast_metrics(probabilities, expected, test.returns)
    metrics.update(
        val_loss=fitted.best_loss,
        best_epoch=fitted.best_epoch,
        epochs_run=len(fitted.history),
        n_train=len(train),
        n_validation=len(val),
        fit_seconds=round(time.perf_counter() - started, 3),
    )
    return FitResult(
        forecaster=fitted.forecaster,
        metrics=metrics,
        history=fitted.history,
        train_start=train.dates.min(),
        train_end=train.dates.max(),
        device=fitted.device,
        test=test,
        warm=fitted.warm,
    )


@dataclass
class FittedNetwork:
    """One network fitted on a training segment, stopped on a validation segment."""

    forecaster: Forecaster
    best_loss: float
    best_epoch: int
    history: list[dict[str, float]]
    device: str
    #: started from the ``initial`` weights
    warm: bool = False


def fit_network(
    train: SampleSet,
    val: SampleSet,
    config: ModelSection,
    build_core: Callable[[int], nn.Module],
    *,
    progress: bool = False,
    label: str = "training",
    on_epoch: EpochHook | None = None,
    initial: Mapping[str, np.ndarray] | None = None,
) -> FittedNetwork:
    """Scaling fitted on ``train``, a seeded core, and epochs with early stopping on ``val``; ``on_epoch``
    sees the network after each epoch (a tuning scores it, and may stop it by raising). A core that
    ``initial`` weights fit (same tensors, same shapes) starts from them, for ``warm_start_epochs``."""
    device = resolve_device(config.device)
    scaler = Scaler.fit(train.windows[:, -1, :])
    target_scale = float(np.std(train.returns)) or 1.0
    with _SEED_LOCK:  # torch's default generator is global: seed and initialise as one step
        torch.manual_seed(config.seed)
        core = build_core(train.windows.shape[2])
    warm = load_matching(core, initial)
    if warm:
        config = config.model_copy(update={"epochs": config.warm_start_epochs})
    forecaster = Forecaster(core, scaler.mean, scaler.std, target_scale).to(device)
    best_loss, best_epoch, history = _train(
        forecaster, train, val, config, target_scale, device, progress, label, on_epoch
    )
    return FittedNetwork(forecaster.cpu().eval(), best_loss, best_epoch, history, device.type, warm)


def split_samples(
    samples: SampleSet, config: ModelSection, label: str
) -> tuple[SampleSet, SampleSet, SampleSet]:
    """Train, validation and test samples by date, with ``horizon`` dates between them."""
    if len(samples) < config.min_samples:
        raise InsufficientDataError(
            f"{label} › insufficient data › need at least {config.min_samples} labelled windows (got: "
            f"{len(samples)})"
        )
    try:
        train_mask, val_mask, test_mask = time_split(
            samples.dates, config.validation_fraction, config.test_fraction, gap=config.horizon
        )
    except ValueError as exc:
        raise InsufficientDataError(f"{label} › insufficient data › {exc}") from None
    tested = int(test_mask.sum())
    if tested < config.min_test_samples:
        raise InsufficientDataError(
            f"{label} › insufficient data › its test segment would hold {tested} samples, fewer than "
            f"model.min_test_samples ({config.min_test_samples}): its figures would be noise; give it more "
            "history (model.lookback_years) or a larger model.test_fraction"
        )
    return samples.subset(train_mask), samples.subset(val_mask), samples.subset(test_mask)


def _train(
    forecaster: Forecaster,
    train: SampleSet,
    val: SampleSet,
    config: ModelSection,
    target_scale: float,
    device: torch.device,
    progress: bool,
    label: str,
    on_epoch: EpochHook | None = None,
) -> tuple[float, int, list[dict[str, float]]]:
    """Epochs of Adam with early stopping on the validation loss; leaves the best epoch's weights loaded.

    Returns the best validation loss, its epoch and the per-epoch losses.
    """
    optimizer = torch.optim.Adam(
        forecaster.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )

    x_train, c_train, y_train = _batches(train, config, target_scale, device)
    x_val, c_val, y_val = _tensors(val, config, target_scale, device)
    generator = torch.Generator().manual_seed(config.seed)
    best_loss, best_state, best_epoch, stale = math.inf, None, 0, 0
    history: list[dict[str, float]] = []
    bar = tqdm(range(1, config.epochs + 1), desc=label, unit="epoch", disable=not progress, leave=False)
    for epoch in bar:
        forecaster.train()
        order = torch.randperm(len(train), generator=generator).to(device)
        total = 0.0
        for start in range(0, len(train), config.batch_size):
            batch = order[start : start + config.batch_size]
            optimizer.zero_grad()
            loss = _loss(
                forecaster, x_train[batch], c_train[batch], y_train[batch], config.return_loss_weight
            )
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * batch.shape[0]
        forecaster.eval()
        with torch.no_grad():
            val_loss = float(_loss(forecaster, x_val, c_val, y_val, config.return_loss_weight))
        history.append({"epoch": epoch, "train_loss": total / len(train), "val_loss": val_loss})
        bar.set_postfix(val_loss=f"{val_loss:.4f}")
        if on_epoch is not None:
            on_epoch(epoch, forecaster)
        if val_loss < best_loss - 1e-6:
            best_loss, best_state, best_epoch, stale = (
                val_loss,
                copy.deepcopy(forecaster.state_dict()),
                epoch,
                0,
            )
        else:
            stale += 1
            if stale >= config.patience:
                break
    bar.close()
    if best_state is not None:
        forecaster.load_state_dict(best_state)
    return best_loss, best_epoch, history


class WindowBatches:
    """``x[batch]`` for windows kept as their rows: the batch's windows, stacked, as a tensor on ``device``
    (the values a stacked tensor indexed by ``batch`` holds)."""

    def __init__(self, windows: WindowRows, device: torch.device) -> None:
        self.windows, self.device = windows, device

    def __getitem__(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.windows.take(batch.cpu().numpy())).to(self.device)


def _tensors(
    part: SampleSet, config: ModelSection, target_scale: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Windows, direction classes and scaled returns of ``part`` as tensors on ``device``."""
    return (
        torch.as_tensor(np.asarray(part.windows), device=device),
        *_labels(part, config, target_scale, device),
    )


def _labels(
    part: SampleSet, config: ModelSection, target_scale: float, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    return (
        torch.as_tensor(direction_classes(part.returns, config.direction_threshold), device=device),
        torch.as_tensor((part.returns / target_scale).astype("float32"), device=device),
    )


def _batches(
    part: SampleSet, config: ModelSection, target_scale: float, device: torch.device
) -> tuple[torch.Tensor | WindowBatches, torch.Tensor, torch.Tensor]:
    """:func:`_tensors` of the training segment, drawn from by batch: windows kept as their rows (a pooled
    set) are cut into each batch as it is drawn (:class:`WindowBatches`), never all stacked."""
    windows = part.windows
    if not isinstance(windows, WindowRows):
        return _tensors(part, config, target_scale, device)
    return (WindowBatches(windows, device), *_labels(part, config, target_scale, device))
