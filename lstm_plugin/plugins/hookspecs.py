"""Every hook a plugin can implement, documented in the manner of pytest's hookspec module.

Plugins implement hooks with the :data:`lstm_plugin.hookimpl` marker and register through the
entry-point group ``lstm_plugin`` (``[options.entry_points] lstm_plugin = name = package.module``)
or ``get_plugin_manager().register(obj)``. Built-in behaviour is itself a plugin
(``lstm_plugin.plugins.builtin``), so a plugin can add to it or, for ``firstresult`` hooks, replace it.
A plugin whose hook raises is reported in a warning and skipped; built-ins are never skipped.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import pandas as pd

    from lstm_plugin.core.config import ModelSection
    from lstm_plugin.core.statuses import ModelType
    from lstm_plugin.model.baselines import Baseline
    from lstm_plugin.training.policy import ModelState
    from lstm_plugin.training.queue import JobView

PROJECT = "lstm_plugin"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


@hookspec
def lstm_features(ohlcv: pd.DataFrame, config: ModelSection, symbol: str) -> pd.DataFrame | None:
    """Return feature columns to feed the LSTM, or ``None`` to add nothing.

    Called once per symbol whenever features are built — for training and for every prediction.

    :param ohlcv: one symbol's cleaned, adjusted bars (index ``date``; columns ``open, high, low,
        close, volume``), possibly only the most recent ``window + FEATURE_HISTORY`` bars.
    :param config: the effective ``model`` settings of the model these features feed: the config's,
        with the symbol's tuned settings in place when it has some (docs/tuning.md); at prediction time,
        the settings the serving model was trained with.
    :param symbol: the symbol whose bars these are (a universal model is fed every pooled symbol's).

    The frame returned must share ``ohlcv``'s index and hold numeric columns whose names no other
    plugin uses. Values at bar t must depend only on bars ``t-59 .. t``: features that read later
    bars leak the future into backtests; features that need earlier bars differ between training
    and serving. Rows without enough history hold NaN.

    Results are concatenated column-wise: built-in features first, then plugins in call order.
    The feature names are stored with each model; a model is served only when the same features
    are produced at prediction time.
    """


@hookspec(firstresult=True)
def lstm_build_model(n_features: int, config: ModelSection, symbol: str, model_type: ModelType) -> Any:
    """Return the ``torch.nn.Module`` core to train, or ``None`` to leave it to the next plugin.

    The first non-``None`` result wins; the built-in plugin (:class:`lstm_plugin.model.network.LSTMCore`)
    answers last. The core receives standardised windows ``(batch, window, n_features)`` and
    returns ``(logits (batch, 3), return (batch,))`` — class order down, neutral, up; the return
    in standardised units. It must be exportable to ONNX with a dynamic batch axis; export
    checks parity with torch and refuses a model that fails.

    :param n_features: number of feature columns.
    :param config: the model's effective settings (``hidden_size``, ``num_layers``, ``dropout``...): the
        config's ``model`` section with the symbol's tuned settings in place (docs/tuning.md); for an
        ensemble, the member's.
    :param symbol: the symbol whose model this is; ``DEFAULT`` for the universal model.
    :param model_type: ``specific`` or ``universal``.
    """


@hookspec
def lstm_training_priority(symbol: str, category: str, priority: float, state: ModelState) -> float | None:
    """Return an amount to add to a training priority (lower trains sooner), or ``None``.

    Called for every training request and plan entry after the priority rules (docs/training-service.md) have
    been applied.
    Amounts from several plugins add up; each appears in the entry's ``reasons`` as
    ``plugin <name> <amount>``. A value that is not a finite number is ignored with a warning.

    :param symbol: the symbol (``DEFAULT`` for the universal model).
    :param category: ``portfolio``, ``on_demand``, ``watchlist``, ``scanning`` or ``universal``.
    :param priority: the priority so far.
    :param state: :class:`lstm_plugin.training.policy.ModelState` — ``available``, ``outdated``,
        ``reliability``, ``in_flight``.
    """


@hookspec
def lstm_adjust_score(symbol: str, score: float, analysis: dict[str, Any]) -> float | None:
    """Return an amount to add to a symbol's combined score, or ``None``.

    Called by :class:`~lstm_plugin.portfolio.enhanced_manager.LSTMEnhancedPortfolioManager` for every
    symbol it analyses, after the LSTM forecast has been blended in (:mod:`lstm_plugin.portfolio.scoring`),
    and only while the LSTM is in use (``lstm.enabled`` and ``lstm.weight > 0``): the technical-only
    manager stays exactly the base one. Amounts from several plugins add up; the result is clipped
    to 0..100 and each amount appears in ``analysis['score_adjustments']``. A value that is not a
    finite number is ignored with a warning.

    :param symbol: the symbol analysed.
    :param score: the combined score so far (0..100).
    :param analysis: the analysis dict so far (read-only by convention): ``technical_score``,
        ``components``, ``indicators``, ``lstm`` (the forecast entry with ``direction``,
        ``confidence``, ``signal``, ``trust``, ``contribution``...), ``as_of``.
    """


@hookspec
def lstm_before_rebalance(when: pd.Timestamp, symbols: list[str], current: dict[str, float]) -> None:
    """Called at every rebalance, after the training pass and before the selection.

    For side effects (logging, refreshing external data, pausing a live run); the result is ignored.

    :param when: the bar time of the rebalance.
    :param symbols: the symbols the strategy can trade at this bar.
    :param current: the current weights ``{symbol: share of portfolio value}``.
    """


@hookspec
def lstm_after_rebalance(
    when: pd.Timestamp, targets: dict[str, float], analyses: dict[str, dict[str, Any]]
) -> dict[str, float] | None:
    """Return new target weights, or ``None`` to keep them.

    Called after the selection and before any order. Plugins are called in turn, each receiving
    the targets the previous one returned, so they compose. Targets must be ``{symbol: weight}``
    with finite weights ≥ 0 summing to at most 1 over symbols the strategy can trade; anything else
    is reported in a warning and ignored.

    :param when: the bar time of the rebalance.
    :param targets: the target weights so far (a copy).
    :param analyses: ``{symbol: analysis}`` of the candidates (see ``analyze_symbol``).
    """


@hookspec
def lstm_after_train(result: JobView) -> None:
    """Called by the training service after each finished training job, in the driver process.

    :param result: the job as the service's snapshot shows it
        (:class:`~lstm_plugin.training.queue.JobView`): ``symbol``, ``model_type``, ``category``,
        ``priority``, ``reasons``, ``state`` (``done``), ``outcome``
        (:class:`~lstm_plugin.core.statuses.OutcomeSummary`: ``status`` ``trained`` (promoted) /
        ``candidate`` (shelved) / ``reused``, ``model_version``, ``trained_at``, ``metrics``...).
    """


@hookspec
def lstm_on_error(where: str, error: str, context: dict[str, Any]) -> None:
    """Called when something fails without stopping the run.

    :param where: ``training`` (a job failed for good), ``forecast`` (a forecast came back with
        status ``error``) or ``rebalance`` (a rebalance raised; the exception is re-raised after
        the hook).
    :param error: the one-line message.
    :param context: ``symbol``, ``when`` and whatever else is known.
    """


@hookspec(firstresult=True)
def lstm_bar_source(spec: str, symbols: list[str], config: Any) -> Any:
    """Return a bar source for ``lstm-plugin paper --source NAME``, or ``None`` if ``spec`` is not yours.

    The object must follow :class:`lstm_plugin.backtrader.live.BarSource` (``name``, ``symbols()``,
    ``history(symbol)``, ``seek(after)``, ``poll()``); see docs/paper.md, *Adapters*. It is how a
    real feed (a vendor's end-of-day files, a broker's bars) is plugged in.

    :param spec: the text after ``--source`` (e.g. ``myvendor:eod``).
    :param symbols: the symbols asked for (``--symbols``), or an empty list for the source's own.
    :param config: the run's :class:`~lstm_plugin.core.config.Config`.
    """


@hookspec
def lstm_baselines() -> list[Baseline] | None:
    """Return baseline forecasters to measure the LSTM against, or ``None``.

    Each object follows :class:`lstm_plugin.model.baselines.Baseline`: a ``name`` (a lower-case
    identifier), ``forecasts_returns`` (its score forecasts the model's target return, so its sign
    is a call with a hit rate) and ``panel(inputs)``, the date × symbol scores from
    :class:`~lstm_plugin.model.baselines.BaselineInputs` (every symbol's bars, the rebalance days,
    the model settings and the LSTM's features). A score at bar t must use bars ≤ t only.

    A baseline runs only when named in ``backtest.baselines`` or ``--baselines``; an unknown name
    there is a config error. The built-ins answer first; a name already taken is warned about and
    skipped. See docs/forecast-evidence.md, *Adding a baseline*.
    """


@hookspec
def lstm_paper_day(
    when: pd.Timestamp, orders: list[dict[str, Any]], fills: list[dict[str, Any]], book: dict[str, Any]
) -> None:
    """Called after a paper day is committed to the journal, with what it did.

    The hook for a real broker adapter: ``orders`` carry the client id ``run:bar-date:symbol``, so
    forwarding them is idempotent (a restart that redoes a day sends the same ids, which a broker
    refuses as duplicates). The paper book stays the record; see docs/paper.md, *Adapters*.

    :param when: the bar date of the day.
    :param orders: the orders sent at its close: ``client_id``, ``symbol``, ``size`` (shares, negative: sell),
    ``target``.
    :param fills: the fills at its open: ``client_id``, ``symbol``, ``size``, ``price``, ``value``,
    ``commission``.
    :param book: ``cash``, ``value`` and ``positions`` (``{symbol: [size, average price]}``) after the day.
    """
