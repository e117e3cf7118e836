"""Plain-text tables for the commands' default (non ``--json``) output."""

from __future__ import annotations

import math
from typing import Any

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


def pct(value: Any, digits: int = 2) -> str:
    """A figure, or ``-`` where there is none to show (``None``, NaN: never print ``nan``)."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows)


def train_table(results: dict[str, Any]) -> str:
    rows = [["model", "status", "version", "trained_at", "reliability", "quality", "ic", "epochs", "seconds"]]
    for name, r in results.items():
        if r["status"] == "failed":
            rows.append([name, "failed", "-", "-", "-", "-", "-", "-", "-"])
            continue
        m = r["metrics"]
        rows.append(
            [
                name,
                r["status"],
                f"v{r['model_version']}",
                r["trained_at"][:10],
                pct(m.get("reliability"), 3),
                pct(m.get("quality"), 3),
                pct(m.get("ic"), 3),
                str(m.get("epochs_run", "-")),
                pct(r["seconds"], 1),
            ]
        )
    return table(rows)
