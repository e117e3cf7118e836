"""``LSTMSignals``: the strategy hook — LSTM-enhanced target weights for any ``bt.Strategy``.

Create it in your strategy's ``__init__`` and call it at your own bars::

    class MyStrategy(bt.Strategy):
        def __init__(self):
            self.lstm = LSTMSignals(self, config="config/lstm_config.json")

        def next(self):
            if self.my_condition():
                decision = self.lstm.decide()          # train (walk-forward), then select, as of this bar
                self.lstm.apply(decision.targets)      # sells first, then buys (order_target_percent)

``decide()`` sets the helper's clock to the current bar, runs one training pass (up to
``lstm.max_training_models`` models, best priority first, on bars up to this one, stamped with its
date; concurrently on ``local`` workers or ``ray`` tasks, and waits for them: the same models as
``sync``, one after another in this process), calls the ``lstm_before_rebalance`` hook, selects through
:class:`~lstm_plugin.portfolio.enhanced_manager.LSTMEnhancedPortfolioManager` as of the bar, keeps the
symbols that have a bar today, lets ``lstm_after_rebalance`` plugins change the targets, and tells
the listeners (:class:`~lstm_plugin.backtrader.analyzer.LSTMForecastAnalyzer`). Forecasts come
from a :class:`~lstm_plugin.serving.tape.ForecastTape`: batched per model version, bit-identical to
per-bar serving.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.backtrader.bar_service import bar_clock_service, signals_config
from lstm_plugin.backtrader.feeds import feed_source, feed_symbol
from lstm_plugin.backtrader.forecast_controls import ForecastControls
from lstm_plugin.core.clock import ManualClock
from lstm_plugin.core.config import Config, load_config, training_backend
from lstm_plugin.core.data import DataSource
from lstm_plugin.plugins.manager import training_plugins
from lstm_plugin.portfolio.earned_weight import (
    EarnedWeight,
    ServedForecasts,
    TrailingEvidence,
    adaptive_weight,
)
from lstm_plugin.portfolio.enhanced_manager import LSTMEnhancedPortfolioManager
from lstm_plugin.portfolio.forecast_exits import ExitCandidate
from lstm_plugin.portfolio.forecast_risk import RiskReport
from lstm_plugin.portfolio.rebalancing import order_sequence, valid_targets
from lstm_plugin.portfolio.results import Analysis
from lstm_plugin.serving.registry import ModelRegistry
from lstm_plugin.serving.results import Prediction
from lstm_plugin.serving.run_registry import RunRegistry
from lstm_plugin.training.backends import Backend, backtest_workers, make_backend, sendable
from lstm_plugin.training.queue import JobView
from lstm_plugin.training.service import TrainingService

logger = logging.getLogger(__name__)

__all__ = ["Decision", "LSTMSignals", "training_row"]


@dataclass
class Decision:
    """One rebalance: the bar, the target weights, and what they were built from."""

    when: pd.Timestamp
    targets: dict[str, float]
    analyses: dict[str, Analysis]
    forecasts: dict[str, Prediction] = field(default_factory=dict)
    trainings: list[dict[str, Any]] = field(default_factory=list)
    #: the blend weight used and the evidence behind it (an adaptive weight's trailing rank IC)
    weight: EarnedWeight | None = None
    #: how ``lstm.risk`` sized the book (``None`` with every part off; docs/exits-and-risk.md)
    risk: RiskReport | None = None


def training_row(job: JobView, when: pd.Timestamp) -> dict[str, Any]:
    """A finished training job (the service's view) as one plain row, stamped with the clock's ``when``."""
    outcome: Mapping[str, Any] = job.get("outcome") or {}
    return {
        "date": when.isoformat(),
        "symbol": job["symbol"],
        "model_type": job["model_type"],
        "category": job["category"],
        "priority": job["priority"],
        "status": outcome.get("status", job["state"]),
        "stage": outcome.get("stage") if outcome.get("decided") else None,  # decided by this run
        "stage_rule": outcome.get("stage_rule") if outcome.get("decided") else None,
        "model_version": outcome.get("model_version"),
        "reliability": (outcome.get("metrics") or {}).get("reliability"),
        "seconds": job.get("seconds"),
        "error": job.get("error"),
    }


class LSTMSignals:
    """See the module docstring. Keyword arguments:

    - ``config``: a :class:`~lstm_plugin.core.config.Config`, a path to ``lstm_config.json``, or ``None``;
    - ``registry``: a :class:`~lstm_plugin.serving.registry.ModelRegistry` or a folder (default
    ``registry.path``). With ``train`` the run serves only the models it trains itself, or finds
    registered from this very training (same config, data and date): what other runs left in the folder
    never changes its results (:class:`~lstm_plugin.serving.run_registry.RunRegistry`, docs/models.md);
    - ``source``: the feeds' full history as a DataSource (default: read from the feeds' CSV paths or
    DataFrames);
    - ``use_lstm``: ``False`` runs the same selection with ``lstm.weight = 0`` (technical only);
    - ``train``: train inside the run (walk-forward); ``False`` serves the models already registered, as
      they are;
    - ``num_symbols``: positions (default ``portfolio.num_symbols``);
    - ``plugins``: extra plugin objects; ``progress``: progress bars while training;
    - ``backend``: where a rebalance's trainings run: ``sync`` (one after another, in this process),
      ``local`` (``backtest.workers`` processes) or ``ray``; default ``backtest.backend``, else
      ``lstm_service.backend``. ``decide()``
      waits for them, so every backend gives the same bytes. Plugins defined in ``__main__`` (a
      notebook cell) cannot reach local workers: those runs use ``sync``, with a warning;
    - ``growing``: the source gains bars during the run (a paper run's bar store);
    - ``service``: a training service on a :class:`~lstm_plugin.core.clock.ManualClock` that outlives
      this helper (a paper session's, whose background trainings go on between steps), built by
      :func:`~lstm_plugin.backtrader.bar_service.bar_clock_service` as the helper's own is; the
      helper then leaves it running when it closes, and ``growing`` is the service's.
    """

    def __init__(
        self,
        strategy: Any,
        *,
        config: Config | str | Path | None = None,
        registry: ModelRegistry | str | Path | None = None,
        source: DataSource | None = None,
        use_lstm: bool = True,
        train: bool = True,
        num_symbols: int | None = None,
        plugins: tuple[Any, ...] | list[Any] = (),
        progress: bool = False,
        backend: str | None = None,
        growing: bool = False,
        service: TrainingService | None = None,
    ) -> None:
        self.strategy = strategy
        base = config if isinstance(config, Config) else load_config(config)
        self.feeds = {feed_symbol(data): data for data in strategy.datas}
        self.config = signals_config(base, sorted(self.feeds), use_lstm)
        self.source = source if source is not None else feed_source(strategy.datas)
        if not isinstance(registry, ModelRegistry):
            registry = ModelRegistry(
                registry or self.config.registry.path, self.config.registry.keep_versions
            )
        if train and service is None and not isinstance(registry, RunRegistry):
            # the run's own view: what earlier runs left in the folder never serves here
            registry = RunRegistry(registry.root, registry.keep_versions)
        self.registry = registry
        self.train = train
        self.num_symbols = num_symbols
        self._owns_service = service is None
        if service is None:
            service = bar_clock_service(
                self.config,
                self.source,
                registry,
                sorted(self.feeds),
                backend=self._backend(backend, plugins),
                plugins=plugins,
                progress=progress,
                growing=growing,
            )
        elif not isinstance(service.clock, ManualClock):
            raise TypeError("service › must run on a ManualClock: the helper moves it to each bar")
        self.service = service
        self.clock: ManualClock = service.clock  # type: ignore[assignment]  # checked above, or made so
        self.manager = LSTMEnhancedPortfolioManager(service=self.service)
        self.plugins = self.service.plugins
        self.listeners: list[Any] = []
        self.trainings: list[dict[str, Any]] = []
        self._orders: list[int] = []  # each training's place in the order jobs started
        self.counts: Counter[str] = Counter()
        self.shelved_rules: Counter[str] = Counter()  # why this run shelved its new models
        self._observed: tuple[pd.Timestamp | None, dict[str, Prediction]] = (None, {})
        self.evidence = TrailingEvidence()  # what each rebalance was served: the adaptive weight's evidence
        self.controls = ForecastControls(self)  # lstm.exits and lstm.risk (docs/exits-and-risk.md)
        self.service.add_listener(self._on_training)

    def _backend(self, name: str | None, plugins: tuple[Any, ...] | list[Any]) -> Backend | str:
        """The backend of the helper's own service (:func:`~lstm_plugin.core.config.training_backend`); local
        workers sized by :func:`~lstm_plugin.training.backends.backtest_workers`."""
        chosen = training_backend(self.config, name, walk_forward=True)
        if chosen == "local" and not sendable(training_plugins(plugins)):
            logger.warning(
                "backend › plugins defined in __main__ cannot reach local workers; training in "
                "this process (sync), with the same results"
            )
            chosen = "sync"
        if chosen != "local":
            return chosen
        return make_backend("local", self.config, workers=backtest_workers(self.config))

    # ------------------------------------------------------------------ state
    @property
    def lstm_active(self) -> bool:
        return self.manager.lstm_active

    def today(self) -> pd.Timestamp:
        """The current bar's date (midnight), the time everything is asked at."""
        return pd.Timestamp(self.strategy.datetime.date(0))

    def tradable(self) -> list[str]:
        """Symbols whose feed has a bar today (started, and not stopped)."""
        today = self.today().date()
        return sorted(s for s, d in self.feeds.items() if len(d) and d.datetime.date(0) == today)

    def current_weights(self) -> dict[str, float]:
        broker = self.strategy.broker
        value = broker.getvalue()
        weights = {}
        for symbol, data in self.feeds.items():
            size = self.strategy.getposition(data).size
            if size and len(data):
                weights[symbol] = size * data.close[0] / value
        return weights

    def observe(self) -> dict[str, Prediction]:
        """The served models' forecasts of the tradable symbols at the current bar, with no training and
        no hooks, once per bar (later calls on the same bar return the same dicts). Call it on every bar,
        after any rebalance: the service scores these forecasts as their outcomes become known, to
        retrain a model that degrades (``retraining.on_degradation``), and
        :class:`~lstm_plugin.backtrader.analyzer.LSTMForecastAnalyzer` measures them
        (docs/forecast-evidence.md). :class:`~lstm_plugin.backtrader.strategy.LSTMRebalanceStrategy`
        calls it; the clock moves forward to the bar if it is behind (a bar between rebalances)."""
        when = self.today()
        if self._observed[0] == when:
            return self._observed[1]
        forecasts: dict[str, Prediction] = {}
        if self.lstm_active:
            if self.clock.now() < when:
                self.clock.set(when)
            forecasts = self.service.forecasts.predict_many(self.tradable(), as_of=when)
        self._observed = (when, forecasts)
        return forecasts

    def prefetch(self, rebalances: list[pd.Timestamp]) -> None:
        """The run's rebalance days, known at its start (a backtest): trainings predictable from them alone
        (the universal model's) start on workers a pass leaves idle, and each pass takes its result
        (:mod:`lstm_plugin.training.prefetch`; the same bytes). Nothing for a ``sync`` backend, a
        shared service or a run without training."""
        if self._owns_service and self.train and self.lstm_active:
            self.service.prefetch_universal(rebalances)

    def _train_pass(self, before: int) -> None:
        """One training pass; with its own service, wait for the pass's jobs (walk-forward: this bar's
        models serve this bar), then list them in the order they started, as ``sync`` finishes them."""
        self.service.update()
        if self._owns_service and not self.service.backend.inline:
            self.service.finish_pass()
            pairs = zip(self._orders[before:], self.trainings[before:], strict=True)
            self.trainings[before:] = [row for _, row in sorted(pairs, key=lambda pair: pair[0])]

    def _on_training(self, job: JobView) -> None:
        row = training_row(job, self.clock.now())
        self._orders.append(job["order"] if job["order"] is not None else -1)
        # trained = fitted in this run, whatever its stage (one definition with the service's counts)
        self.counts["trained" if row["status"] == "candidate" else row["status"]] += 1
        if row["stage"] is not None:
            self.counts["promoted" if row["stage"] == "production" else "shelved"] += 1
            if row["stage"] != "production":
                self.shelved_rules[row["stage_rule"]] += 1
        self.trainings.append(row)

    # ------------------------------------------------------------------ the hook
    def decide(self) -> Decision:
        """Train, then select, as of the current bar (see the module docstring)."""
        when = self.today()
        self.clock.set(when)
        before = len(self.trainings)
        try:
            if self.train and self.lstm_active:
                self._train_pass(before)
            tradable = self.tradable()
            weight = self._blend_weight(when)
            self.plugins.call_each(
                "lstm_before_rebalance", when=when, symbols=tradable, current=self.current_weights()
            )
            selected = self.manager.select_portfolio(self.num_symbols, as_of=when)
            targets = {s: w for s, w in selected.items() if s in tradable}
            targets = self.plugins.call_chain(
                "lstm_after_rebalance",
                "targets",
                dict(targets),
                accept=valid_targets(tradable),
                when=when,
                analyses=self.manager.last_analyses,
            )
            forecasts = (
                self.manager.lstm_integration.analyze_symbols_with_lstm(tradable, as_of=when)
                if self.lstm_active
                else {}
            )
            targets, risk = self.controls.size(dict(targets), when, forecasts)
        except Exception as exc:
            self.plugins.call_each(
                "lstm_on_error",
                where="rebalance",
                error=f"{type(exc).__name__}: {exc}",
                context={"when": when.isoformat()},
            )
            raise
        self._record_forecasts(when, forecasts)
        self.controls.rebalanced()
        decision = Decision(
            when, dict(targets), self.manager.last_analyses, forecasts, self.trainings[before:], weight, risk
        )
        for listener in self.listeners:
            listener.on_decision(decision)
        return decision

    def _record_forecasts(self, when: pd.Timestamp, forecasts: dict[str, Prediction]) -> None:
        """Failed forecasts go to ``lstm_on_error``; served ones to the adaptive weight's evidence."""
        for symbol, forecast in forecasts.items():
            if forecast["status"] == "error":
                self.plugins.call_each(
                    "lstm_on_error",
                    where="forecast",
                    error=forecast["message"],
                    context={"symbol": symbol, "when": when.isoformat()},
                )
        served = {s: p["expected_log_return"] for s, p in forecasts.items() if p["status"] == "success"}
        self.evidence.add(ServedForecasts(when, {s: float(v) for s, v in served.items() if v is not None}))

    def _blend_weight(self, when: pd.Timestamp) -> EarnedWeight:
        """The weight this rebalance blends at: ``lstm.weight``, or with ``lstm.weight_mode: adaptive`` the
        weight the served forecasts have earned on outcomes known now
        (:mod:`lstm_plugin.portfolio.earned_weight`)."""
        settings = self.config.lstm
        integration = self.manager.lstm_integration
        if settings.weight_mode == "fixed" or not self.lstm_active:
            return {
                "date": when.isoformat(),
                "weight": integration.weight,
                "trailing_rank_ic": None,
                "evidence": 0,
            }
        ics = self.evidence.rank_ics(
            lambda symbol: self.source.load(symbol, end=when)["close"],
            self.config.model.horizon,
            settings.adaptive_window,
        )
        weight, trailing, evidence = adaptive_weight(
            ics,
            settings.weight,
            window=settings.adaptive_window,
            shrinkage=settings.adaptive_shrinkage,
            full_ic=settings.adaptive_full_ic,
        )
        integration.blend_weight = weight
        return {
            "date": when.isoformat(),
            "weight": weight,
            "trailing_rank_ic": trailing,
            "evidence": evidence,
        }

    def exit_candidates(self) -> list[ExitCandidate]:
        """Between rebalances, on every bar: the holdings whose fresh forecast has breached
        ``lstm.exits`` for ``bars`` bars in a row, each once per holding period (none with exits off).
        Pass them to :meth:`exit`; or use them as your own strategy's signal (docs/exits-and-risk.md)."""
        return self.controls.exit_candidates()

    def exit(
        self, candidates: list[ExitCandidate], order_info: Callable[[str], dict[str, Any]] | None = None
    ) -> list[Any]:
        """Sell each candidate down to its ``keep`` share at the next open, the order carrying the exit's
        reason, forecast and model version. Returns the orders."""
        return self.controls.exit(candidates, order_info)

    def apply(
        self,
        targets: dict[str, float],
        cash_buffer: float | None = None,
        order_info: Callable[[str], dict[str, Any]] | None = None,
    ) -> list[Any]:
        """Trade to ``targets`` (× (1 − ``backtest.cash_buffer``)): reductions first, then increases,
        through ``order_target_percent``; symbols without a bar today are left alone. ``order_info(symbol)``
        gives extra order fields (a paper run's client id). Returns the orders."""
        buffer = self.config.backtest.cash_buffer if cash_buffer is None else cash_buffer
        tradable = set(self.tradable())
        current = {s: w for s, w in self.current_weights().items() if s in tradable}
        wanted = {s: w * (1.0 - buffer) for s, w in targets.items() if s in tradable}
        orders = []
        for symbol, weight in order_sequence(current, wanted):
            order = self.strategy.order_target_percent(
                data=self.feeds[symbol],
                target=weight,
                **{"reason": "rebalance", **(order_info(symbol) if order_info else {})},
            )
            if order is not None:
                orders.append(order)
        return orders

    def seconds(self) -> dict[str, float]:
        """Where the run's time went beside Backtrader: its service's
        (:meth:`~lstm_plugin.training.service.TrainingService.seconds`) and ``forecasts`` (serving)."""
        return {**self.service.seconds(), "forecasts": self.service.forecasts.seconds}

    def close(self) -> None:
        if self._owns_service:
            self.service.shutdown()
        else:
            self.service.remove_listener(self._on_training)
