"""``PaperBroker``: Backtrader's BackBroker with the backtest's costs, fills at the next bar's open, and a
restorable book."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import backtrader as bt
from backtrader.position import Position

__all__: list[str] = []  # internal: the public API is lstm_plugin.PUBLIC (docs/architecture.md)


class PaperBroker(bt.brokers.BackBroker):
    """The simulated broker of a paper run.

    - Costs: the strategy sets commission and slippage from ``backtest`` as in a backtest.
    - Fills: a market order sent at bar t fills at the open of the first later bar of its data, never
      at a bar it has already seen. (BackBroker fills at the current bar's open when it is asked to
      act before a new bar arrives, which a live loop does on every pass.)
    - Book: BackBroker resets cash and positions in ``start()``; :meth:`restore` sets the journal's
      book to be applied right after that reset, and :meth:`bind` fixes the order positions are
      valued in, so a restarted run computes bit-identical values.
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._restore: tuple[float, float, dict[Any, tuple[float, float]]] | None = None
        self._datas: list[Any] = []

    def bind(self, datas: Sequence[Any]) -> None:
        """The feeds, in the order the book is valued in: BackBroker sums positions in the order it
        first saw them, and a restarted run must add the same floats in the same order."""
        self._datas = list(datas)

    def restore(
        self, starting_cash: float, cash: float, positions: Mapping[Any, tuple[float, float]]
    ) -> None:
        """Start from ``cash`` and ``positions`` (feed: (size, average price)) instead of an empty book."""
        self._restore = (starting_cash, cash, dict(positions))

    def start(self) -> None:
        super().start()
        if self._restore is not None:
            starting, cash, positions = self._restore
            self.startingcash, self.cash, self._value = starting, cash, cash
            for data, (size, price) in positions.items():
                self.positions[data] = Position(size, price)
        self._in_feed_order()

    def next(self) -> None:
        self._in_feed_order()
        super().next()

    def _in_feed_order(self) -> None:
        """Positions in :meth:`bind` order, whatever order they were created in (fills, a restore)."""
        wanted = [d for d in self._datas if d in self.positions]
        if self._datas and [id(d) for d in self.positions] != [
            id(d) for d in wanted
        ]:  # feeds overload ==: compare identities
            ordered = [(d, self.positions[d]) for d in wanted]
            self.positions.clear()
            self.positions.update(ordered)

    def _try_exec(self, order: Any) -> None:
        data = order.data
        if not len(data) or data.datetime[0] <= order.created.dt:
            return  # no bar after the one it was sent on yet
        super()._try_exec(order)
