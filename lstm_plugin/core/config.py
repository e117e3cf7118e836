"""Typed configuration: the ``lstm`` and ``lstm_service`` sections plus our own (docs/configuration.md).

Every model forbids unknown keys and validates strictly (``"0.3"`` is not a number), so a typo is
caught before it silently does nothing. Bounds are ``Field(ge=, le=)``, so ``config/schema.json``
shows them to editors. A loaded config is frozen: derive a changed one with
``config.model_copy(update={"lstm": config.lstm.model_copy(update={"weight": 0.0})})``. :func:`load_config`
turns any failure into a one-line
breadcrumb ``file › dotted.path › rule (got: value)``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, ConfigDict, Field, ValidationError, model_validator

from lstm_plugin.core.config_errors import describe, format_value
from lstm_plugin.core.config_fields import (
    Count,
    Days,
    Fraction,
    Priority,
    Seconds,
    Section,
    Symbol,
    Threads,
    bounded,
    no_repeats,
)
from lstm_plugin.core.config_forecast_use import ExitsSection, RiskSection
from lstm_plugin.core.config_model import EnsembleMember, ModelSection
from lstm_plugin.core.config_trading import (
    BARS_PER_RULE,
    BacktestSection,
    BaselineName,
    PortfolioSection,
    holding_bars,
)
from lstm_plugin.core.config_tuning import SearchSpace, TuningSection
from lstm_plugin.core.errors import ConfigError

#: A config file is a few kB; a bigger one is a mistake (``--config /dev/zero``, a data file): not read.
MAX_CONFIG_BYTES = 1 << 20

__all__ = [
    "BacktestSection",
    "BaselineName",
    "Config",
    "DataSection",
    "EnsembleMember",
    "ExitsSection",
    "InferenceSection",
    "LSTMSection",
    "LSTMServiceSection",
    "ModelSection",
    "PluginsSection",
    "PortfolioSection",
    "RaySection",
    "RegistrySection",
    "RiskSection",
    "SearchSpace",
    "TuningSection",
    "UniversalSection",
    "config_schema",
    "load_config",
    "model_config_hash",
    "training_backend",
    "validate_config",
]


class LSTMSection(Section):
    """The ``lstm`` block: how the portfolio manager uses forecasts."""

    enabled: bool = Field(True, description="Use LSTM forecasts at all; false gives the technical manager.")
    weight: Fraction = Field(0.3, description="Influence of the LSTM on the combined score (0-1).")
    max_training_models: Annotated[int, bounded(1, 10_000)] = Field(
        5, description="Most trainings one update may start."
    )
    max_initial_symbols: Count = Field(50, description="Most symbols the initial market scan keeps.")
    training_interval: Seconds = Field(86400, description="Seconds between training passes.")
    prediction_cache_ttl: Seconds = Field(3600, description="Seconds a cached prediction stays valid.")
    reliability_threshold: Fraction = Field(
        0.6, description="Least model reliability for a forecast to count fully."
    )
    force_retrain_days: Days = Field(30, description="Model age in days after which it is outdated.")
    model_quality_threshold: Fraction = Field(
        0.7, description="Least model quality for a forecast to count fully."
    )
    max_model_age_days: Days | None = Field(
        None,
        description="A model trained longer ago than this is 'stale': its forecast carries no weight (a live "
        "run whose "
        "training stalled); null: no limit.",
    )
    below_threshold: Literal["scale", "ignore"] = Field(
        "scale",
        description="A forecast whose model is below a threshold: 'scale' counts it at metric/threshold, "
        "'ignore' not at all.",
    )
    weight_mode: Literal["fixed", "adaptive"] = Field(
        "fixed",
        description="'fixed' blends at lstm.weight; 'adaptive' scales it by the trailing out-of-sample "
        "rank IC of the served forecasts (docs/forecast-evidence.md).",
    )
    adaptive_window: Annotated[int, bounded(1, 1000)] = Field(
        12, description="Adaptive weight: the last rebalances with known outcomes it reads."
    )
    adaptive_shrinkage: Annotated[float, bounded(0, 1000)] = Field(
        12.0, description="Adaptive weight: rebalances at IC 0 the trailing mean is shrunk with."
    )
    adaptive_full_ic: Annotated[float, bounded(0.001, 1)] = Field(
        0.10, description="Adaptive weight: the shrunk rank IC that earns the full lstm.weight."
    )
    exits: ExitsSection = Field(
        default_factory=ExitsSection,
        description="Forecast exits between rebalances (docs/exits-and-risk.md); off by default.",
    )
    risk: RiskSection = Field(
        default_factory=RiskSection,
        description="Forecast-driven sizing of the book at each rebalance (docs/exits-and-risk.md); off by "
        "default.",
    )


class SchedulePriority(Section):
    """Base training priority by category (lower trains sooner)."""

    portfolio_symbols: Priority = 20
    watchlist_symbols: Priority = 40
    scanning_symbols: Priority = 60
    on_demand_symbols: Priority = 30


class RetrainingSection(Section):
    auto_retrain: bool = Field(True, description="Retrain outdated models without being asked.")
    min_reliability_for_update: Fraction = Field(
        0.5, description="A new model below this reliability does not replace the current one."
    )
    force_retrain_age_days: Days = Field(45, description="The service retrains models older than this.")
    on_degradation: bool = Field(
        True,
        description="Retrain a served model whose live hit rate or IC on known outcomes falls below its "
        "test segment's by more than degradation_margin (docs/forecast-evidence.md).",
    )
    degradation_margin: Fraction = Field(0.1, description="How far below its test figures a model may fall.")
    degradation_min_outcomes: Annotated[int, bounded(3, 1_000_000)] = Field(
        60, description="Known outcomes a live figure needs before it can call a model degraded."
    )


class UniversalSection(Section):
    """The pooled model every symbol without a ready model of its own falls back to."""

    enabled: bool = Field(
        True, description="Let the service train and retrain the universal model on its own."
    )
    priority: Priority = Field(
        10, description="Base training priority of the universal model (lower trains sooner)."
    )
    retrain_days: Days = Field(180, description="Age in days after which the service retrains it.")
    symbols: Annotated[list[Symbol], AfterValidator(no_repeats)] | None = Field(
        None, description="Symbols it pools; null means the service's universe."
    )


class RaySection(Section):
    address: str | None = Field(
        None,
        description="Ray cluster address ('auto', 'host:6379', 'ray://host:10001'), joined on purpose; null "
        "starts an isolated local Ray of its own (never a cluster already running here).",
    )
    num_cpus: Annotated[int, bounded(1, 4096)] | None = Field(
        None, description="CPUs of the local cluster when one is started; null: all."
    )
    cpus_per_task: Annotated[int, bounded(1, 1024)] = Field(
        1, description="CPUs (and torch threads) each training task takes."
    )
    connect_timeout: Annotated[float, bounded(1, 3600)] = Field(
        30.0, description="Seconds to wait for the cluster at address before failing (nothing answers there)."
    )


class LSTMServiceSection(Section):
    """The ``lstm_service`` block: the training service."""

    training_threads: Annotated[int, bounded(1, 1024)] = Field(
        2, description="Parallel training workers (local backend)."
    )
    enable_monitoring: bool = Field(
        True, description="Write the service snapshot to <registry>/service.json (lstm-plugin service)."
    )
    schedule_priority: SchedulePriority = SchedulePriority()
    retraining: RetrainingSection = RetrainingSection()
    backend: Literal["sync", "local", "ray"] = Field(
        "local",
        description="sync: in the caller, in order (backtests); local: worker processes; ray: Ray tasks.",
    )
    max_retries: Annotated[int, bounded(0, 100)] = Field(
        2, description="Retries of a training that failed for a transient reason."
    )
    retry_backoff_seconds: Annotated[float, bounded(0, 86_400)] = Field(
        30.0, description="Wait before the first retry, doubled for each later one (clock seconds)."
    )
    job_timeout: Annotated[float, bounded(1, 7 * 86_400)] | None = Field(
        3600.0,
        description="Seconds a training may run on a local worker or a Ray task before it fails and its "
        "worker is stopped (a plugin that hangs); null: no limit. A sync training cannot be interrupted.",
    )
    universal: UniversalSection = UniversalSection()
    ray: RaySection = RaySection()


class DataSection(Section):
    path: str | None = Field(None, description="Folder of SYMBOL.csv files; null uses the bundled data set.")
    symbols: Annotated[list[Symbol], AfterValidator(no_repeats)] | None = Field(
        None, description="Universe; null means every file in the folder."
    )
    max_file_mb: Annotated[int, bounded(1, 1_000_000)] = Field(
        256,
        description="MiB of text a data file may hold, counted after decompression (a gzip that expands to "
        "gigabytes stops there).",
    )
    max_move: Annotated[float, bounded(1.01, 1e9)] | None = Field(
        10.0,
        description="A live bar whose price is more than this many times the previous close, or less than "
        "1/this, is refused as a source failure (a unit or typing error); null: no limit.",
    )


class RegistrySection(Section):
    path: str = Field("lstm_models", description="Model registry folder (relative to the working directory).")
    keep_versions: Count = Field(50, description="Versions kept per model; older ones are deleted.")


class InferenceSection(Section):
    device: Literal["cpu", "cuda", "auto"] = Field(
        "cpu", description="cuda/auto use onnxruntime's CUDA provider when it is installed."
    )
    intra_op_threads: Threads = Field(
        1, description="Threads per InferenceSession; 1 keeps many sessions from fighting over cores."
    )
    session_cache_mb: Annotated[float, bounded(1, 1_000_000)] = Field(
        64.0,
        description="Memory the cached onnxruntime sessions may hold, in MiB (about 0.4 MiB per default "
        "model); the least recently used go first, and a version is released when a newer one replaces it.",
    )


class PluginsSection(Section):
    load_entry_points: bool = Field(
        True, description="Load plugins from the 'lstm_plugin' entry-point group."
    )
    disabled: list[str] = Field(default_factory=list, description="Plugin names to block.")


class Config(Section):
    """The whole ``lstm_config.json``; every section is optional."""

    schema_: str | None = Field(
        None, alias="$schema", description="Optional JSON Schema reference for editors."
    )
    lstm: LSTMSection = LSTMSection()
    lstm_service: LSTMServiceSection = LSTMServiceSection()
    model: ModelSection = ModelSection()
    portfolio: PortfolioSection = PortfolioSection()
    backtest: BacktestSection = BacktestSection()
    data: DataSection = DataSection()
    registry: RegistrySection = RegistrySection()
    inference: InferenceSection = InferenceSection()
    plugins: PluginsSection = PluginsSection()
    tuning: TuningSection = TuningSection()

    model_config = ConfigDict(
        extra="forbid", strict=True, populate_by_name=True, allow_inf_nan=False, frozen=True
    )

    @model_validator(mode="before")
    @classmethod
    def _holding_period_horizon(cls, raw: Any) -> Any:
        """``model.horizon: "rebalance"`` becomes the holding period of ``backtest.rebalance``, in bars."""
        model = raw.get("model") if isinstance(raw, dict) else None
        if not isinstance(model, dict) or model.get("horizon") != "rebalance":
            return raw
        backtest = raw.get("backtest")
        rule = backtest.get("rebalance", "monthly") if isinstance(backtest, dict) else "monthly"
        if not (
            rule in BARS_PER_RULE or (isinstance(rule, int) and not isinstance(rule, bool) and rule >= 1)
        ):
            return raw  # the rule's own error says what is wrong
        return {**raw, "model": {**model, "horizon": min(252, holding_bars(rule))}}

    @model_validator(mode="after")
    def _tuning_fits_the_model(self) -> Config:
        """Continual tuning searches one network; a searched dropout needs a trial with two layers."""
        space = self.tuning.space
        layers = self.model.num_layers if space.num_layers is None else space.num_layers.high
        if self.tuning.every_days is not None and self.model.ensemble:
            raise ValueError(
                "tuning.every_days › continual tuning searches one network's settings; model.ensemble "
                "is set: set tuning.every_days to null"
            )
        if space.dropout is not None and layers < 2:
            raise ValueError(
                "tuning.space.dropout › every trial has one layer, where dropout does not act: search "
                "num_layers up to 2 or more, or set tuning.space.dropout to null"
            )
        return self


def validate_config(raw: Any, source: str = "config") -> Config:
    """Validate an already-parsed mapping; raise :class:`ConfigError` with a breadcrumb line."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source} › (top level) › must be a JSON object (got: {format_value(raw)})")
    try:
        return Config.model_validate(raw)
    except RecursionError:
        raise ConfigError(f"{source} › (top level) › nested too deeply to be a config") from None
    except ValidationError as exc:
        errors = exc.errors()
        first = errors[0]
        path, rule = describe(first, Config)
        got = (
            ""
            if first["type"] in ("missing", "extra_forbidden") or not path
            else f" (got: {format_value(first['input'])})"
        )
        more = f" [and {len(errors) - 1} more]" if len(errors) > 1 else ""
        where = f"{path} › " if path else ""  # a check across sections names its settings itself
        raise ConfigError(f"{source} › {where}{rule}{got}{more}") from None


