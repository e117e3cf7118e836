"""The monitoring dashboard: every model's state and track record, the training queue, paper runs and
backtest reports, on a local web page (``lstm-plugin dashboard``) or in Python (:func:`snapshot`).

Importing this package needs only the core dependencies; the web server (Starlette on uvicorn) comes
with the ``dashboard`` extra and is imported by :mod:`lstm_plugin.dashboard.server` alone.
docs/dashboard.md describes the pages and their JSON.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from lstm_plugin.core.clock import ManualClock
from lstm_plugin.core.config import Config
from lstm_plugin.dashboard.board import Board
from lstm_plugin.dashboard.models_view import ModelRow
from lstm_plugin.dashboard.sources import DashboardError, Sources, open_sources

__all__ = ["Board", "DashboardError", "Snapshot", "Sources", "open_sources", "snapshot"]

PAGES = ("models", "training", "paper", "backtests")


@dataclass(frozen=True)
class Snapshot:
    """What the pages show at one moment, as the JSON API returns it (``/api/<page>``)."""

    models: list[ModelRow] | dict[str, str]
    training: dict[str, Any]
    paper: list[dict[str, Any]]
    backtests: list[dict[str, Any]]

    def to_frame(self, page: str = "models") -> pd.DataFrame:
        """One page as a table for notebooks: ``models`` (one row per model, the track record as ``live_*``
        columns, the flags joined in ``why_flagged``), ``training`` (queued and running jobs), ``paper``
        (one row per state folder) or ``backtests`` (one row per report and run)."""
        if page == "models":
            if isinstance(self.models, dict):
                return pd.DataFrame([self.models])
            rows = []
            for row in self.models:
                flat = {k: v for k, v in row.items() if k not in ("track", "candidate", "tuned", "flags")}
                flat.update({f"live_{k}": v for k, v in (row["track"] or {}).items()})
                flat["shelved"] = None if not row["candidate"] else row["candidate"]["model_version"]
                flat["why_flagged"] = "; ".join(row["flags"])  # not "flags": DataFrame.flags is pandas' own
                rows.append(flat)
            return pd.DataFrame(rows)
        if page == "training":
            queued = [job for tier in self.training.get("tiers", []) for job in tier["jobs"]]
            running = self.training.get("running", [])
            jobs = [j | {"running": False} for j in queued] + [j | {"running": True} for j in running]
            return pd.DataFrame(jobs)
        if page == "paper":
            keys = ("state", "error", "last_bar", "days", "value", "cash", "pnl", "pnl_pct", "max_drawdown")
            runs = [{k: run.get(k) for k in keys} for run in self.paper]
            for line, run in zip(runs, self.paper):
                line["heartbeat"] = (run.get("heartbeat") or {}).get("state")
            return pd.DataFrame(runs)
        if page == "backtests":
            pairs = [(report["folder"], run) for report in self.backtests for run in report.get("runs", [])]
            return pd.DataFrame([{"report": folder, **run} for folder, run in pairs])
        raise ValueError(f"page › one of {', '.join(PAGES)} (got {page!r})")


def snapshot(
    models: str | Path | None = None,
    states: Iterable[str | Path] | None = None,
    reports: Iterable[str | Path] | None = None,
    *,
    config: str | Path | Config | None = None,
    data: str | Path | None = None,
    as_of: str | pd.Timestamp | None = None,
) -> Snapshot:
    """Every page's data, as the dashboard serves it (the same folders and defaults as the command), at
    ``as_of`` (default: the data's clock, as ``lstm-plugin status``)."""
    clock = None if as_of is None else ManualClock(as_of)
    board = Board(open_sources(models, states, reports, config=config, data=data, clock=clock))
    return Snapshot(board.models(), board.training(), board.paper(), board.backtests())
