"""A tuning study: Optuna's seeded TPE sampler proposes settings, a backend runs the trials, the study keeps
every finished one in ``<registry>/tuning.sqlite``.

The driver alone writes the study (an exclusive lock on the file's folder makes a second ``tune`` on the
same registry fail at once instead of racing it). Trials are proposed ``tuning.parallel`` at a time, each
by a sampler seeded with the study's seed and the number of trials finished before it, and each carries
the curves of the finished ones for its median rule (:mod:`~.trial`): so the same data,
config and seed give the same trials, pruned the same way, on ``sync``, ``local`` and ``ray``. A tuning
killed at any moment loses only the trials that were running; they are proposed again, with the same
settings, when it resumes. The first trial of a study is the config's own settings, so the best is never
worse than them on the validation folds (docs/tuning.md).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import math
import time
import warnings
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.core.clock import Clock
from lstm_plugin.core.config import Config
from lstm_plugin.core.data import DataSource, frame_fingerprint
from lstm_plugin.core.errors import ConfigError, LSTMPluginError, RegistryError
from lstm_plugin.serving.registry import ModelRegistry
from lstm_plugin.serving.tuned import TunedSettings, TunedStore
from lstm_plugin.training.jobs import TrainJob, job_frames
from lstm_plugin.training.trainer import ModelTrainer
from lstm_plugin.training.tuning.space import space_fingerprint, suggest
from lstm_plugin.training.tuning.trial import TrialJob, TrialResult

logger = logging.getLogger(__name__)

__all__ = ["STUDY_FILE", "Tuner", "TuningError", "study_name"]

STUDY_FILE = "tuning.sqlite"


class TuningError(LSTMPluginError):
    """A study that cannot be used as asked: another search space or data, a damaged file, a lock held."""


def study_name(model_type: str, name: str, as_of: pd.Timestamp) -> str:
    return f"{model_type}/{name}@{as_of:%Y-%m-%d}"


@dataclass
class _Progress:
    """What the bar shows: finished trials, pruned ones, the best value so far."""

    bar: Any
    pruned: int = 0

    def show(self, finished: int, best: float | None) -> None:
        self.bar.update(finished - self.bar.n)
        postfix = {"pruned": self.pruned}
        if best is not None:
            postfix["best"] = f"{best:+.4f}"  # type: ignore[assignment]
        self.bar.set_postfix(postfix)


class Tuner:
    """Runs studies for one config, data source and registry on a training backend."""

    def __init__(
        self,
        config: Config,
        source: DataSource,
        registry: ModelRegistry,
        backend: Any,
        progress: bool = True,
        clock: Clock | None = None,
    ) -> None:
        self.config = config
        self.registry = registry
        self.backend = backend
        self.progress = progress
        self.trainer = ModelTrainer(config, source, registry, clock=clock, progress=False)
        self.trainer.ship_source = backend.reads_files
        self.tuned = TunedStore(registry.root)

    @property
    def path(self) -> Path:
        return self.registry.root / STUDY_FILE

    def tune(
        self,
        model_type: str,
        name: str,
        as_of: pd.Timestamp,
        trials: int,
        timeout: float | None = None,
        restart: bool = False,
    ) -> TunedSettings:
        """Run the study of ``name``'s model as of ``as_of`` until it holds ``trials`` finished trials (or
        ``timeout`` seconds pass), and keep its best settings for the trainings from ``as_of`` on."""
        if self.config.model.ensemble:
            raise ConfigError("tune › model.ensemble is set: a tuning searches one network's settings")
        job = (
            self.trainer.prepare_universal(as_of=as_of, tuned=False)
            if model_type == "universal"
            else self.trainer.prepare_specific(name, as_of=as_of, tuned=False)
        )
        space = self.config.tuning.space
        if job.benchmark is None and space.target is not None and "excess" in space.target.choices:
            job = dataclasses.replace(job, benchmark=self.trainer.benchmark(job.trained_at))
        label = study_name(model_type, job.name, job.trained_at)
        with self._locked():
            study = self._study(label, job, restart)
            started = time.monotonic()
            bar = _bar(self.progress, label, trials)
            progress = _Progress(bar)
            try:
                self._run(study, job, trials, timeout, started, progress)
            finally:
                bar.close()
            return self._keep(study, job, label, progress.pruned)

    # ------------------------------------------------------------------ the study
    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """One ``tune`` per registry at a time: the lock goes with the process, SIGKILL included."""
        from filelock import FileLock, Timeout

        self.registry.check_writable("specific", "DEFAULT")
        lock = FileLock(self.registry.root / f".{STUDY_FILE}.lock")
        try:
            lock.acquire(timeout=0)
        except Timeout:
            raise TuningError(
                f"tune › {self.path} › another lstm-plugin tune is using it; wait for it to end"
            ) from None
        try:
            yield
        finally:
            lock.release()

    def _storage(self) -> Any:
        import optuna
        import sqlalchemy.exc

        if self.path.exists() and not self.path.is_file():
            raise TuningError(f"tune › {self.path} › not a file: move it away")
        try:
            return optuna.storages.RDBStorage(f"sqlite:///{self.path}")
        except (sqlalchemy.exc.SQLAlchemyError, RuntimeError, ValueError) as exc:
            raise self._unreadable(exc) from None

    def _unreadable(self, exc: Exception) -> TuningError:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
        return TuningError(f"tune › {self.path} › not a readable study file ({reason}): move it away")

    def _identity(self, job: TrainJob) -> dict[str, str]:
        """What the study's trials depend on: the space and tuning settings, the base ``model`` settings,
        and the bars (by content)."""
        tuning = self.config.tuning
        extra = {
            "model": job.model.model_dump(mode="json"),
            "folds": tuning.folds,
            "parallel": tuning.parallel,
            "seed": tuning.seed,
            "startup_trials": tuning.startup_trials,
            "warmup_epochs": tuning.warmup_epochs,
            "prune": tuning.prune,
            "plugins": job.plugins.model_dump(mode="json"),
        }
        frames = job_frames(job)
        data = "|".join(f"{symbol}={frame_fingerprint(frames[symbol])}" for symbol in sorted(frames))
        return {
            "space": space_fingerprint(tuning.space, extra),
            "data": hashlib.sha256(data.encode()).hexdigest(),
        }

    def _study(self, label: str, job: TrainJob, restart: bool) -> Any:
        import optuna
        import sqlalchemy.exc

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        storage = self._storage()
        wanted = self._identity(job)
        try:
            if restart:
                with contextlib.suppress(KeyError):
                    optuna.delete_study(study_name=label, storage=storage)
            study = optuna.create_study(
                study_name=label, storage=storage, direction="maximize", load_if_exists=True
            )
            held = {k: study.user_attrs.get(k) for k in wanted}
            if not study.trials and not any(held.values()):
                for key, value in wanted.items():
                    study.set_user_attr(key, value)
                study.enqueue_trial(_own_settings(self.config, job))
            elif held["space"] != wanted["space"]:
                raise TuningError(
                    f"tune › study {label} was made with another search space or tuning settings; "
                    "--restart replaces it"
                )
            elif held["data"] != wanted["data"]:
                raise TuningError(f"tune › study {label} was made on other bars; --restart replaces it")
            _requeue_interrupted(study)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise self._unreadable(exc) from None
        return study

    # ------------------------------------------------------------------ trials
    def _run(
        self,
        study: Any,
        job: TrainJob,
        trials: int,
        timeout: float | None,
        started: float,
        progress: _Progress,
    ) -> None:
        tuning = self.config.tuning
        progress.pruned = len(_finished(study, pruned_only=True))
        progress.show(len(_finished(study)), _best(study))
        while True:
            finished = _finished(study)
            wanted = trials - len(finished)
            if wanted <= 0 or (timeout is not None and time.monotonic() - started >= timeout):
                return
            peers = tuple(dict(t.intermediate_values) for t in _finished(study, complete_only=True))
            batch = [self._ask(study, job, len(finished) + i) for i in range(min(tuning.parallel, wanted))]
            futures: list[tuple[Any, Future[TrialResult]]] = [
                (trial, self.backend.submit(self._trial_job(job, trial, peers))) for trial, _ in batch
            ]
            for trial, future in futures:
                self._tell(study, trial, future, futures)
                progress.pruned += int(trial.number in _pruned_numbers(study))
                progress.show(len(_finished(study)), _best(study))

    def _ask(self, study: Any, job: TrainJob, finished: int) -> tuple[Any, dict[str, Any]]:
        import optuna

        tuning = self.config.tuning
        study.sampler = optuna.samplers.TPESampler(
            seed=(tuning.seed * 1_000_003 + finished) % 2**32,
            n_startup_trials=max(1, tuning.startup_trials),
        )
        trial = study.ask()
        with warnings.catch_warnings():  # trial 0, the config's own settings, may lie outside the space
            warnings.simplefilter("ignore", UserWarning)
            return trial, suggest(trial, tuning.space, job.model)

    def _trial_job(self, job: TrainJob, trial: Any, peers: tuple[dict[int, float], ...]) -> TrialJob:
        tuning = self.config.tuning
        return TrialJob(
            train=job,
            number=trial.number,
            parameters=dict(trial.params),
            folds=tuning.folds,
            prune=tuning.prune == "median",
            startup_trials=tuning.startup_trials,
            warmup_epochs=tuning.warmup_epochs,
            peers=peers,
        )

    def _tell(self, study: Any, trial: Any, future: Future[TrialResult], batch: list[Any]) -> None:
        from optuna.trial import TrialState

        try:
            result = future.result()
        except BaseException:
            for other, _ in batch:  # the batch's trials still open fail now, and are proposed again later
                with contextlib.suppress(Exception):
                    study.tell(other, state=TrialState.FAIL)
            raise
        for step, value in sorted(result.curve.items()):
            trial.report(value, step)
        trial.set_user_attr("seconds", round(result.seconds, 3))
        trial.set_user_attr("worker", result.worker)
        if result.pruned or result.value is None or not math.isfinite(result.value):
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, result.value)

    # ------------------------------------------------------------------ the choice
    def _keep(self, study: Any, job: TrainJob, label: str, pruned: int) -> TunedSettings:
        complete = _finished(study, complete_only=True)
        if not complete:
            raise TuningError(
                f"tune › study {label} has no finished trial yet (every one was pruned or stopped)"
            )
        best = max(complete, key=lambda t: (t.value, -t.number))
        first = min(complete, key=lambda t: t.number)
        record = TunedSettings(
            model_type=job.model_type,
            name=job.name,
            tuned_at=job.trained_at.isoformat(),
            study=label,
            trials=len(_finished(study)),
            pruned=pruned,
            best_value=float(best.value),
            default_value=float(first.value) if first.number == 0 else None,
            parameters=dict(best.params),
        )
        try:
            self.tuned.add(record)
        except OSError as exc:
            raise RegistryError(
                f"{self.tuned.path(job.model_type, job.name)} › cannot write: {exc.strerror}"
            ) from None
        return record


def _own_settings(config: Config, job: TrainJob) -> dict[str, Any]:
    """The config's own values of the searched settings: the study's first trial."""
    own = {}
    for name in config.tuning.space.parameters():
        if name == "dropout" and job.model.num_layers < 2:
            continue
        own[name] = getattr(job.model, name)
    return own


def _finished(study: Any, complete_only: bool = False, pruned_only: bool = False) -> list[Any]:
    from optuna.trial import TrialState

    states: tuple[Any, ...] = (TrialState.COMPLETE, TrialState.PRUNED)
    if complete_only:
        states = (TrialState.COMPLETE,)
    elif pruned_only:
        states = (TrialState.PRUNED,)
    return list(study.get_trials(deepcopy=False, states=states))


def _pruned_numbers(study: Any) -> set[int]:
    return {t.number for t in _finished(study, pruned_only=True)}


def _best(study: Any) -> float | None:
    complete = _finished(study, complete_only=True)
    return max(t.value for t in complete) if complete else None


def _requeue_interrupted(study: Any) -> None:
    """Trials left running by a killed tuning fail now, and their settings are proposed again first."""
    from optuna.trial import TrialState

    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(dict(trial.params), skip_if_exists=False)


def _bar(progress: bool, label: str, trials: int) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=trials, desc=f"tuning {label}", unit="trial", disable=not progress, leave=False)