def load_config(path: str | Path | None = None) -> Config:
    """Read and validate a JSON config file; ``None`` gives the defaults.

    Raises :class:`ConfigError` naming the file, the dotted path, the rule and the value; a JSON
    syntax error names the line and column.
    """
    if path is None:
        return Config()
    file = Path(path)
    text = _config_text(file)
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file.name} › line {exc.lineno}, column {exc.colno} › invalid JSON: {exc.msg}"
        ) from None
    except RecursionError:
        raise ConfigError(f"{file.name} › (top level) › nested too deeply to be a config") from None
    return validate_config(raw, file.name)


def _config_text(file: Path) -> str:
    """The text of a config file: a regular file (a FIFO or a device would block or never end) of at most
    :data:`MAX_CONFIG_BYTES`, UTF-8 with or without a byte-order mark."""
    try:
        with open(file, "rb", opener=_nonblocking) as stream:
            info = os.fstat(stream.fileno())
            if not stat.S_ISREG(info.st_mode):
                raise ConfigError(f"{file} › cannot read config › not a regular file")
            blob = stream.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"{file} › cannot read config › file not found") from None
    except OSError as exc:
        raise ConfigError(f"{file} › cannot read config › {exc.strerror or exc}") from None
    if len(blob) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{file} › cannot read config › larger than {MAX_CONFIG_BYTES // 2**20} MiB")
    try:
        return blob.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{file} › cannot read config › not UTF-8 ({exc.reason} at byte {exc.start})"
        ) from None


