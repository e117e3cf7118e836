"""Every served forecast, kept beside the registry, so each model can be checked against what happened.

``<registry>/track_record.sqlite`` holds one row per model file (its sha256), symbol and bar: the
score ``P(up) − P(down)`` and the expected log return the model gave at that bar, and its horizon.
:class:`TrackRecordWriter` adds the successful forecasts of each ``predict_many`` call in one
transaction (a forecast served again adds nothing). Writing is best effort: a registry on a read-only
or full disk is warned about once and never fails a forecast.

Nothing realised is stored. A reader (``lstm-plugin status``, the dashboard) computes each outcome
from the data source at read time, only where the bar ``horizon`` bars after the forecast's is
known, so the record never claims an outcome the data does not hold. :func:`score_track` gives the
figures with 95 % intervals; docs/dashboard.md, *Track record*, says how they are computed.

The file is read with a ``mode=ro`` URI (:func:`read_forecasts`): a reader never holds a write lock.
"""

from __future__ import annotations

import logging
import math
import sqlite3
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from lstm_plugin.core.data import DataSource
from lstm_plugin.core.errors import LSTMPluginError
from lstm_plugin.core.statuses import ModelType, as_model_type
from lstm_plugin.model.metrics import directional_accuracy, spearman
from lstm_plugin.model.model_files import ModelRecord

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

logger = logging.getLogger(__name__)

TRACK_FILE = "track_record.sqlite"
COLUMNS = ["sha256", "model_type", "name", "symbol", "bar", "horizon", "score", "expected"]
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS forecasts (sha256 TEXT NOT NULL, model_type TEXT NOT NULL, name TEXT NOT "
    "NULL, symbol TEXT NOT NULL, bar TEXT NOT NULL, horizon INTEGER NOT NULL, score REAL NOT NULL, "
    "expected REAL NOT NULL, PRIMARY KEY (sha256, symbol, bar)) WITHOUT ROWID"
)
_Z = 1.959963984540054  # the 97.5 % normal quantile


class TrackRecord(TypedDict):
    """A model's figures on the outcomes known now, with 95 % intervals (``None`` when too few)."""

    forecasts: int  # forecasts recorded
    n: int  # of those, with a known outcome
    hit_rate: float | None
    hit_low: float | None
    hit_high: float | None
    base_rate: float | None  # always calling the likelier sign, on the same outcomes
    up_calls: (
        float | None
    )  # share of the forecasts calling a rise (1.0 or 0.0: the model never changes its call)
    rank_ic: float | None
    ic_low: float | None
    ic_high: float | None
    effective_n: float | None  # n over the bars two outcomes share


class TrackRecordWriter:
    """Appends served forecasts to ``<root>/track_record.sqlite`` (thread-safe; opened on first use)."""

    def __init__(self, root: str | Path) -> None:
        self.path = Path(root) / TRACK_FILE
        self._db: sqlite3.Connection | None = None
        self._broken = False
        self._lock = threading.Lock()

    def add(self, rows: Iterable[tuple[str, str, str, str, str, int, float, float]]) -> None:
        """Insert ``rows`` (in :data:`COLUMNS` order) unless already there; on failure, warn once."""
        batch = list(rows)
        if not batch or self._broken:
            return
        with self._lock:
            try:
                db = self._open()
                with db:
                    db.executemany("INSERT OR IGNORE INTO forecasts VALUES (?, ?, ?, ?, ?, ?, ?, ?)", batch)
            except (sqlite3.Error, OSError) as exc:
                self._broken = True
                logger.warning("%s: cannot record forecasts (%s); forecasts go on unrecorded", self.path, exc)

    def _open(self) -> sqlite3.Connection:
        if self._db is None:  # a forecast came from a model here: the registry folder exists
            db = sqlite3.connect(self.path, timeout=10.0, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(_SCHEMA)
            self._db = db
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None


def track_rows(
    predictions: Iterable[Mapping[str, Any]],
    records_of: Callable[[ModelType, str], list[ModelRecord]],
    name_of: Callable[[Mapping[str, Any]], str],
) -> list[tuple[Any, ...]]:
    """The ledger rows of the successful ``predictions``, each keyed by its model file's sha256 (found in
    ``records_of(model_type, name)`` by the forecast's version; ``name_of``: a forecast's registry name)."""
    rows = []
    digests: dict[tuple[str, str, int], str | None] = {}  # a call's forecasts share few versions
    for prediction in predictions:
        probabilities = prediction.get("probabilities")
        if prediction.get("status") != "success" or not probabilities or not prediction.get("as_of"):
            continue
        name = name_of(prediction)
        version = prediction["model_version"]
        key = (str(prediction["model_type"]), name, version)
        if key not in digests:
            records = records_of(as_model_type(prediction["model_type"]), name)
            record = next((r for r in records if r.version == version), None)
            digests[key] = None if record is None else str(record.metadata["sha256"])
        if digests[key] is not None:
            rows.append(_row(prediction, str(digests[key]), name, probabilities))
    return rows


def _row(
    prediction: Mapping[str, Any], sha256: str, name: str, probabilities: Mapping[str, float]
) -> tuple[Any, ...]:
    return (
        sha256,
        str(prediction["model_type"]),
        name,
        str(prediction["symbol"]),
        str(prediction["as_of"])[:10],
        int(prediction["horizon"]),
        float(probabilities["up"] - probabilities["down"]),
        float(prediction["expected_log_return"]),
    )


def read_forecasts(root: str | Path, sha256: Iterable[str] | None = None) -> pd.DataFrame:
    """The recorded forecasts (of the model files ``sha256`` only, when given), read-only; an empty frame
    when nothing was recorded. A damaged file raises :class:`sqlite3.DatabaseError`."""
    path = Path(root) / TRACK_FILE
    if not path.is_file():
        return pd.DataFrame(columns=COLUMNS)
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=2.0)
    try:
        query = f"SELECT {', '.join(COLUMNS)} FROM forecasts"
        wanted = None if sha256 is None else sorted(set(sha256))
        if wanted is not None:
            query += f" WHERE sha256 IN ({', '.join('?' * len(wanted))})"
        rows = db.execute(query, wanted or ()).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return pd.DataFrame(columns=COLUMNS)
        raise
    finally:
        db.close()
    return pd.DataFrame(rows, columns=COLUMNS)


