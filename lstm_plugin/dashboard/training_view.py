"""The Training page: the service's last snapshot (``service.json`` beside the registry), by priority tier.

A service writes the snapshot atomically at most once a second while jobs run
(:mod:`lstm_plugin.training.monitoring`); the page shows the last whole one. Failed trainings are listed
with their error, the reason ``lstm-plugin service`` only counts.
"""

from __future__ import annotations

from typing import Any

from lstm_plugin.dashboard.sources import Sources
from lstm_plugin.training.monitoring import SNAPSHOT_FILE, read_snapshot

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)

#: The most finished jobs the page lists (the newest).
DONE_SHOWN = 100
COUNTED = ("requests", "done", "promoted", "shelved", "failed", "retried", "cancelled")


def _entry(job: dict[str, Any]) -> dict[str, Any]:
    keys = ("symbol", "model_type", "category", "priority", "reasons", "state", "attempts", "not_before")
    return {key: job.get(key) for key in keys} | {
        "started_at": job.get("started_at"),
        "seconds": job.get("seconds"),
        "error": job.get("error"),
    }


def _done(job: dict[str, Any]) -> dict[str, Any]:
    found = job.get("outcome")
    outcome: dict[str, Any] = found if isinstance(found, dict) else {}
    return _entry(job) | {
        "stage": outcome.get("stage"),
        "stage_reason": outcome.get("stage_reason"),
        "version": outcome.get("model_version"),
        "finished_at": job.get("finished_at"),
    }


def training_view(sources: Sources) -> dict[str, Any]:
    """The queue by tier (highest priority first), running jobs, the last pass, counts and failures."""
    snapshot = read_snapshot(sources.registry.root)
    if snapshot is None:
        return {
            "available": False,
            "message": f"no training service has written {sources.registry.root / SNAPSHOT_FILE} yet",
        }
    tiers: dict[str, dict[str, Any]] = {}
    for job in sorted(snapshot["queue"], key=lambda j: -float(j.get("priority") or 0)):
        tier = tiers.setdefault(
            str(job.get("category")),
            {"category": job.get("category"), "priority": job.get("priority"), "jobs": []},
        )
        tier["jobs"].append(_entry(job))
    counts = snapshot.get("counts", {})
    return {
        "available": True,
        "backend": snapshot.get("backend"),
        "workers": snapshot.get("workers"),
        "clock": snapshot.get("clock"),
        "closed": snapshot.get("closed"),
        "last_pass": snapshot.get("last_pass"),
        "next_pass": snapshot.get("next_pass"),
        "counts": {key: int(counts.get(key, 0)) for key in COUNTED},
        "tiers": list(tiers.values()),
        "running": [_entry(job) for job in snapshot["in_flight"]],
        "failed": [_entry(job) for job in snapshot.get("failed", [])],
        "done": [_done(job) for job in snapshot.get("done", [])[-DONE_SHOWN:]],
        "models_by_status": snapshot.get("models_by_status", {}),
        "degraded": snapshot.get("degraded", {}),
        "mean_training_seconds": snapshot.get("mean_training_seconds"),
    }
