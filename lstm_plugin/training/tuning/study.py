"""A tuning study: Optuna's seeded TPE sampler proposes settings, a backend runs the trials, the study keeps
every finished one in ``<registry>/tuning.sqlite``.

The driver alone writes the study (an exclusive lock on the file's folder makes a second ``tune`` on the
same registry fail at once instead of racing it). Trials are proposed ``tuning.parallel`` at a time,
each by a sampler seeded with ``tuning.seed``, the study's name and the number of trials finished before
it, and each carries the curves of the finished ones for its median rule (:mod:`~.trial`): so the same
data, config and seed give the same trials, pruned the same way, on ``sync``, ``local`` and ``ray``. A tuning
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
from collections.abc import Iterable, Iterator
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.core.clock import Clock
from lstm_plugin.core.config import Config
from lstm_plugin.core.data import DataSource, frame_fingerprint
from lstm_plugin.core.errors import ConfigError, LSTMPluginError, RegistryError
from lstm_plugin.core.statuses import MODEL_TYPES, ModelType, as_model_type
from lstm_plugin.serving.registry import ModelRegistry
from lstm_plugin.serving.tuned import TunedSettings, TunedStore
from lstm_plugin.training.jobs import TrainJob, job_frames
from lstm_plugin.training.trainer import ModelTrainer
from lstm_plugin.training.tuning.ledger import PASS_ATTRIBUTE, StudyView, requeue_interrupted
from lstm_plugin.training.tuning.progress import TrialBar
from lstm_plugin.training.tuning.space import config_values, space_fingerprint, suggest
from lstm_plugin.training.tuning.trial import TrialJob, TrialResult

logger = logging.getLogger(__name__)

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

STUDY_FILE = "tuning.sqlite"
#: a choice a training pass completes is usable just after it: a training at the pass's own time, which
#: may have run before the pass, never sees it, in a first run or a later one
USABLE_AFTER = pd.Timedelta(microseconds=1)


class TuningError(LSTMPluginError):
    """A study that cannot be used as asked: another search space or data, a damaged file, a lock held."""


def study_name(model_type: ModelType, name: str, as_of: pd.Timestamp) -> str:
    return f"{model_type}/{name}@{as_of:%Y-%m-%d}"


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
        plugins: Iterable[Any] = (),
    ) -> None:
        self.config = config
        self.registry = registry
        self.backend = backend
        self.progress = progress
        self.trainer = ModelTrainer(
            config,
            source,
            registry,
            clock=clock,
            progress=False,
            extra_plugins=plugins,
            by_path=backend.by_path,
        )
        self.tuned = TunedStore(registry.root)
        self._opened: tuple[int | None, Any] | None = None

    @property
    def path(self) -> Path:
        return self.registry.root / STUDY_FILE

    def tune(
        self,
        model_type: ModelType,
        name: str,
        as_of: pd.Timestamp,
        trials: int,
        timeout: float | None = None,
        restart: bool = False,
    ) -> TunedSettings:
        """Run the study of ``name``'s model as of ``as_of`` until it holds ``trials`` finished trials (or
        ``timeout`` seconds pass), and keep its best settings for the trainings from ``as_of`` on."""
        job = self._job(model_type, name, as_of)
        label = study_name(model_type, job.name, job.trained_at)
        with self._locked():
            view = StudyView(self._study(label, job, restart))
            with TrialBar(label, trials, self.progress) as bar:
                self._run(view, job, trials, None, timeout, bar, stamp=None)
            return self._keep(view, job, label, tuned_at=job.trained_at)

    def advance(
        self, model_type: ModelType, name: str, as_of: pd.Timestamp, now: pd.Timestamp, budget: int
    ) -> tuple[TunedSettings | None, int]:
        """A service pass at ``now``: up to ``budget`` more trials of the study of ``name``'s model as of
        ``as_of`` (stamped with ``now``); once it holds ``tuning.trials``, its choice is kept, usable just
        after ``now``. Returns the choice (``None`` until then) and the trials this pass ran, those found
        already run included (:mod:`~.ledger`)."""
        job = self._job(model_type, name, as_of)
        label = study_name(model_type, job.name, job.trained_at)
        trials = self.config.tuning.trials
        with self._locked():
            view = StudyView(self._study(label, job, restart=False), until=now)
            room = budget - view.charged(now)
            if room > 0:
                with TrialBar(label, trials, shown=False) as bar:
                    self._run(view, job, trials, room, None, bar, stamp=now)
            if view.finished < trials:
                return None, view.charged(now)
            kept = next((r for r in self.tuned.all(model_type, job.name) if r.study == label), None)
            record = kept or self._keep(view, job, label, tuned_at=now + USABLE_AFTER)
            return record, view.charged(now)

    def study_dates(self) -> dict[tuple[ModelType, str], list[pd.Timestamp]]:
        """The dates of the studies kept, oldest first, by ``(model type, name)``: one query."""
        import optuna

        if not self.path.exists():
            return {}
        try:
            names = optuna.get_all_study_names(self._storage())
        except Exception as exc:  # a damaged file: what tune says of it
            raise self._unreadable(exc) from None
        dates: dict[tuple[ModelType, str], list[pd.Timestamp]] = {}
        for label in names:
            model, _, day = label.rpartition("@")
            model_type, _, name = model.partition("/")
            if model_type in MODEL_TYPES:  # a study this package did not name is not ours
                dates.setdefault((as_model_type(model_type), name), []).append(pd.Timestamp(day))
        return {model: sorted(days) for model, days in dates.items()}

    def _job(self, model_type: ModelType, name: str, as_of: pd.Timestamp) -> TrainJob:
        """The training job a study's trials vary: the config's settings, bars up to ``as_of``."""
        if self.config.model.ensemble:
            raise ConfigError("tune › model.ensemble is set: a tuning searches one network's settings")
        job = (
            self.trainer.prepare_universal(as_of=as_of, tuned=False)
            if model_type == "universal"
            else self.trainer.prepare_specific(name, as_of=as_of, tuned=False)
        )
        job = dataclasses.replace(job, parent=None)  # a trial starts cold, as its fold's data dictates
        space = self.config.tuning.space
        if job.benchmark is None and space.target is not None and "excess" in space.target.choices:
            job = dataclasses.replace(job, benchmark=self.trainer.benchmark(job.trained_at))
        return job

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
        """Optuna's storage on the study file, opened once per tuner (an engine costs tens of ms)."""
        import optuna
        import sqlalchemy.exc

        if self.path.exists() and not self.path.is_file():
            raise TuningError(f"tune › {self.path} › not a file: move it away")
        if self._opened is not None and self._opened[0] == _inode(self.path):
            return self._opened[1]  # the same file: written in place by SQLite, replaced only by hand
        try:
            storage = optuna.storages.RDBStorage(f"sqlite:///{self.path}")
        except (sqlalchemy.exc.SQLAlchemyError, RuntimeError, ValueError) as exc:
            raise self._unreadable(exc) from None
        self._opened = (_inode(self.path), storage)
        return storage

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
                study.enqueue_trial(config_values(self.config.tuning.space, job.model))
            elif held["space"] != wanted["space"]:
                raise TuningError(
                    f"tune › study {label} was made with another search space or tuning settings; "
                    "--restart replaces it"
                )
            elif held["data"] != wanted["data"]:
                raise TuningError(f"tune › study {label} was made on other bars; --restart replaces it")
            requeue_interrupted(study)
        except sqlalchemy.exc.SQLAlchemyError as exc:
            raise self._unreadable(exc) from None
        return study

    # ------------------------------------------------------------------ trials
    def _run(
        self,
        view: StudyView,
        job: TrainJob,
        trials: int,
        budget: int | None,
        timeout: float | None,
        progress: TrialBar,
        stamp: pd.Timestamp | None,
    ) -> None:
        """Trials, ``tuning.parallel`` at a time, until the view holds ``trials`` finished, ``budget`` new
        ones ran or ``timeout`` seconds passed."""
        started, ran = time.monotonic(), 0
        progress.show(view)
        while True:
            wanted = trials - view.finished
            if budget is not None:
                wanted = min(wanted, budget - ran)
            if wanted <= 0 or (timeout is not None and time.monotonic() - started >= timeout):
                return
            peers, finished = view.curves(), view.finished
            batch = [
                self._ask(view.study, job, finished + i)
                for i in range(min(self.config.tuning.parallel, wanted))
            ]
            futures: list[tuple[Any, Future[TrialResult]]] = [
                (trial, self.backend.submit(self._trial_job(job, trial, peers))) for trial, _ in batch
            ]
            for trial, future in futures:
                self._tell(view.study, trial, future, futures, stamp)
                ran += 1
                progress.show(view)

    def _ask(self, study: Any, job: TrainJob, finished: int) -> tuple[Any, dict[str, Any]]:
        import optuna

        tuning = self.config.tuning
        seed = hashlib.sha256(f"{tuning.seed}|{study.study_name}|{finished}".encode()).digest()
        study.sampler = optuna.samplers.TPESampler(
            seed=int.from_bytes(seed[:4], "little"), n_startup_trials=max(1, tuning.startup_trials)
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

    def _tell(
        self,
        study: Any,
        trial: Any,
        future: Future[TrialResult],
        batch: list[Any],
        stamp: pd.Timestamp | None,
    ) -> None:
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
        if stamp is not None:
            trial.set_user_attr(PASS_ATTRIBUTE, stamp.isoformat())
        if result.pruned or result.value is None or not math.isfinite(result.value):
            study.tell(trial, state=TrialState.PRUNED)
        else:
            study.tell(trial, result.value)

    # ------------------------------------------------------------------ the choice
    def _keep(self, view: StudyView, job: TrainJob, label: str, tuned_at: pd.Timestamp) -> TunedSettings:
        """The best complete trial's settings, kept for the trainings from ``tuned_at`` on."""
        best = view.best()
        if best is None:
            raise TuningError(f"tune › study {label} has no complete trial yet (each was pruned or stopped)")
        first = min(view.trials("COMPLETE"), key=lambda t: t.number)
        record = TunedSettings(
            model_type=job.model_type,
            name=job.name,
            tuned_at=tuned_at.isoformat(),
            data_end=job.trained_at.isoformat(),
            study=label,
            trials=view.finished,
            pruned=view.pruned,
            best_value=float(best.value),
            default_value=float(first.value) if first.number == 0 else None,
            parameters=dict(best.params),
        )
        try:
            self.tuned.add(record)
        except OSError as exc:
            where = self.tuned.path(job.model_type, job.name)
            raise RegistryError(f"{where} › cannot write: {exc.strerror}") from None
        return record


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except OSError:
        return None