def no_forecasts() -> pd.DataFrame:
    """An empty frame shaped as :func:`with_outcomes` returns."""
    return pd.DataFrame(columns=[*COLUMNS, "realised", "position"])


def with_outcomes(forecasts: pd.DataFrame, closes_of: Callable[[str], pd.Series | None]) -> pd.DataFrame:
    """``forecasts`` with ``realised`` (the simple return over ``horizon`` bars, NaN while unknown) and
    ``position`` (the forecast bar's index in its symbol's closes). ``closes_of(symbol)``: the closes known
    now, or ``None`` when the symbol has no data."""
    frame = forecasts.copy()
    frame["realised"] = np.nan
    frame["position"] = -1
    for symbol, rows in frame.groupby("symbol", sort=False):
        closes = closes_of(str(symbol))
        if closes is None or closes.empty:
            continue
        values = closes.to_numpy(dtype="float64")
        bars = pd.DatetimeIndex(pd.to_datetime(rows["bar"])).normalize()
        position = closes.index.normalize().searchsorted(bars, side="right") - 1
        ahead = position + rows["horizon"].to_numpy(dtype="int64")
        known = (position >= 0) & (ahead < len(values))
        realised = np.full(len(rows), np.nan)
        realised[known] = values[ahead[known]] / values[position[known]] - 1.0
        frame.loc[rows.index, "realised"] = realised
        frame.loc[rows.index, "position"] = position
    return frame


def closes_until(source: DataSource, when: pd.Timestamp) -> Callable[[str], pd.Series | None]:
    """``closes_of`` for :func:`with_outcomes`: a symbol's closes dated ``<= when``, ``None`` without data."""

    def closes_of(symbol: str) -> pd.Series | None:
        try:
            return source.load(symbol, end=when)["close"]
        except LSTMPluginError:
            return None

    return closes_of


def score_models(
    root: str | Path, records: Iterable[ModelRecord], closes_of: Callable[[str], pd.Series | None]
) -> dict[str, tuple[TrackRecord, pd.DataFrame]]:
    """Each model file's (by sha256) track record and its forecasts with outcomes, from one read of the
    ledger; a model with no recorded forecast is absent."""
    shas = {str(r.metadata["sha256"]) for r in records}
    frame = with_outcomes(read_forecasts(root, shas), closes_of)
    return {str(sha): (score_track(rows), rows) for sha, rows in frame.groupby("sha256", sort=False)}


def _overlap(known: pd.DataFrame) -> float:
    """Outcomes per independent one: the horizon over the median spacing of a symbol's forecasts (≥ 1)."""
    gaps = [
        np.diff(np.sort(rows["position"].to_numpy()))
        for _, rows in known.groupby("symbol", sort=False)
        if len(rows) > 1
    ]
    spacing = float(np.median(np.concatenate(gaps))) if gaps and sum(map(len, gaps)) else 1.0
    return max(1.0, float(known["horizon"].median()) / max(spacing, 1.0))


def score_track(frame: pd.DataFrame) -> TrackRecord:
    """Hit rate and rank IC of the forecasts in ``frame`` (from :func:`with_outcomes`) whose outcome is known.

    Intervals are normal (hit rate) and Fisher-z (rank IC) ones on the effective sample size: ``n`` over
    the bars two consecutive outcomes share, so 21-bar outcomes of daily forecasts count about once in 21.
    Different symbols' outcomes on one bar are counted as independent, which a pooled model's are not
    quite: its intervals are narrower than they should be."""
    known = frame[np.isfinite(frame["realised"].to_numpy(dtype="float64"))]
    n = len(known)
    record: TrackRecord = {
        "forecasts": len(frame),
        "n": n,
        "hit_rate": None,
        "hit_low": None,
        "hit_high": None,
        "base_rate": None,
        "up_calls": None,
        "rank_ic": None,
        "ic_low": None,
        "ic_high": None,
        "effective_n": None,
    }
    if n == 0:
        return record
    score = known["score"].to_numpy(dtype="float64")
    realised = known["realised"].to_numpy(dtype="float64")
    record["up_calls"] = float(np.mean(score > 0))
    effective = n / _overlap(known)
    record["effective_n"] = round(effective, 1)
    hit = directional_accuracy(score, realised)
    if math.isfinite(hit):
        half = _Z * math.sqrt(hit * (1.0 - hit) / effective)
        record["hit_rate"], record["hit_low"], record["hit_high"] = (
            hit,
            max(0.0, hit - half),
            min(1.0, hit + half),
        )
    moved = realised[realised != 0]
    if moved.size:
        up = float(np.mean(moved > 0))
        record["base_rate"] = max(up, 1.0 - up)
    if n > 2:
        ic = spearman(known["expected"].to_numpy(dtype="float64"), realised)
        if math.isfinite(ic):
            record["rank_ic"] = ic
            if effective > 3:
                z, half = math.atanh(max(-0.999999, min(0.999999, ic))), _Z / math.sqrt(effective - 3.0)
                record["ic_low"], record["ic_high"] = math.tanh(z - half), math.tanh(z + half)
    return record
