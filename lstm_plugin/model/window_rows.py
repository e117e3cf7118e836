"""Windows kept as the rows they are cut from: a pooled training set in the memory of its features.

A window repeats ``window`` rows of its symbol's features, so a universal model's stacked windows cost
``window`` times its features: 613,000 windows of 30 bars held 2.2 GiB in each worker on the 404-stock
set (docs/benchmarks.md, *Memory*). :class:`WindowRows` keeps the float32 feature rows once and each
window's last row; a batch is cut out when it is used (:meth:`WindowRows.take`), with the same float32
values :func:`~lstm_plugin.model.features.make_windows` stacks, so training sees the same bits.

It answers the indexing a :class:`~lstm_plugin.model.samples.SampleSet` gets: ``len``, ``shape``, rows by
slice, mask or positions (still lazy), ``[:, -1, :]`` (the scaler's rows), ``[:, -k:, :]`` (an ensemble
member's shorter window), and ``numpy.asarray`` (every window stacked, for the small segments that are
scored whole).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


@dataclass(frozen=True)
class WindowRows:
    """Windows of ``length`` rows of ``rows`` ``(R, F)`` float32, each ending at a row of ``ends``."""

    rows: np.ndarray
    ends: np.ndarray
    length: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return (len(self.ends), self.length, self.rows.shape[1])

    @property
    def dtype(self) -> np.dtype[Any]:
        return self.rows.dtype

    ndim = 3

    def __len__(self) -> int:
        return len(self.ends)

    def take(self, positions: Any = slice(None)) -> np.ndarray:
        """The windows at ``positions`` stacked ``(n, length, F)``: what ``make_windows`` gives for them."""
        ends = self.ends[positions]
        offsets = np.arange(1 - self.length, 1)
        return np.ascontiguousarray(self.rows[ends[:, None] + offsets])

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        stacked = self.take()
        return stacked if dtype is None else stacked.astype(dtype, copy=False)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, tuple) and len(key) == 3 and key[0] == slice(None) and key[2] == slice(None):
            bars = key[1]
            if isinstance(bars, int) and bars == -1:
                return self.rows[self.ends]  # each window's last row
            if isinstance(bars, slice) and bars.step is None and bars.stop is None and (bars.start or 0) < 0:
                return WindowRows(self.rows, self.ends, min(self.length, -(bars.start or 0)))
        if isinstance(key, slice) or (isinstance(key, np.ndarray) and key.ndim == 1):
            return WindowRows(self.rows, self.ends[key], self.length)
        return np.asarray(self)[key]


def pooled_window_rows(
    parts: list[tuple[np.ndarray, np.ndarray]], length: int, order: np.ndarray
) -> WindowRows:
    """The windows of every ``(rows, ends)`` part, in ``order`` of their concatenation, over one copy of
    their rows."""
    offsets = np.cumsum([0] + [len(rows) for rows, _ in parts[:-1]])
    ends = np.concatenate([ends + offset for (_, ends), offset in zip(parts, offsets, strict=True)])
    rows = np.concatenate([rows for rows, _ in parts]) if len(parts) > 1 else parts[0][0]
    return WindowRows(rows, ends[order], length)
