"""``LiveFeed``: a Backtrader live data feed fed by the hub, one daily bar at a time."""

from __future__ import annotations

import datetime as dt
from collections import deque
from typing import Any

import backtrader as bt
import numpy as np
import pandas as pd

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class LiveFeed(bt.feed.DataBase):
    """``islive()`` is true, so Cerebro runs bar by bar; ``_load`` answers ``True`` (a bar), ``None``
    (none yet: keep waiting) or ``False`` (the hub is finished). The status (``DELAYED`` while a
    resumed run back-fills, ``LIVE`` after, ``DISCONNECTED`` while the source fails) reaches the
    strategy through ``notify_data`` and ``data._laststatus``."""

    params = (("hub", None), ("symbol", None))

    def __init__(self) -> None:
        self._rows: deque[tuple[pd.Timestamp, np.ndarray]] = deque()
        self._laststatus = self.CONNECTED  # Backtrader sets it in start(); the hub may ask before

    def islive(self) -> bool:
        return True

    def haslivedata(self) -> bool:
        return bool(self._rows)

    def queued(self) -> int:
        return len(self._rows)

    def push(self, day: pd.Timestamp, values: np.ndarray) -> None:
        self._rows.append((day, values))

    def set_status(self, status: int) -> None:
        self.put_notification(status)

    @property
    def status(self) -> int:
        return int(self._laststatus)

    def _load(self) -> Any:
        if self._rows:
            day, (o, h, low, c, v) = self._rows.popleft()
            self.lines.datetime[0] = bt.date2num(dt.datetime(day.year, day.month, day.day))
            self.lines.open[0], self.lines.high[0], self.lines.low[0], self.lines.close[0] = o, h, low, c
            self.lines.volume[0], self.lines.openinterest[0] = v, 0.0
            return True
        return False if self.p.hub.finished else None
