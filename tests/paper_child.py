"""``lstm-plugin paper`` in a child process that SIGKILLs itself at a chosen point
(tests/test_paper_resume.py).

``python paper_child.py POINT:N ARGS...``: POINT is ``commit`` (right after the N-th day is
committed), ``order`` (right after the N-th order is handed to the broker, before its day is
committed: the middle of a rebalance) or ``publish`` (the N-th model file written, its metadata
not yet: the middle of a model publish); ``none:0`` runs to the end.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any


def main() -> int:
    point, _, n = sys.argv[1].partition(":")
    target, seen = int(n), [0]

    def hit() -> None:
        seen[0] += 1
        if seen[0] == target:
            os.kill(os.getpid(), signal.SIGKILL)

    if point == "commit":
        from lstm_plugin.backtrader.live.journal import Journal

        original_commit = Journal.commit_day

        def commit_day(self: Any, record: Any) -> None:
            original_commit(self, record)
            hit()

        Journal.commit_day = commit_day  # type: ignore[method-assign]
    elif point == "order":
        import backtrader as bt

        original_order = bt.Strategy.order_target_percent

        def order_target_percent(self: Any, *args: Any, **kwargs: Any) -> Any:
            order = original_order(self, *args, **kwargs)
            hit()
            return order

        bt.Strategy.order_target_percent = order_target_percent  # type: ignore[method-assign]
    elif point == "publish":
        from lstm_plugin.serving import registry

        original_write = registry.write_atomic

        def write_atomic(path: Any, blob: bytes) -> None:
            original_write(path, blob)
            if str(path).endswith(".onnx"):
                hit()

        registry.write_atomic = write_atomic  # type: ignore[assignment]
    from lstm_plugin.cli.main import main as cli_main

    return cli_main(sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