def _nonblocking(path: str, flags: int) -> int:
    """Open without blocking: a FIFO with no writer would otherwise wait forever in ``open``."""
    return os.open(path, flags | os.O_NONBLOCK)


def config_schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Config`, as written to ``config/schema.json``."""
    schema = Config.model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "lstm_plugin configuration (config/lstm_config.json)"
    return schema


def training_backend(config: Config, given: str | None = None, walk_forward: bool = False) -> str:
    """Where a command's trainings run, by one rule (docs/cli.md, *Backends*): ``given`` (``--backend``, a
    ``backend=`` argument); else, for a walk-forward (``backtest``, ``pretrain``, ``LSTMSignals``),
    ``backtest.backend`` when the config sets it; else ``lstm_service.backend`` (default ``local``)."""
    if given:
        return given
    if walk_forward and config.backtest.backend is not None:
        return config.backtest.backend
    return config.lstm_service.backend


def model_config_hash(model: ModelSection, feature_names: list[str] | None = None) -> str:
    """Hash of everything that shapes a trained model; equal hashes mean interchangeable trainings (where it
    trains, on how many threads and the floor of test samples, which only decides whether it is fitted, do
    not shape it; nor do the warm-start settings while ``warm_start`` is off, so models trained before it
    existed keep their keys and bytes)."""
    unused = {"device", "torch_threads", "min_test_samples"}
    if not model.warm_start:
        unused |= {"warm_start", "warm_start_epochs"}
    payload = model.model_dump(mode="json", exclude=unused)
    payload["features"] = feature_names or []
    blob = json.dumps(payload, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
